"""Candle and anomaly history from the Iceberg tables, behind one interface, two backends.

- DuckDBHistory (embedded default): PyIceberg resolves the snapshot (current, by id, or
  as of a time) and lists its data files; DuckDB reads them. PyIceberg 0.8 cannot apply
  the equality deletes Flink's upsert sink writes, so the upsert is resolved here the way
  it is defined: one row per (exchange, symbol, interval, window_start), the highest
  revision (a correction always raises the revision; see docs/serving.md).
- TrinoHistory (production): the same query in Trino SQL, `FOR VERSION AS OF` /
  `FOR TIMESTAMP AS OF`, on the same catalog (serving/history_trino.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from candleflow import candle_map
from candleflow.config import StackSettings
from candleflow.domain import Anomaly, Candle, Explanation

DEFAULT_LIMIT = 10_000
CANDLE_COLUMNS = candle_map.CANDLE_COLUMN_NAMES


@dataclass(frozen=True, slots=True)
class CandleQuery:
    symbol: str
    interval: str
    start_us: int = 0
    end_us: int | None = None  # exclusive, on window_start
    exchange: str | None = None
    limit: int = DEFAULT_LIMIT
    snapshot_id: int | None = None
    as_of_us: int | None = None


class NotFound(LookupError):
    """A table, snapshot or row that does not exist (-> NOT_FOUND)."""


class History(Protocol):
    def get_candles(self, q: CandleQuery) -> tuple[list[Candle], int]: ...

    def list_symbols(self) -> list[tuple[str, str, list[str]]]: ...

    def get_anomaly(self, anomaly_id: str) -> tuple[Anomaly | None, Explanation | None]: ...


@dataclass(frozen=True, slots=True)
class Tables:
    candles: str = "silver.candles"
    anomalies: str = "gold.anomalies"
    explanations: str = "gold.explanations"


def candle_from_row(row: dict[str, Any]) -> Candle:
    """A Candle from a query row whose window_start/window_end are epoch microseconds."""
    return candle_map.candle_from_row(row)


def record_from_row(contract: str, row: dict[str, Any]) -> Any:
    """An anomaly or explanation from a query row (same field names as the Avro contract).
    Both engines hand TIMESTAMP(6) back naive: the tables hold UTC wall time. DuckDB hands
    a MAP back as a key/value list or a dict-like."""
    from candleflow import records

    row = dict(row)
    for k, v in row.items():
        if isinstance(v, datetime) and v.tzinfo is None:
            row[k] = v.replace(tzinfo=UTC)
    details = row.get("details")
    if isinstance(details, list):
        row["details"] = {kv["key"]: kv["value"] for kv in details}
    elif details is not None and not isinstance(details, dict):
        row["details"] = dict(details)
    return records.from_avro(contract, row)


def load_catalog(settings: StackSettings) -> Any:
    """The stack's JDBC (SQLite) catalog through PyIceberg's SqlCatalog."""
    from adapters.catalog import catalog

    return catalog(settings)
