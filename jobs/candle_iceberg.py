"""Iceberg tables of the candles job: bronze.trades (append) and silver.candles (v2 upsert).

bronze.trades has no identifier fields on purpose: the job writes each trade id once (the
PTF deduplicates), and with identifier fields Iceberg's Flink sink switches to its equality
delta writer (a key map and delete files per checkpoint), which cost a fifth of the job's
CPU in the profile (docs/benchmarks.md "Candles").

Created with PyIceberg (Flink DDL cannot declare a day() partition transform); the job then
writes them through the shared JDBC catalog (candleflow.catalog). silver.candles upserts on
its identifier fields (exchange, symbol, interval, window_start): the last revision wins.
"""

from __future__ import annotations

import contextlib

from pyiceberg.exceptions import NamespaceAlreadyExistsError, TableAlreadyExistsError
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.transforms import DayTransform
from pyiceberg.types import (
    BooleanType,
    DecimalType,
    IntegerType,
    LongType,
    NestedField,
    StringType,
    TimestampType,
)

from candleflow import catalog as shared_catalog
from candleflow.config import StackSettings
from jobs.candle_tables import CANDLE_COLUMNS, TRADE_COLUMNS

_TYPES = {
    "STRING": StringType(),
    "BIGINT": LongType(),
    "INT": IntegerType(),
    "BOOLEAN": BooleanType(),
    "TIMESTAMP(6)": TimestampType(),
    "DECIMAL(38, 18)": DecimalType(38, 18),
}
CANDLE_KEY = ("exchange", "symbol", "interval", "window_start")


def _schema(columns: list[tuple[str, str]], key: tuple[str, ...]) -> Schema:
    fields = []
    for n, (name, typ) in enumerate(columns, start=1):
        base = typ.replace(" NOT NULL", "")
        fields.append(NestedField(n, name, _TYPES[base], required=typ.endswith("NOT NULL")))
    ids = [f.field_id for f in fields if f.name in key]
    return Schema(*fields, identifier_field_ids=ids)


def _day_spec(schema: Schema, column: str) -> PartitionSpec:
    source = schema.find_field(column)
    return PartitionSpec(PartitionField(source.field_id, 1000, DayTransform(), f"{column}_day"))


# zstd instead of Iceberg's gzip default for tables that do not name a codec: gzip was the
# bronze writer's largest cost (bench/candles), zstd compresses as well at a fraction of it.
PARQUET = {"write.parquet.compression-codec": "zstd"}


def ensure_tables(
    settings: StackSettings | None = None, *, bronze: str = "bronze", silver: str = "silver"
) -> tuple[Table, Table]:
    """Create (if missing) `<bronze>.trades` and `<silver>.candles`; returns both."""
    cat = shared_catalog.catalog(settings)
    for ns in (bronze, silver):
        with contextlib.suppress(NamespaceAlreadyExistsError):
            cat.create_namespace(ns)
    trades_schema = _schema(TRADE_COLUMNS, ())
    candles_schema = _schema(CANDLE_COLUMNS, CANDLE_KEY)
    tables = []
    for ident, schema, spec, props in (
        (
            f"{bronze}.trades",
            trades_schema,
            _day_spec(trades_schema, "event_time"),
            {"format-version": "2", **PARQUET},
        ),
        (
            f"{silver}.candles",
            candles_schema,
            _day_spec(candles_schema, "window_start"),
            {"format-version": "2", "write.upsert.enabled": "true", **PARQUET},
        ),
    ):
        try:
            tables.append(
                cat.create_table(ident, schema=schema, partition_spec=spec, properties=props)
            )
        except TableAlreadyExistsError:
            tables.append(cat.load_table(ident))
    for n, table in enumerate(tables):
        if any(table.properties.get(k) != v for k, v in PARQUET.items()):
            # Made by an earlier version: new data files get zstd (metadata only).
            with table.transaction() as tx:
                tx.set_properties(PARQUET)
            tables[n] = cat.load_table(table.name())
    bronze_table = tables[0]
    if bronze_table.schema().identifier_field_ids:
        # Made by an earlier version: drop the key so the sink appends (metadata only).
        with bronze_table.update_schema() as update:
            update.set_identifier_fields()
        bronze_table = cat.load_table(f"{bronze}.trades")
    return bronze_table, tables[1]
