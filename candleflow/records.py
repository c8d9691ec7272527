"""Domain records <-> Avro record dicts for the five contracts (exact, no floats).

Decimals: the contracts carry `bytes decimal(38,18)`. fastavro writes a Decimal only when
it has at most 18 fractional digits and never checks the precision, so we quantize to
exactly 18 places here and refuse values that would lose a digit or need more than 20
integer digits, instead of letting them be rounded or written out of range.
Times: `timestamp-micros` is written as the int of UTC epoch microseconds; fastavro (and
confluent's AvroDeserializer) read it back as an aware datetime, which we turn back into
an int with integer arithmetic, so the round trip is exact to the microsecond.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal, Inexact, InvalidOperation
from typing import Any

from candleflow.candle_map import DERIVED_COLUMNS, candle_from_row
from candleflow.contracts import DECIMAL_PRECISION, DECIMAL_SCALE
from candleflow.domain import (
    KLINE_DECIMALS,
    Anomaly,
    Candle,
    Explanation,
    InstrumentKind,
    LateTrade,
    Side,
    Trade,
)

AvroDict = dict[str, Any]

_QUANTUM = Decimal(1).scaleb(-DECIMAL_SCALE)
_MAX_ABS = Decimal(10) ** (DECIMAL_PRECISION - DECIMAL_SCALE)  # 10^20, exclusive
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


class DecimalRangeError(ValueError):
    """A value that does not fit the contracts' DECIMAL(38,18)."""


def fit_decimal(
    value: Decimal | int | str, *, rounding: str | None = None, name: str = "value"
) -> Decimal:
    """`value` at exactly 18 decimal places, or DecimalRangeError.

    By default a value with more than 18 significant fractional digits is refused (it
    would be silently rounded); pass `rounding` (e.g. decimal.ROUND_HALF_UP, as Flink's
    DECIMAL(38,18) arithmetic does) to round deliberately, e.g. for a computed quotient.
    """
    if isinstance(value, float):  # a float has already lost the exact value
        raise TypeError(f"{name}: float {value!r} given; use Decimal (or str) for money")
    dec = value if isinstance(value, Decimal) else Decimal(value)
    if not dec.is_finite():
        raise DecimalRangeError(f"{name}: {dec} is not a finite number")
    traps = [InvalidOperation] if rounding else [Inexact, InvalidOperation]
    ctx = Context(prec=DECIMAL_PRECISION + 100, rounding=rounding or ROUND_HALF_EVEN, traps=traps)
    try:
        quantized = dec.quantize(_QUANTUM, context=ctx)
    except Inexact:
        raise DecimalRangeError(
            f"{name}: {dec} has more than {DECIMAL_SCALE} decimal places; round it first "
            f"(candleflow.records.fit_decimal(v, rounding=ROUND_HALF_UP))"
        ) from None
    if quantized.copy_abs() >= _MAX_ABS:  # copy_abs: abs() would round to 28 digits
        raise DecimalRangeError(
            f"{name}: {dec} does not fit DECIMAL({DECIMAL_PRECISION},{DECIMAL_SCALE}) "
            f"(|value| must be < 10^{DECIMAL_PRECISION - DECIMAL_SCALE})"
        )
    return quantized


def _dec_out(value: Decimal | None, name: str) -> Decimal | None:
    return None if value is None else fit_decimal(value, name=name)


def _dec_in(value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bytes | bytearray):  # raw bytes when logical types are not applied
        return Decimal(int.from_bytes(value, "big", signed=True)).scaleb(-DECIMAL_SCALE)
    raise TypeError(f"expected a Decimal from Avro, got {type(value).__name__}")


