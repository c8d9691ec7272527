"""Iceberg tables of the bronze job, bronze.trades (append), and of the candles job,
silver.candles (v2 upsert).

bronze.trades has no identifier fields on purpose: the bronze job writes each trade id once
(it deduplicates, jobs/bronze.py), and with identifier fields Iceberg's Flink sink switches
to its equality delta writer (a key map and delete files per checkpoint), which cost a fifth
of the job's CPU in the profile (docs/benchmarks.md "Candles").

Created with PyIceberg (Flink DDL cannot declare a day() partition transform); the job then
writes them through the shared JDBC catalog (adapters.catalog). silver.candles upserts on
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

from adapters import catalog as shared_catalog
from candleflow.config import StackSettings
from jobs.candle_tables import candle_columns, trade_columns

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


def _ensure(
    settings: StackSettings | None,
    namespace: str,
    name: str,
    columns: list[tuple[str, str]],
    key: tuple[str, ...],
    day_column: str,
    props: dict[str, str],
) -> Table:
    """Create `<namespace>.<name>` if missing (day-partitioned, format v2, zstd); returns it."""
    cat = shared_catalog.catalog(settings)
    with contextlib.suppress(NamespaceAlreadyExistsError):
        cat.create_namespace(namespace)
    schema = _schema(columns, key)
    ident = f"{namespace}.{name}"
    try:
        table = cat.create_table(
            ident,
            schema=schema,
            partition_spec=_day_spec(schema, day_column),
            properties={"format-version": "2", **props, **PARQUET},
        )
    except TableAlreadyExistsError:
        table = cat.load_table(ident)
    table = _evolve(table, columns)
    if any(table.properties.get(k) != v for k, v in PARQUET.items()):
        # Made by an earlier version: new data files get zstd (metadata only).
        with table.transaction() as tx:
            tx.set_properties(PARQUET)
        table = cat.load_table(ident)
    return table


def _evolve(table: Table, columns: list[tuple[str, str]]) -> Table:
    """Add the contract's columns the table lacks (a newer contract version), optional and
    at the end: Iceberg schema evolution is metadata only, rows written before read NULL.
    Columns the table has beyond `columns` (an older job on a newer table) stay."""
    have = {f.name for f in table.schema().fields}
    missing = [(n, t) for n, t in columns if n not in have]
    if not missing:
        return table
    for _, typ in missing:
        if typ.endswith("NOT NULL"):
            raise ValueError(f"{table.name()}: cannot add a required column ({missing})")
    with table.update_schema() as update:
        for name, typ in missing:
            update.add_column(name, _TYPES[typ], required=False)
    return table.refresh()


def ensure_bronze_table(
    settings: StackSettings | None = None, namespace: str = "bronze", version: int | None = None
) -> Table:
    """Create (if missing) `<namespace>.trades`, the bronze job's append table, with the
    Trade contract's columns at `version` (default the newest), adding any it lacks."""
    cols = trade_columns(version)
    table = _ensure(settings, namespace, "trades", cols, (), "event_time", {})
    if table.schema().identifier_field_ids:
        # Made by an earlier version: drop the key so the sink appends (metadata only).
        with table.update_schema() as update:
            update.set_identifier_fields()
        table = shared_catalog.catalog(settings).load_table(f"{namespace}.trades")
    return table


def ensure_silver_table(
    settings: StackSettings | None = None, namespace: str = "silver", version: int | None = None
) -> Table:
    """Create (if missing) `<namespace>.candles`, the candles job's upsert table, with the
    Candle contract's columns at `version` (default the newest), adding any it lacks."""
    return _ensure(
        settings,
        namespace,
        "candles",
        candle_columns(version),
        CANDLE_KEY,
        "window_start",
        {"write.upsert.enabled": "true"},
    )


def ensure_tables(
    settings: StackSettings | None = None, *, bronze: str = "bronze", silver: str = "silver"
) -> tuple[Table, Table]:
    """Create (if missing) `<bronze>.trades` and `<silver>.candles`; returns both."""
    return ensure_bronze_table(settings, bronze), ensure_silver_table(settings, silver)
