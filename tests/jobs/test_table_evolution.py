"""Iceberg schema evolution of bronze.trades and silver.candles (Trade/Candle v2): a table
made by the v1 job gains the v2 column, optional and last, its key unchanged; rows written
before read NULL; making the tables again changes nothing; an older job's ensure leaves a
newer table as it is. On a throwaway SQLite catalog, no stack: < 5 s."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from adapters.iceberg_files import data_files
from candleflow.config import StackSettings
from jobs.candle_iceberg import CANDLE_KEY, ensure_bronze_table, ensure_silver_table
from jobs.candle_tables import candle_columns, trade_columns


@pytest.fixture
def settings(tmp_path: Path) -> StackSettings:
    return StackSettings(data_dir=tmp_path)


def _names(table) -> list[str]:
    return [f.name for f in table.schema().fields]


@pytest.mark.parametrize(
    "ensure,columns,added",
    [
        (ensure_bronze_table, trade_columns, "sequence"),
        (ensure_silver_table, candle_columns, "volatility"),
    ],
)
def test_a_v1_table_gains_the_v2_column(settings, ensure, columns, added) -> None:
    v1 = ensure(settings, "ns", 1)
    assert _names(v1) == [n for n, _ in columns(1)]
    key = v1.schema().identifier_field_ids
    v2 = ensure(settings, "ns")
    assert _names(v2) == [n for n, _ in columns(1)] + [added]
    field = v2.schema().find_field(added)
    assert not field.required and field.field_id > max(f.field_id for f in v1.schema().fields)
    assert v2.schema().identifier_field_ids == key
    assert ensure(settings, "ns").schema() == v2.schema()  # idempotent
    assert ensure(settings, "ns", 1).schema() == v2.schema()  # an old job leaves it be


def test_silver_rows_written_before_the_column_read_null(settings) -> None:
    silver = ensure_silver_table(settings, "ns", 1)
    assert [f.name for f in silver.schema().fields if f.field_id in
            silver.schema().identifier_field_ids] == list(CANDLE_KEY)  # fmt: skip
    row = {
        "exchange": "binance", "symbol": "BTC-USDT", "interval": "1m",
        "window_start": 0, "window_end": 60_000_000, "trade_count": 1, "revision": 0,
        "is_empty": False, "first_trade_id": 1, "last_trade_id": 1,
    }  # fmt: skip
    schema = silver.schema().as_arrow()

    def arrow(extra: dict) -> pa.Table:
        values = {**row, **extra}
        cols = {f.name: [values.get(f.name, 1)] for f in schema}
        return pa.Table.from_pydict(cols, schema=schema)

    silver.append(arrow({}))
    silver = ensure_silver_table(settings, "ns")
    schema = silver.schema().as_arrow()
    from decimal import Decimal

    silver.append(arrow({"window_start": 60_000_000, "volatility": Decimal("0.5")}))
    files = [p for p, _ in data_files(silver, silver.current_snapshot())]
    got = duckdb.sql(
        f"SELECT epoch_us(window_start), volatility FROM read_parquet({files!r}, "
        "union_by_name = true) ORDER BY 1"
    ).fetchall()
    assert got == [(0, None), (60_000_000, Decimal("0.5"))]
    assert [r["volatility"] for r in silver.scan().to_arrow().to_pylist()] in (
        [None, Decimal("0.5")],
        [Decimal("0.5"), None],
    )