def micros_in(value: int | datetime) -> int:
    """UTC epoch microseconds from what an Avro reader returns for timestamp-micros."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: timestamp-micros must be UTC-aware")
        return (value - _EPOCH) // _ONE_US
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected epoch microseconds (int) or datetime, got {value!r}")
    return value


# Python (and so fastavro's reader) can only represent years 1..9999 as datetimes.
MIN_MICROS = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // _ONE_US
MAX_MICROS = (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC) - _EPOCH) // _ONE_US


def micros_out(us: int, name: str = "time") -> int:
    """Epoch microseconds checked to be readable back (year 1..9999)."""
    if isinstance(us, bool) or not isinstance(us, int):
        raise TypeError(f"{name}: expected int epoch microseconds, got {us!r}")
    if not MIN_MICROS <= us <= MAX_MICROS:
        raise ValueError(f"{name}: {us} µs is outside years 1..9999")
    return us


def micros_to_datetime(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


# --- Trade -------------------------------------------------------------------------------


def _trade_fields(t: Trade) -> AvroDict:
    return {
        "exchange": t.exchange,
        "symbol": t.symbol,
        "native_symbol": t.native_symbol,
        "trade_id": t.trade_id,
        "price": fit_decimal(t.price, name="price"),
        "quantity": fit_decimal(t.quantity, name="quantity"),
        "side": Side(t.side).value,
        "event_time": micros_out(t.event_time_us, "event_time"),
        "ingest_time": micros_out(t.ingest_time_us, "ingest_time"),
        "first_trade_id": t.first_trade_id,
        "last_trade_id": t.last_trade_id,
        "kind": InstrumentKind(t.kind).value,
        "contract_size": _dec_out(t.contract_size, "contract_size"),
    }


def _trade_from(d: Mapping[str, Any]) -> Trade:
    return Trade(
        exchange=d["exchange"],
        symbol=d["symbol"],
        native_symbol=d["native_symbol"],
        trade_id=d["trade_id"],
        price=_dec_in(d["price"]),  # type: ignore[arg-type]
        quantity=_dec_in(d["quantity"]),  # type: ignore[arg-type]
        side=Side(d["side"]),
        event_time_us=micros_in(d["event_time"]),
        ingest_time_us=micros_in(d["ingest_time"]),
        first_trade_id=d.get("first_trade_id"),
        last_trade_id=d.get("last_trade_id"),
        kind=InstrumentKind(d.get("kind", "SPOT")),
        contract_size=_dec_in(d.get("contract_size")),
        sequence=d.get("sequence"),
    )


def trade_to_avro(t: Trade) -> AvroDict:
    # sequence: Trade v2 (a v1 writer schema ignores the key; LateTrade stays v1).
    return {**_trade_fields(t), "sequence": t.sequence}


def trade_from_avro(d: Mapping[str, Any]) -> Trade:
    return _trade_from(d)


# --- LateTrade (a Trade's fields flattened, plus why it is late) ---------------------------


def late_trade_to_avro(lt: LateTrade) -> AvroDict:
    return {
        **_trade_fields(lt.trade),
        "interval": lt.interval,
        "window_start": micros_out(lt.window_start_us, "window_start"),
        "reason": lt.reason,
        "watermark": micros_out(lt.watermark_us, "watermark"),
    }


def late_trade_from_avro(d: Mapping[str, Any]) -> LateTrade:
    return LateTrade(
        trade=_trade_from(d),
        interval=d["interval"],
        window_start_us=micros_in(d["window_start"]),
        reason=d["reason"],
        watermark_us=micros_in(d["watermark"]),
    )


# --- Candle ------------------------------------------------------------------------------

_CANDLE_DECIMALS = KLINE_DECIMALS


def candle_to_avro(c: Candle) -> AvroDict:
    out: AvroDict = {
        "exchange": c.exchange,
        "symbol": c.symbol,
        "interval": c.interval,
        "window_start": micros_out(c.window_start_us, "window_start"),
        "window_end": micros_out(c.window_end_us, "window_end"),
    }
    for name in _CANDLE_DECIMALS:
        out[name] = fit_decimal(getattr(c, name), name=name)
    out.update(
        trade_count=c.trade_count,
        vwap=_dec_out(c.vwap, "vwap"),
        first_trade_id=c.first_trade_id,
        last_trade_id=c.last_trade_id,
        revision=c.revision,
        is_empty=c.is_empty,
    )
    # Fields added since v1 that are figures of the fields above (Candle v2's volatility):
    # a writer schema of an older version ignores the keys.
    for col in DERIVED_COLUMNS:
        value = getattr(c, col.attr)
        out[col.name] = _dec_out(value, col.name) if col.kind == "decimal" else value
    return out


def candle_from_avro(d: Mapping[str, Any]) -> Candle:
    return candle_from_row(d, timestamp=micros_in, decimal=_dec_in)


# --- Anomaly / Explanation ---------------------------------------------------------------


def anomaly_to_avro(a: Anomaly) -> AvroDict:
    return {
        "anomaly_id": a.anomaly_id,
        "rule": a.rule,
        "severity": a.severity,
        "exchange": a.exchange,
        "symbol": a.symbol,
        "interval": a.interval,
        "window_start": micros_out(a.window_start_us, "window_start"),
        "window_end": micros_out(a.window_end_us, "window_end"),
        "value": float(a.value),
        "threshold": float(a.threshold),
        "status": a.status,
        "candle_revision": a.candle_revision,
        "details": dict(a.details),
    }


def anomaly_from_avro(d: Mapping[str, Any]) -> Anomaly:
    return Anomaly(
        anomaly_id=d["anomaly_id"],
        rule=d["rule"],
        severity=d["severity"],
        exchange=d["exchange"],
        symbol=d["symbol"],
        interval=d["interval"],
        window_start_us=micros_in(d["window_start"]),
        window_end_us=micros_in(d["window_end"]),
        value=d["value"],
        threshold=d["threshold"],
        status=d["status"],
        candle_revision=d["candle_revision"],
        details=dict(d.get("details") or {}),
    )


def explanation_to_avro(e: Explanation) -> AvroDict:
    return {
        "anomaly_id": e.anomaly_id,
        "summary": e.summary,
        "key_factors": list(e.key_factors),
        "confidence": float(e.confidence),
        "caveats": list(e.caveats),
        "model": e.model,
        "offline": e.offline,
        "created_at": micros_out(e.created_at_us, "created_at"),
    }


def explanation_from_avro(d: Mapping[str, Any]) -> Explanation:
    return Explanation(
        anomaly_id=d["anomaly_id"],
        summary=d["summary"],
        key_factors=list(d["key_factors"]),
        confidence=d["confidence"],
        caveats=list(d["caveats"]),
        model=d["model"],
        offline=d["offline"],
        created_at_us=micros_in(d["created_at"]),
    )


# --- dispatch ----------------------------------------------------------------------------

CONTRACT_OF_TYPE: dict[type, str] = {
    Trade: "trade",
    Candle: "candle",
    LateTrade: "late_trade",
    Anomaly: "anomaly",
    Explanation: "explanation",
}
_TO: dict[str, Callable[[Any], AvroDict]] = {
    "trade": trade_to_avro,
    "candle": candle_to_avro,
    "late_trade": late_trade_to_avro,
    "anomaly": anomaly_to_avro,
    "explanation": explanation_to_avro,
}
_FROM: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "trade": trade_from_avro,
    "candle": candle_from_avro,
    "late_trade": late_trade_from_avro,
    "anomaly": anomaly_from_avro,
    "explanation": explanation_from_avro,
}


def contract_of(obj: object) -> str:
    try:
        return CONTRACT_OF_TYPE[type(obj)]
    except KeyError:
        raise TypeError(f"no Avro contract for {type(obj).__name__}") from None


def to_avro(obj: Trade | Candle | LateTrade | Anomaly | Explanation) -> AvroDict:
    """The Avro record dict of a domain object (contract chosen by its type)."""
    return _TO[contract_of(obj)](obj)


def from_avro(contract: str, record: Mapping[str, Any]) -> Any:
    """The domain object of an Avro record dict of `contract` ("trade", "candle", ...)."""
    try:
        return _FROM[contract](record)
    except KeyError as exc:
        if contract not in _FROM:
            raise ValueError(f"unknown contract {contract!r}; one of {sorted(_FROM)}") from None
        raise ValueError(f"{contract} record lacks field {exc.args[0]!r}") from None
