"""What every exchange adapter shares: the parse result types, reject reasons and the
strict field readers that turn a bad field into a Reject instead of an exception.

Adapters are pure: `parse(frame, ingest_time_us, options) -> TradeBatch | Reject`. A
TradeBatch is a list of Trades (empty for control frames) that also says whether the
frame was a control message and which connection sequence number it carried.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from functools import lru_cache
from typing import Any

from candleflow.domain import Trade
from candleflow.epoch import to_us
from candleflow.records import MAX_MICROS

try:  # orjson is several times faster on the hot path; the stdlib is the fallback
    import orjson

    def loads(frame: str | bytes) -> Any:
        return orjson.loads(frame)

    _JSON_ERRORS: tuple[type[Exception], ...] = (orjson.JSONDecodeError, ValueError)
except ImportError:  # pragma: no cover

    def loads(frame: str | bytes) -> Any:
        return json.loads(frame)

    _JSON_ERRORS = (ValueError,)

# The connection loop's clock (ingest/connection.py and its Binance lane, ingest/lane.py).
METRICS_SYNC_S = 0.5  # how stale the hot path's Prometheus counters may get
SINK_POLL_S = 0.02  # the longest a frame's delivery reports wait for the loop's poll


def loads_exact(frame: str | bytes) -> Any:
    """JSON with every non-integer number read as Decimal (Kraken v2 sends prices as numbers)."""
    return json.loads(frame, parse_float=Decimal)


def now_us() -> int:
    return time.time_ns() // 1000


class RejectReason(StrEnum):
    MALFORMED_JSON = "MALFORMED_JSON"
    MISSING_FIELD = "MISSING_FIELD"
    BAD_TYPE = "BAD_TYPE"
    NON_POSITIVE = "NON_POSITIVE"
    NON_FINITE = "NON_FINITE"
    CLOCK_SKEW = "CLOCK_SKEW"
    UNKNOWN_SYMBOL = "UNKNOWN_SYMBOL"
    UNEXPECTED_MESSAGE = "UNEXPECTED_MESSAGE"


@dataclass(frozen=True, slots=True)
class Reject:
    """A frame that could not become trades. The whole frame is rejected, never half of it."""

    exchange: str
    reason: RejectReason
    raw: str
    detail: str
    ingest_time_us: int

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "exchange": self.exchange,
                "reason": self.reason.value,
                "detail": self.detail,
                "ingest_time_us": self.ingest_time_us,
                "ingest_time": datetime.fromtimestamp(self.ingest_time_us / 1e6, UTC).isoformat(),
                "raw": self.raw,
            },
            separators=(",", ":"),
        ).encode()


class TradeBatch(list):  # type: ignore[type-arg]
    """The trades of one frame, plus what the connection loop needs to know about the frame.

    control: a recognised non-trade message (subscription ack, heartbeat, status), by name.
    sequence: the connection-level sequence number, where the exchange sends one
    (Coinbase Advanced Trade `sequence_num`); a jump means frames were lost.
    No __init__ of its own: building a one-trade batch is list's C constructor (hot path).
    """

    control: str | None = None
    sequence: int | None = None


def batch(trades: Any = (), control: str | None = None, sequence: int | None = None) -> TradeBatch:
    out = TradeBatch(trades)
    if control is not None:
        out.control = control
    if sequence is not None:
        out.sequence = sequence
    return out


def _trade_factory() -> Any:
    """A Trade constructor ~2.5x faster than the frozen dataclass's own __init__ (which goes
    through object.__setattr__ per field): the fields are stored into an unfrozen twin with
    the very same slots (plain attribute stores, which CPython specializes), then the
    object's class is switched to Trade; Python allows that only when the two layouts are
    identical, and checks it. The result is an ordinary, frozen Trade. Positional, every
    field given; tests check it builds objects equal to Trade(...)."""
    names = [f.name for f in dataclasses.fields(Trade)]
    if list(Trade.__slots__) != names:
        raise RuntimeError("Trade's slots no longer match its fields")
    twin = type("_MutableTrade", (), {"__slots__": tuple(names)})
    lines = [f"def make_trade({', '.join(names)}):", "    t = _Twin()"]
    lines += [f"    t.{n} = {n}" for n in names] + ["    t.__class__ = Trade", "    return t"]
    scope: dict[str, Any] = {"_new": object.__new__, "Trade": Trade, "_Twin": twin}
    exec("\n".join(lines), scope)  # noqa: S102 - generated from the dataclass's own fields
    return scope["make_trade"]


make_trade: Callable[..., Trade] = _trade_factory()  # the one place a Trade's class is switched


@dataclass(frozen=True, slots=True)
class ParseOptions:
    """symbols: canonical symbols we subscribed to (None: accept any well-formed symbol).
    max_skew_us: reject trades whose time is further than this from the ingest time
    (None: off, as for replay of recorded data)."""

    symbols: frozenset[str] | None = None
    max_skew_us: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # whether admit() has anything to check (the hot paths skip the call when not: replay)
    checks: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        checks = self.symbols is not None or self.max_skew_us is not None
        object.__setattr__(self, "checks", checks)


DEFAULT_OPTIONS = ParseOptions()
# The contracts' DECIMAL(38,18) holds |x| < 10^20; a larger price or size is refused here.
MAX_DECIMAL = Decimal(10) ** 20
LIVE_MAX_SKEW_US = 5 * 60 * 1_000_000  # trade time more than 5 minutes off the clock


# Validated prices and sizes by their exact text. A trade stream repeats the same price
# levels and round sizes, so most values are a dict hit instead of Decimal(text) plus the
# range checks, and equal texts share one (immutable) Decimal. Bounded: cleared when full.
_DECIMAL_CACHE_MAX = 1 << 16
decimals: dict[str, Decimal] = {}


def new_decimal(text: str) -> Decimal:
    """The Decimal of a price or size string, strictly positive and < 10^20, or raises
    (InvalidOperation, ValueError): the fast paths' reader; dec() names the reason.
    Fast paths look in `decimals` first: `decimals.get(text) or new_decimal(text)`."""
    value = Decimal(text)
    if not _ZERO < value < MAX_DECIMAL:  # a NaN raises InvalidOperation here
        raise ValueError(text)
    if len(decimals) >= _DECIMAL_CACHE_MAX:
        decimals.clear()
    decimals[text] = value
    return value


_ZERO = Decimal(0)


class Bad(Exception):
    """Raised by the field readers; parse() turns it into a Reject."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def reject(exchange: str, frame: str | bytes, bad: Bad, ingest_time_us: int) -> Reject:
    raw = frame.decode("utf-8", "replace") if isinstance(frame, bytes | bytearray) else frame
    return Reject(exchange, bad.reason, raw, bad.detail, ingest_time_us)


