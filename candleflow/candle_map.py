"""One mapping between a Candle and a row of named columns.

Every path that turns a record into a Candle goes through `candle_from_row`: the Avro
record (records.candle_from_avro), a Flink Row (jobs/anomalies.py), a job's output file
(jobs/candle_files.py), a history query row (serving/history.py) and the Kafka encoder's
arguments (jobs/candle_wire.py). Only how a timestamp or a decimal arrives differs, so
those are the parameters.

The column list is the newest `candle` Avro contract: its field names are the Kafka,
Iceberg and SQL column names, and `CANDLE_COLUMNS` is generated from it (jobs' Flink DDL
and serving's SELECT lists too). A new candle field is a new contract version plus the
field on `domain.Candle`; the import-time check below says so when the two disagree.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal

from candleflow.contracts import schema
from candleflow.domain import Candle

Kind = Literal["string", "timestamp", "decimal", "long", "int", "boolean"]


@dataclasses.dataclass(frozen=True, slots=True)
class Column:
    name: str  # column / Avro field name
    attr: str  # the Candle attribute (timestamps carry a `_us` suffix: epoch microseconds)
    kind: Kind
    nullable: bool


def _kind(avro_type: Any) -> Kind:
    if isinstance(avro_type, dict):
        logical = avro_type.get("logicalType")
        if logical == "timestamp-micros":
            return "timestamp"
        if logical == "decimal":
            return "decimal"
        avro_type = avro_type["type"]
    if avro_type in ("string", "long", "int", "boolean"):
        return avro_type  # type: ignore[no-any-return]
    raise ValueError(f"candle contract: no column kind for Avro type {avro_type!r}")


def _columns() -> tuple[Column, ...]:
    out = []
    for f in schema("candle")["fields"]:
        typ = f["type"]
        nullable = isinstance(typ, list) and "null" in typ
        if nullable:
            (typ,) = [t for t in typ if t != "null"]
        kind = _kind(typ)
        attr = f"{f['name']}_us" if kind == "timestamp" else f["name"]
        out.append(Column(f["name"], attr, kind, nullable))
    return tuple(out)


CANDLE_COLUMNS = _columns()
CANDLE_COLUMN_NAMES = tuple(c.name for c in CANDLE_COLUMNS)

_ATTRS = tuple(f.name for f in dataclasses.fields(Candle))
if tuple(c.attr for c in CANDLE_COLUMNS) != _ATTRS:
    raise ImportError(
        "domain.Candle and the newest candle contract disagree: "
        f"{_ATTRS} vs {tuple(c.attr for c in CANDLE_COLUMNS)}"
    )


def to_decimal(value: Any) -> Decimal:
    """An exact Decimal from a Decimal, int or decimal text (never through a float)."""
    return value if isinstance(value, Decimal) else Decimal(str(value))


def candle_from_row(
    row: Mapping[str, Any],
    *,
    timestamp: Callable[[Any], int] = int,
    decimal: Callable[[Any], Decimal | None] = to_decimal,
) -> Candle:
    """A Candle from a row keyed by the contract's column names.

    `timestamp` turns a window bound into epoch microseconds (the default takes them as
    they are); `decimal` turns a price or quantity into a Decimal. A null in a NOT NULL
    column is a broken row: ValueError naming the column. A nullable column may be absent.
    """
    kw: dict[str, Any] = {}
    for c in CANDLE_COLUMNS:
        value = row.get(c.name) if c.nullable else row[c.name]
        if value is None:
            if not c.nullable:
                raise ValueError(f"candle row with a null required column {c.name!r}: {row}")
            kw[c.attr] = None
        elif c.kind == "timestamp":
            kw[c.attr] = timestamp(value)
        elif c.kind == "decimal":
            kw[c.attr] = decimal(value)
        elif c.kind in ("long", "int"):
            kw[c.attr] = int(value)
        elif c.kind == "boolean":
            kw[c.attr] = bool(value)
        else:
            kw[c.attr] = value
    return Candle(**kw)


def candle_from_values(values: Sequence[Any], **convert: Any) -> Candle:
    """A Candle from values in column order (CANDLE_COLUMN_NAMES), e.g. a UDF's arguments."""
    if len(values) != len(CANDLE_COLUMNS):
        raise ValueError(f"{len(values)} candle values for {len(CANDLE_COLUMNS)} columns")
    return candle_from_row(dict(zip(CANDLE_COLUMN_NAMES, values, strict=True)), **convert)
