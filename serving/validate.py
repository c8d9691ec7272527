"""Request validation: pure functions raising BadArgument that names the offending field."""

from __future__ import annotations

import functools
import re
from typing import Any

from candleflow.config import CandleSettings
from candleflow.domain import EXCHANGES
from candleflow.intervals import Interval, parse_intervals

MAX_SYMBOLS = 1000
MAX_LIMIT = 100_000
# Canonical BASE-QUOTE with an optional market suffix (BTC-USDT, BTC-USD-PERP).
_SYMBOL = re.compile(r"^[A-Z0-9]{1,20}-[A-Z0-9]{1,20}(-[A-Z0-9]{1,20})?$")
_EXCHANGE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_ANOMALY_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
# Far enough in the future to be a mistake (year 2200), in microseconds.
_MAX_TIME_US = 7_258_118_400_000_000


class BadArgument(ValueError):
    """An invalid request field; becomes INVALID_ARGUMENT with "field: reason"."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field


def _symbol(field: str, value: str) -> None:
    if not _SYMBOL.match(value):
        raise BadArgument(field, f"{value[:40]!r} is not a canonical symbol like BTC-USDT")


@functools.cache
def served_intervals() -> tuple[str, ...]:
    """The intervals the candle job computes (CANDLEFLOW_CANDLES_INTERVALS): no other one
    has candles, so asking for one is the client's mistake, not an empty answer."""
    return tuple(iv.name for iv in parse_intervals(CandleSettings().intervals))


def _interval(field: str, value: str) -> None:
    allowed = served_intervals()
    try:
        Interval.parse(value)
    except ValueError:
        raise BadArgument(
            field, f"{value[:20]!r} is not an interval; allowed: {', '.join(allowed)}"
        ) from None
    if value not in allowed:
        raise BadArgument(
            field, f"{value[:20]!r} is not a served interval; allowed: {', '.join(allowed)}"
        )


def _exchange(field: str, value: str) -> None:
    if not _EXCHANGE.match(value) or value not in EXCHANGES:
        raise BadArgument(
            field, f"{value[:40]!r} is not a known exchange; allowed: {', '.join(EXCHANGES)}"
        )


def _time(field: str, value: int) -> None:
    if value < 0 or value > _MAX_TIME_US:
        raise BadArgument(field, f"{value} is not UTC epoch microseconds (0 .. year 2200)")


def _symbols(values: Any, required: bool) -> None:
    if required and not values:
        raise BadArgument("symbols", "at least one symbol is required")
    if len(values) > MAX_SYMBOLS:
        raise BadArgument("symbols", f"at most {MAX_SYMBOLS} symbols per stream")
    for i, s in enumerate(values):
        _symbol(f"symbols[{i}]", s)


def cursor(req_cursor: Any, allowed_topics: set[str]) -> None:
    seen = set()
    for i, o in enumerate(req_cursor.offsets):
        if o.topic not in allowed_topics:
            raise BadArgument(
                f"cursor.offsets[{i}].topic", f"{o.topic[:60]!r} is not a topic of this stream"
            )
        if o.partition < 0:
            raise BadArgument(f"cursor.offsets[{i}].partition", "must be >= 0")
        if o.offset < 0:
            raise BadArgument(f"cursor.offsets[{i}].offset", "must be >= 0")
        if (o.topic, o.partition) in seen:
            raise BadArgument(f"cursor.offsets[{i}]", "partition listed twice")
        seen.add((o.topic, o.partition))


def _start(req: Any, topics: set[str]) -> None:
    which = req.WhichOneof("start")
    if which == "cursor":
        cursor(req.cursor, topics)
    elif which == "start_time_us":
        _time("start_time_us", req.start_time_us)
    elif which == "from_beginning" and not req.from_beginning:
        raise BadArgument("from_beginning", "set it to true or leave `start` unset")


def stream_candles(req: Any, topics: set[str]) -> None:
    _symbols(req.symbols, required=True)
    for i, v in enumerate(req.intervals):
        _interval(f"intervals[{i}]", v)
    for i, v in enumerate(req.exchanges):
        _exchange(f"exchanges[{i}]", v)
    _start(req, topics)


def stream_anomalies(req: Any, topics: set[str]) -> None:
    _symbols(req.symbols, required=False)
    _start(req, topics)


def get_candles(req: Any) -> None:
    if not req.symbol:
        raise BadArgument("symbol", "required")
    _symbol("symbol", req.symbol)
    if not req.interval:
        raise BadArgument("interval", "required")
    _interval("interval", req.interval)
    if req.exchange:
        _exchange("exchange", req.exchange)
    _time("start_us", req.start_us)
    if req.end_us:
        _time("end_us", req.end_us)
        if req.end_us <= req.start_us:
            raise BadArgument("end_us", "must be after start_us (or 0 for no bound)")
    if req.limit < 0 or req.limit > MAX_LIMIT:
        raise BadArgument("limit", f"must be 0 (default) .. {MAX_LIMIT}")
    which = req.WhichOneof("as_of")
    if which == "snapshot_id" and req.snapshot_id <= 0:
        raise BadArgument("snapshot_id", "must be a positive Iceberg snapshot id")
    if which == "as_of_us":
        _time("as_of_us", req.as_of_us)


def get_anomaly(req: Any) -> None:
    if not req.anomaly_id:
        raise BadArgument("anomaly_id", "required")
    if not _ANOMALY_ID.match(req.anomaly_id):
        raise BadArgument("anomaly_id", "1-128 characters of [A-Za-z0-9_.:-]")