def parse_json(frame: str | bytes, exact: bool = False) -> Any:
    try:
        return loads_exact(frame) if exact else loads(frame)
    except _JSON_ERRORS as exc:
        raise Bad(RejectReason.MALFORMED_JSON, str(exc)[:200]) from None
    except (TypeError, UnicodeDecodeError) as exc:
        raise Bad(RejectReason.MALFORMED_JSON, str(exc)[:200]) from None


def get(obj: Any, key: str | int, what: str = "") -> Any:
    """obj[key], or a MISSING_FIELD / BAD_TYPE reject."""
    try:
        value = obj[key]
    except (KeyError, IndexError):
        raise Bad(RejectReason.MISSING_FIELD, f"missing {what or key}") from None
    except TypeError:
        raise Bad(RejectReason.BAD_TYPE, f"{what or 'container'} is {type(obj).__name__}") from None
    if value is None:
        raise Bad(RejectReason.MISSING_FIELD, f"{what or key} is null")
    return value


def dec(value: Any, what: str) -> Decimal:
    """A strictly positive, finite Decimal from a JSON string (or an exact JSON number)."""
    if type(value) is str:
        cached = decimals.get(value)
        if cached is not None:  # this exact text was validated before
            return cached
        try:
            result = Decimal(value)
        except InvalidOperation:
            raise Bad(RejectReason.BAD_TYPE, f"{what} {value[:40]!r} is not a number") from None
    elif type(value) is Decimal or type(value) is int:
        result = Decimal(value)
    else:  # a float already lost exactness; bool, list, dict are wrong outright
        raise Bad(RejectReason.BAD_TYPE, f"{what} is {type(value).__name__}")
    if not result.is_finite():
        raise Bad(RejectReason.NON_FINITE, f"{what} is {value}")
    if result <= 0:
        raise Bad(RejectReason.NON_POSITIVE, f"{what} is {value}")
    if result >= MAX_DECIMAL:
        raise Bad(RejectReason.BAD_TYPE, f"{what} {value} does not fit DECIMAL(38,18)")
    if type(value) is str:
        if len(decimals) >= _DECIMAL_CACHE_MAX:
            decimals.clear()
        decimals[value] = result
    return result


