"""The live path's fast lane for Binance trade frames: one function per frame from the
WebSocket text to the acknowledged-Kafka produce call, without building a `Trade`.

`Connection` installs it as its `receive` when the sink can take Avro bytes directly (the
real `TradeProducer`, see `AvroLane`). Per frame it does exactly what the general route
(`Connection.handle` -> `binance.parse` -> `GapTracker.observe` -> `TradeProducer`
-> `avro_trade.encode_body`) does for an ordinary trade, with the same checks, and writes
the same bytes (tests/ingest/test_lane.py compares the two routes message for message and
with fastavro):

- msgspec decodes the frame into binance's typed structs (`binance.decode_combined`);
- the price and size texts map to their encoded DECIMAL(38,18) bytes through a cache keyed
  by the text; a text enters it only after `new_decimal` (positive, finite, < 10^20) and
  the encoder (at most 18 places) both accepted it;
- times, ids and the subscribed-symbol / clock-skew options are checked as in parse;
- the trade must be the next id of its market (the gap tracker's high-water mark + 1).

Anything else — a frame msgspec refuses, an unknown or unsubscribed symbol, a value that
does not fit, the first trade of a market, a duplicate, a gap, a control frame — goes
through `Connection.handle` unchanged (which names rejects and records gaps). The lane
changes no state before it has decided to take a frame.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from candleflow.domain import Side
from ingest import binance
from ingest.avro_trade import _LOW14, _SIDE_BYTES, _SMALL, _cached_decimal, _head, _long, _tail
from ingest.common import _MS_US_BOUNDARY, MAX_LONG, decimals, new_decimal

if TYPE_CHECKING:
    from ingest.connection import Connection


@dataclass(frozen=True, slots=True)
class AvroLane:
    """What a sink hands the lane: the Confluent header of its registered Trade schema, the
    topic, and how to produce encoded bytes (the raw call, its delivery callback, the
    backpressure route for a full queue) and serve delivery reports."""

    header: bytes
    topic: str
    produce: Callable[..., None]  # confluent_kafka.Producer.produce (positional)
    on_delivery: Callable[[Any, Any], None]
    produce_blocking: Callable[[str, bytes, bytes], None]  # (topic, key, value), waits for room
    poll: Callable[[float], int]
    poll_every: int


# text -> Avro bytes of the validated Decimal it stands for (bounded: cleared when full)
_CACHE_MAX = 1 << 16
_decimal_bytes: dict[str, bytes] = {}


def decimal_bytes(text: str) -> bytes:
    """The DECIMAL(38,18) bytes of a price or size text; raises (InvalidOperation,
    ValueError, DecimalRangeError) exactly when parse or the encoder would refuse it."""
    value = decimals.get(text) or new_decimal(text)
    out = _cached_decimal(value, "price")
    if len(_decimal_bytes) >= _CACHE_MAX:
        _decimal_bytes.clear()
    _decimal_bytes[text] = out
    return out


class _Native:
    """One native symbol's constant bytes and its gap-tracker state, once known."""

    __slots__ = ("key", "prefix", "tail", "tracked", "symbol")

    def __init__(self, symbol: str, prefix: bytes, key: bytes, tail: bytes) -> None:
        self.symbol = symbol
        self.prefix = prefix
        self.key = key
        self.tail = tail
        self.tracked: Any = None  # the GapTracker's state of the market, once it has one


# µs times the table-driven join can write (see avro_trade.encode_body): 1970-01-26..3111
_TIME_LO, _TIME_HI = 1 << 41, 1 << 55


