"""History through PyIceberg (snapshot, data files) + DuckDB (the query). Embedded default."""

from __future__ import annotations

import threading
from typing import Any

import duckdb
from pyiceberg.exceptions import NoSuchTableError

from adapters import iceberg_files
from candleflow.config import StackSettings
from candleflow.domain import Anomaly, Candle, Explanation
from serving.history import (
    CandleQuery,
    NotFound,
    Tables,
    candle_from_row,
    load_catalog,
    record_from_row,
)

_SELECT = """
SELECT exchange, symbol, "interval", epoch_us(window_start) AS window_start,
       epoch_us(window_end) AS window_end, open, high, low, close, volume, quote_volume,
       trade_count, taker_buy_volume, taker_buy_quote_volume, vwap, first_trade_id,
       last_trade_id, revision, is_empty
FROM read_parquet($files, union_by_name = true, filename = true) AS d
JOIN (SELECT unnest($files) AS file, unnest($seqs) AS seq) AS f ON d.filename = f.file
WHERE symbol = $symbol AND "interval" = $interval
  AND ($exchange IS NULL OR exchange = $exchange)
  AND epoch_us(window_start) >= $start AND ($end IS NULL OR epoch_us(window_start) < $end)
QUALIFY row_number() OVER (PARTITION BY exchange, symbol, "interval", window_start
                           ORDER BY f.seq DESC, revision DESC) = 1
ORDER BY window_start, exchange
LIMIT $limit
"""


# The current row of one id in a table upserted on it (gold.anomalies: ACTIVE, then maybe
# RETRACTED, then maybe ACTIVE again; gold.explanations has one row per id). The data files
# keep every row ever written; the current one is in the file committed last (highest data
# sequence number: the upsert's equality delete removes the rows of every earlier commit),
# and within one commit the last written (Flink's upsert writer position-deletes a row of
# the same key written earlier in the same checkpoint, in the same file). No column of the
# row orders the states: a retraction carries the revision of the window it re-evaluated,
# which may equal the ACTIVE record's.
_CURRENT_BY_ID = """
SELECT d.* EXCLUDE (filename, file_row_number)
FROM read_parquet($files, union_by_name = true, filename = true, file_row_number = true) AS d
JOIN (SELECT unnest($files) AS file, unnest($seqs) AS seq) AS f ON d.filename = f.file
WHERE d.anomaly_id = $id
ORDER BY f.seq DESC, d.file_row_number DESC
LIMIT 1
"""


class DuckDBHistory:
    def __init__(self, settings: StackSettings, tables: Tables):
        self.settings = settings
        self.tables = tables
        self._catalog: Any = None
        self._lock = threading.Lock()

    @property
    def catalog(self) -> Any:
        if self._catalog is None:
            self._catalog = load_catalog(self.settings)
        return self._catalog

    def _table(self, name: str) -> Any:
        try:
            return self.catalog.load_table(name)
        except NoSuchTableError:
            raise NotFound(f"table {name} does not exist yet") from None

    @staticmethod
    def snapshot(table: Any, snapshot_id: int | None, as_of_us: int | None) -> Any:
        if snapshot_id is not None:
            snap = table.snapshot_by_id(snapshot_id)
            if snap is None:
                raise NotFound(f"snapshot_id: {snapshot_id} is not a snapshot of {table.name()}")
            return snap
        if as_of_us is not None:
            snap = table.snapshot_as_of_timestamp(as_of_us // 1000)
            if snap is None:
                raise NotFound(f"as_of_us: {table.name()} has no snapshot at or before it")
            return snap
        return table.current_snapshot()

    @staticmethod
    def data_files(table: Any, snap: Any) -> list[str]:
        return [path for path, _ in iceberg_files.data_files(table, snap)]

    def _query(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        with self._lock:  # one connection per call: DuckDB connections are not thread-safe
            con = duckdb.connect()
        try:
            cur = con.execute(sql, params)
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]
        finally:
            con.close()

    def get_candles(self, q: CandleQuery) -> tuple[list[Candle], int]:
        table = self._table(self.tables.candles)
        snap = self.snapshot(table, q.snapshot_id, q.as_of_us)
        if snap is None:
            return [], 0
        with_seqs = iceberg_files.data_files(table, snap)
        if not with_seqs:
            return [], snap.snapshot_id
        rows = self._query(
            _SELECT,
            {
                "files": [path for path, _ in with_seqs],
                "seqs": [seq for _, seq in with_seqs],
                "symbol": q.symbol,
                "interval": q.interval,
                "exchange": q.exchange,
                "start": q.start_us,
                "end": q.end_us,
                "limit": q.limit,
            },
        )
        return [candle_from_row(r) for r in rows], snap.snapshot_id

    def list_symbols(self) -> list[tuple[str, str, list[str]]]:
        table = self._table(self.tables.candles)
        snap = table.current_snapshot()
        files = self.data_files(table, snap) if snap is not None else []
        if not files:
            return []
        rows = self._query(
            'SELECT exchange, symbol, list(DISTINCT "interval" ORDER BY "interval") AS i '
            "FROM read_parquet($files, union_by_name = true) GROUP BY 1, 2 ORDER BY 1, 2",
            {"files": files},
        )
        return [(r["exchange"], r["symbol"], list(r["i"])) for r in rows]

    def get_anomaly(self, anomaly_id: str) -> tuple[Anomaly | None, Explanation | None]:
        out: list[Any] = []
        for name, contract in (
            (self.tables.anomalies, "anomaly"),
            (self.tables.explanations, "explanation"),
        ):
            try:
                table = self._table(name)
            except NotFound:
                out.append(None)
                continue
            snap = table.current_snapshot()
            with_seqs = iceberg_files.data_files(table, snap) if snap is not None else []
            rows = (
                self._query(
                    _CURRENT_BY_ID,
                    {
                        "files": [path for path, _ in with_seqs],
                        "seqs": [seq for _, seq in with_seqs],
                        "id": anomaly_id,
                    },
                )
                if with_seqs
                else []
            )
            out.append(record_from_row(contract, rows[0]) if rows else None)
        return out[0], out[1]