# Ids are Avro longs in the contracts: a larger one could not be written (and no exchange
# numbers its trades that far), so it is refused like any other bad id.
MAX_LONG = (1 << 63) - 1


def integer(value: Any, what: str) -> int:
    """A non-negative int (at most an Avro long) from a JSON integer or a digit string."""
    if type(value) is int:
        if value < 0:
            raise Bad(RejectReason.BAD_TYPE, f"{what} is negative")
    elif type(value) is str and value.isascii() and value.isdigit():
        value = int(value)
    else:
        raise Bad(RejectReason.BAD_TYPE, f"{what} {str(value)[:40]!r} is not an id")
    if value > MAX_LONG:
        raise Bad(RejectReason.BAD_TYPE, f"{what} {str(value)[:40]} does not fit a long")
    return int(value)


def flag(value: Any, what: str) -> bool:
    if type(value) is bool:
        return value
    raise Bad(RejectReason.BAD_TYPE, f"{what} is {type(value).__name__}, not bool")


def epoch_to_us(value: Any, what: str) -> int:
    """Epoch milliseconds or microseconds (told apart by magnitude: candleflow.epoch) -> µs."""
    if type(value) is not int or value <= 0:
        raise Bad(RejectReason.BAD_TYPE, f"{what} {str(value)[:40]!r} is not an epoch time")
    us = to_us(value)
    if us > MAX_MICROS:
        raise Bad(RejectReason.BAD_TYPE, f"{what} {value} is past year 9999")
    return us


def seconds_to_us(value: Any, what: str) -> int:
    """Epoch seconds with a fraction, as a string or exact number ("1618678142.557535") -> µs."""
    if type(value) is str:
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise Bad(RejectReason.BAD_TYPE, f"{what} {value[:40]!r} is not a time") from None
    elif type(value) is Decimal or type(value) is int:
        number = Decimal(value)
    elif type(value) is float and math.isfinite(value):
        number = Decimal(repr(value))
    else:
        raise Bad(RejectReason.BAD_TYPE, f"{what} is {type(value).__name__}")
    if not number.is_finite() or number <= 0:
        raise Bad(RejectReason.BAD_TYPE, f"{what} {value!r} is not an epoch time")
    us = int(number.scaleb(6).to_integral_value(rounding="ROUND_DOWN"))
    if us > MAX_MICROS:
        raise Bad(RejectReason.BAD_TYPE, f"{what} {value} is past year 9999")
    return us


@lru_cache(maxsize=64)
def _day_start_us(date_part: str) -> int:
    day = datetime.strptime(date_part, "%Y-%m-%d").replace(tzinfo=UTC)
    return int(day.timestamp()) * 1_000_000