def binance_receiver(conn: Connection, lane: AvroLane) -> Callable[[str | bytes], None]:
    """A `receive(frame)` for this connection: the lane, falling back to conn.handle."""
    from ingest.connection import METRICS_SYNC_S, SINK_POLL_S

    decode = binance.decode_combined
    agg = binance._AggTrade
    stats, handle = conn.stats, conn.handle
    tracker_markets = conn.tracker._markets
    symbols, skew = conn.options.symbols, conn.options.max_skew_us
    header, topic, produce, on_delivery = lane.header, lane.topic, lane.produce, lane.on_delivery
    produce_blocking, poll, poll_every = lane.produce_blocking, lane.poll, lane.poll_every
    markets: dict[str, _Native] = {}
    texts = _decimal_bytes
    low14, small, time_lo, time_hi = _LOW14, _SMALL, _TIME_LO, _TIME_HI
    sell, buy = _SIDE_BYTES[Side.SELL], _SIDE_BYTES[Side.BUY]
    monotonic, time_ns = time.monotonic, time.time_ns
    unpolled = 0
    due = 0.0  # next time to serve delivery reports / sync metrics

    def market(native: str) -> _Native | None:
        try:
            symbol, kind, contract_size = binance.market_fast(native)
        except ValueError:
            return None
        if symbols is not None and symbol not in symbols:
            return None
        found = _Native(
            symbol,
            header + _head(binance.EXCHANGE, symbol, native),
            f"{binance.EXCHANGE}:{symbol}".encode(),
            _tail(kind, contract_size),
        )
        markets[native] = found
        return found

    def receive(frame: str | bytes) -> None:
        nonlocal unpolled, due
        now = monotonic()
        stats.last_activity = now
        ingest = time_ns() // 1000
        try:
            d = decode(frame).data
            m = markets.get(d.s) or market(d.s)
            p = texts.get(d.p) or decimal_bytes(d.p)
            q = texts.get(d.q) or decimal_bytes(d.q)
        except Exception:  # noqa: BLE001 - the general route names what was wrong
            m = None
        if m is not None:
            t = d.T
            ev = t * 1000 if t < _MS_US_BOUNDARY else t
            tracked = m.tracked
            if tracked is None:
                tracked = m.tracked = tracker_markets.get((binance.EXCHANGE, m.symbol))
            if (
                time_lo <= ev < time_hi
                and time_lo <= ingest < time_hi
                and (skew is None or abs(ev - ingest) <= skew)
                and tracked is not None
            ):
                if isinstance(d, agg):
                    tid, first, last = d.a, d.f, d.l
                    ok = 0 <= first <= last <= MAX_LONG and tid == tracked.high + 1
                    ids = (b"\x02" + _long(first), b"\x02" + _long(last)) if ok else ()
                else:
                    tid = d.t
                    ok = tid == tracked.high + 1
                    ids = (b"\x00", b"\x00")
                if ok and 0 <= tid <= MAX_LONG:
                    tracked.high = tid
                    tracked.high_time_us = ev
                    ze, zi = ev << 1, ingest << 1
                    value = b"".join(
                        (
                            m.prefix,
                            _long(tid),
                            p,
                            q,
                            sell if d.m else buy,
                            low14[ze & 0x3FFF],
                            low14[(ze >> 14) & 0x3FFF],
                            low14[(ze >> 28) & 0x3FFF],
                            small[ze >> 42],
                            low14[zi & 0x3FFF],
                            low14[(zi >> 14) & 0x3FFF],
                            low14[(zi >> 28) & 0x3FFF],
                            small[zi >> 42],
                            *ids,
                            m.tail,
                        )
                    )
                    try:
                        produce(topic, value, m.key, -1, on_delivery)
                    except BufferError:
                        produce_blocking(topic, m.key, value)
                    stats.frames += 1
                    stats.trades += 1
                    conn._trade_frames += 1
                    conn._stream_trades += 1
                    unpolled += 1
                    if unpolled >= poll_every:
                        unpolled = 0
                        poll(0)
                    if now >= due:
                        _housekeeping(now)
                    return
        handle(frame)
        if now >= due:
            _housekeeping(now)

    def _housekeeping(now: float) -> None:
        """Connection.receive's periodic work: serve delivery reports, sync metrics."""
        nonlocal due
        due = now + SINK_POLL_S
        conn._polled_at = now
        poll(0)
        if now - conn._synced_at >= METRICS_SYNC_S:
            conn.sync_metrics()

    return receive


__all__ = ["AvroLane", "binance_receiver", "decimal_bytes"]
