"""One mapping between a Candle and a row of named columns.

Every path that turns a record into a Candle goes through `candle_from_row`: the Avro
record (records.candle_from_avro), a Flink Row (jobs/anomalies.py), a job's output file
(jobs/candle_files.py), a history query row (serving/history.py) and the Kafka encoder's
arguments (jobs/candle_wire.py). Only how a timestamp or a decimal arrives differs, so
those are the parameters.

The column list is the newest `candle` Avro contract: its field names are the Kafka,
Iceberg and SQL column names, and the lists are generated from it (jobs' Flink DDL and
serving's SELECT lists too). A contract field is one of two kinds:

- *stored* (`CANDLE_COLUMNS`): a field of `domain.Candle`, emitted by the candle operator
  and held by every row: the rows above carry these;
- *derived* (`DERIVED_COLUMNS`): a property of `domain.Candle`, a figure of its stored
  fields (Candle v2's `volatility`). Writers compute it (the Avro encoder, the Iceberg
  sink), readers derive it from the candle, and a row that carries a different value is
  refused (`candle_from_row`).

A new candle field is a new contract version plus the field (stored) or the property
(derived) on `domain.Candle`; the import-time check below says so when the two disagree.
`columns(version)` gives any version's columns (Flink DDL per contract version; the Trade
contract's too, `columns(version, "trade")`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from functools import cache
from typing import Any, Literal

from candleflow.contracts import schema, versions
from candleflow.domain import Candle

Kind = Literal["string", "timestamp", "decimal", "long", "int", "boolean"]


@dataclasses.dataclass(frozen=True, slots=True)
class Column:
    name: str  # column / Avro field name
    attr: str  # the domain attribute (timestamps carry a `_us` suffix: epoch microseconds)
    kind: Kind
    nullable: bool
    derived: bool = False  # a Candle property computed from the stored columns


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
    raise ValueError(f"contract: no column kind for Avro type {avro_type!r}")


_ATTRS = tuple(f.name for f in dataclasses.fields(Candle))


@cache
def columns(version: int | None = None, contract: str = "candle") -> tuple[Column, ...]:
    """The fields of a contract version (default the newest) as columns, in contract order.
    A candle field that is not a `Candle` field is derived."""
    known = versions(contract)
    if version is not None and version not in known:
        raise ValueError(f"{contract} contract version {version}: this build knows {known}")
    out = []
    for f in schema(contract, version)["fields"]:
        typ = f["type"]
        nullable = isinstance(typ, list) and "null" in typ
        if nullable:
            (typ,) = [t for t in typ if t != "null"]
        kind = _kind(typ)
        attr = f"{f['name']}_us" if kind == "timestamp" else f["name"]
        derived = contract == "candle" and attr not in _ATTRS
        out.append(Column(f["name"], attr, kind, nullable, derived))
    return tuple(out)


CANDLE_COLUMNS = tuple(c for c in columns() if not c.derived)
CANDLE_COLUMN_NAMES = tuple(c.name for c in CANDLE_COLUMNS)
DERIVED_COLUMNS = tuple(c for c in columns() if c.derived)

if tuple(c.attr for c in CANDLE_COLUMNS) != _ATTRS:
    raise ImportError(
        "domain.Candle and the newest candle contract disagree: "
        f"{_ATTRS} vs {tuple(c.attr for c in CANDLE_COLUMNS)}"
    )
for _c in DERIVED_COLUMNS:
    if not isinstance(getattr(Candle, _c.attr, None), property) or not _c.nullable:
        raise ImportError(
            f"candle contract field {_c.name!r} is neither a domain.Candle field nor an "
            "optional field derived by a Candle property"
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
    column is a broken row: ValueError naming the column. A nullable column may be absent,
    a derived one too; one present must equal the Candle's own figure (else ValueError).
    """
    kw: dict[str, Any] = {}
    for c in CANDLE_COLUMNS:
        value = row.get(c.name) if c.nullable else row[c.name]
        if value is None:
            if not c.nullable:
                raise ValueError(f"candle row with a null required column {c.name!r}: {row}")
            kw[c.attr] = None
        else:
            kw[c.attr] = _convert(c, value, timestamp, decimal)
    candle = Candle(**kw)
    for c in DERIVED_COLUMNS:
        # A written figure must be the candle's own (else the writer had another contract).
        value = row.get(c.name)
        if value is not None and _convert(c, value, timestamp, decimal) != getattr(candle, c.attr):
            raise ValueError(
                f"candle {candle.exchange}:{candle.symbol} {candle.interval} "
                f"{candle.window_start_us}: {c.name} {value} written, "
                f"{getattr(candle, c.attr)} from its own fields"
            )
    return candle


def _convert(
    c: Column, value: Any, timestamp: Callable[[Any], int], decimal: Callable[[Any], Any]
) -> Any:
    if c.kind == "timestamp":
        return timestamp(value)
    if c.kind == "decimal":
        return decimal(value)
    if c.kind in ("long", "int"):
        return int(value)
    if c.kind == "boolean":
        return bool(value)
    return value


def candle_from_values(values: Sequence[Any], **convert: Any) -> Candle:
    """A Candle from the stored columns' values in order (CANDLE_COLUMN_NAMES), e.g. a UDF's
    arguments."""
    if len(values) != len(CANDLE_COLUMNS):
        raise ValueError(f"{len(values)} candle values for {len(CANDLE_COLUMNS)} columns")
    return candle_from_row(dict(zip(CANDLE_COLUMN_NAMES, values, strict=True)), **convert)