def iso_to_us(value: Any, what: str) -> int:
    """RFC 3339 UTC time with 0-9 fraction digits ("2026-08-09T21:05:38.50436Z") -> µs.

    Hand-rolled because datetime.fromisoformat on 3.11 rejects nanoseconds and it sits on
    the per-trade hot path. Digits beyond microseconds are truncated, never rounded up.
    """
    if type(value) is not str:
        raise Bad(RejectReason.BAD_TYPE, f"{what} is {type(value).__name__}")
    try:
        if (
            len(value) < 20
            or value[10] != "T"
            or value[-1] != "Z"
            or value[13] != ":"
            or value[16] != ":"
        ):
            raise ValueError
        base = _day_start_us(value[:10])
        hh, mm, ss = int(value[11:13]), int(value[14:16]), int(value[17:19])
        if hh > 23 or mm > 59 or ss > 60:
            raise ValueError
        frac = value[19:-1]
        micros = 0
        if frac:
            if frac[0] != "." or not frac[1:].isdigit() or len(frac) > 10:
                raise ValueError
            micros = int((frac[1:] + "00000")[:6])
    except ValueError:
        raise Bad(
            RejectReason.BAD_TYPE, f"{what} {value[:40]!r} is not an RFC 3339 UTC time"
        ) from None
    return base + ((hh * 60 + mm) * 60 + ss) * 1_000_000 + micros


# The whole seconds of an RFC 3339 time ("2026-08-09T21:05:42") -> µs, for iso_to_us_fast.
_SECONDS_MAX = 4096
_seconds: dict[str, int] = {}


def iso_to_us_fast(value: str) -> int:
    """iso_to_us for the common shape "YYYY-MM-DDTHH:MM:SS.fZ" (1-9 ASCII fraction digits):
    the whole second's µs from a cache (computed by iso_to_us itself), plus the fraction.
    Raises for anything else (callers then use iso_to_us, which accepts the value or names
    the problem); equal to iso_to_us wherever it returns."""
    base = _seconds.get(value[:19])
    if base is None:
        second = value[:19]
        if len(second) != 19:
            raise ValueError(value)
        base = iso_to_us(second + "Z", "time")  # raises Bad if it is not a time
        if len(_seconds) >= _SECONDS_MAX:
            _seconds.clear()
        _seconds[second] = base
    digits = value[20:-1]
    if (
        value[19:20] != "."
        or value[-1:] != "Z"
        or len(digits) > 9
        or not digits.isdigit()
        or not digits.isascii()
    ):
        raise ValueError(value)
    return base + int(digits[:6].ljust(6, "0"))


# --- The checks every trade passes -----------------------------------------------------
# One place for every exchange and every route: the checked parsers (binance, coinbase,
# kraken, their REST backfill), the msgspec fast paths and the Binance Avro lane all call
# admit(). The checked parsers also call check_symbol() as soon as they know the market
# (so a frame from an unsubscribed market is named UNKNOWN_SYMBOL even when another field
# is bad too; Kraken's v1 frames name one market for many trades). A fast path that
# catches the Bad falls back to its checked path, which raises the same Bad again: the
# reject says the same whichever route saw the trade first.
# Integer epoch times are ms or µs by candleflow.epoch's rule (epoch_to_us, epoch.to_us).


def check_symbol(symbol: str, options: ParseOptions) -> None:
    """UNKNOWN_SYMBOL unless `symbol` (canonical) is one we subscribed to."""
    if options.symbols is not None and symbol not in options.symbols:
        raise Bad(RejectReason.UNKNOWN_SYMBOL, f"{symbol} was not subscribed")


def admit(symbol: str, event_time_us: int, ingest_time_us: int, options: ParseOptions) -> None:
    """A trade of `symbol` at `event_time_us`, seen at `ingest_time_us`, may enter: the
    symbol was subscribed (UNKNOWN_SYMBOL) and the trade time is within max_skew_us of the
    ingest clock (CLOCK_SKEW). Raises Bad naming which."""
    symbols = options.symbols
    if symbols is not None and symbol not in symbols:
        raise Bad(RejectReason.UNKNOWN_SYMBOL, f"{symbol} was not subscribed")
    limit = options.max_skew_us
    if limit is not None and abs(event_time_us - ingest_time_us) > limit:
        raise Bad(
            RejectReason.CLOCK_SKEW,
            f"trade time {event_time_us} is {(event_time_us - ingest_time_us) / 1e6:+.1f}s"
            " from the ingest clock",
        )
