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
from typing import TYPE_CHECKING, Any, Protocol

from candleflow.domain import Side
from candleflow.epoch import to_us
from ingest import binance
from ingest.avro_trade import (
    LOW14,
    SIDE_BYTES,
    cached_decimal,
    market_head,
    market_tail,
    varint,
)
from ingest.common import MAX_LONG, admit, decimals, new_decimal

if TYPE_CHECKING:
    from ingest.common import ParseOptions
    from ingest.gaps import GapTracker


class _Counts(Protocol):
    frames: int
    trades: int
    last_activity: float


class LaneHost(Protocol):
    """What the lane uses of the Connection it serves (ingest/connection.py), named here so
    the lane does not import the connection (which installs the lane)."""

    @property
    def stats(self) -> _Counts: ...

    options: ParseOptions
    tracker: GapTracker
    _trade_frames: int
    _stream_trades: int
    _polled_at: float
    _synced_at: float
    _before_sync: Callable[[], None] | None

    def handle(self, frame: str | bytes) -> None: ...

    def sync_metrics(self) -> None: ...


@dataclass(frozen=True, slots=True)
class AvroLane:
    """What a sink hands the lane: the Confluent header of its registered Trade schema, the
    topic, and how to produce encoded bytes (the raw call, its delivery callback, the
    backpressure route for a full queue) and serve delivery reports."""

    owner: Any  # its `produced` counts every message handed to produce() (TradeProducer)
    header: bytes
    topic: str
    produce: Callable[..., None]  # confluent_kafka.Producer.produce (positional)
    on_delivery: Callable[[Any, Any], None] | None  # None: the producer's default
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
    out = cached_decimal(value, "price")
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


def fast_lane(
    exchange: str, sink: object
) -> Callable[[LaneHost], Callable[[str | bytes], None]] | None:
    """The receive path for a Connection of `exchange` into `sink`, for its `fast_lane`
    argument: Binance frames into a sink that takes Avro bytes (a TradeProducer) go through
    the lane (the same checks and bytes without a Trade object); None: Connection.handle."""
    avro_lane = getattr(sink, "avro_lane", None)
    if exchange != "binance" or avro_lane is None:
        return None
    return lambda conn: binance_receiver(conn, avro_lane())


def binance_receiver(conn: LaneHost, lane: AvroLane) -> Callable[[str | bytes], None]:
    """A `receive(frame)` for this connection: the lane, falling back to conn.handle.

    Costs are in CPython's big-int arithmetic (every id and µs time is a 2-digit int):
    a varint z >= 2^14 is written as its low 14 bits (a table) followed by the varint of
    z >> 14, which consecutive trades share (ids count up, times move slowly), so that
    part is kept per field from the previous trade. Housekeeping (activity time for the
    watchdog, delivery reports, metrics) runs every SINK_POLL_S of the ingest clock."""
    from ingest.common import METRICS_SYNC_S, SINK_POLL_S  # locals: closure cells

    decode = binance.decode_combined
    agg = binance._AggTrade
    exchange = binance.EXCHANGE
    stats, handle = conn.stats, conn.handle
    tracker_markets = conn.tracker._markets
    options = conn.options
    checks = options.checks
    header, topic, produce, on_delivery = lane.header, lane.topic, lane.produce, lane.on_delivery
    produce_blocking, poll, owner = lane.produce_blocking, lane.poll, lane.owner
    poll_mask = lane.poll_every - 1
    if lane.poll_every & poll_mask:
        raise ValueError("poll_every must be a power of two")
    markets: dict[str, _Native] = {}
    texts = _decimal_bytes
    low14, time_lo, time_hi = LOW14, _TIME_LO, _TIME_HI
    sell, buy = SIDE_BYTES[Side.SELL], SIDE_BYTES[Side.BUY]
    no_ids = b"\x00\x00"  # first_trade_id, last_trade_id: null
    monotonic, time_ns, join = time.monotonic, time.time_ns, b"".join
    poll_us = int(SINK_POLL_S * 1_000_000)
    taken = folded = 0  # trades the lane produced; of them, handed to conn's counters
    due_lo = due_hi = 0  # ingest-clock window until the next housekeeping
    # the varint of z >> 14 of the previous trade, per field: id, first, last, times
    t_hi = f_hi = l_hi = e_hi = i_hi = -1
    t_rest = f_rest = l_rest = e_rest = i_rest = b""

    def market(native: str) -> _Native:
        symbol, kind, contract_size = binance.market_fast(native)  # ValueError: unknown
        found = _Native(
            symbol,
            header + market_head(exchange, symbol, native),
            f"{exchange}:{symbol}".encode(),
            market_tail(kind, contract_size),
        )
        if len(markets) < 4096:  # bounded like binance._markets
            markets[native] = found
        return found

    def receive(frame: str | bytes) -> None:
        nonlocal taken, t_hi, f_hi, l_hi, e_hi, i_hi, t_rest, f_rest, l_rest, e_rest, i_rest
        ingest = time_ns() // 1000
        try:
            d = decode(frame).data
            m = markets.get(d.s) or market(d.s)
            p = texts.get(d.p) or decimal_bytes(d.p)
            q = texts.get(d.q) or decimal_bytes(d.q)
            ev = to_us(d.T)
            if checks:
                admit(m.symbol, ev, ingest, options)  # the checks every route shares
        except Exception:  # noqa: BLE001 - the general route names what was wrong
            m = None
        if m is not None:
            tracked = m.tracked
            if tracked is None:  # the general route records a market's first trade
                tracked = m.tracked = tracker_markets.get((exchange, m.symbol))
            if tracked is not None and time_lo <= ev < time_hi and time_lo <= ingest < time_hi:
                if isinstance(d, agg):
                    tid, first, last = d.a, d.f, d.l
                    ok = tid == tracked.high + 1 and 0x2000 <= first <= last <= MAX_LONG
                else:
                    tid, first, last = d.t, -1, -1
                    ok = tid == tracked.high + 1
                # ids >= 2^13 zig-zag to >= 2^14: a low piece and a rest (smaller ids:
                # the general route; no exchange's live ids are that small)
                if ok and 0x2000 <= tid <= MAX_LONG:
                    tracked.high = tid
                    tracked.high_time_us = ev
                    z = tid << 1
                    hi = z >> 14
                    if hi != t_hi:
                        t_hi, t_rest = hi, varint(hi)
                    tid_bytes = low14[z & 0x3FFF]
                    z = ev << 1
                    hi = z >> 14
                    if hi != e_hi:
                        e_hi, e_rest = hi, varint(hi)
                    ev_bytes = low14[z & 0x3FFF]
                    z = ingest << 1
                    hi = z >> 14
                    if hi != i_hi:
                        i_hi, i_rest = hi, varint(hi)
                    side = sell if d.m else buy
                    if first < 0:
                        value = join(
                            (
                                m.prefix,
                                tid_bytes,
                                t_rest,
                                p,
                                q,
                                side,
                                ev_bytes,
                                e_rest,
                                low14[z & 0x3FFF],
                                i_rest,
                                no_ids,
                                m.tail,
                            )
                        )
                    else:
                        zf = first << 1
                        hi = zf >> 14
                        if hi != f_hi:
                            f_hi, f_rest = hi, varint(hi)
                        zl = last << 1
                        hi = zl >> 14
                        if hi != l_hi:
                            l_hi, l_rest = hi, varint(hi)
                        value = join(
                            (
                                m.prefix,
                                tid_bytes,
                                t_rest,
                                p,
                                q,
                                side,
                                ev_bytes,
                                e_rest,
                                low14[z & 0x3FFF],
                                i_rest,
                                b"\x02",
                                low14[zf & 0x3FFF],
                                f_rest,
                                b"\x02",
                                low14[zl & 0x3FFF],
                                l_rest,
                                m.tail,
                            )
                        )
                    try:
                        produce(topic, value, m.key, -1, on_delivery)
                        owner.produced += 1
                    except BufferError:
                        produce_blocking(topic, m.key, value)  # counts it
                    stats.frames += 1
                    stats.trades += 1
                    taken += 1
                    if not taken & poll_mask:
                        poll(0)
                    if not due_lo <= ingest < due_hi:  # (also when the clock stepped back)
                        housekeeping(ingest)
                    return
        handle(frame)
        if not due_lo <= ingest < due_hi:
            housekeeping(ingest)

    def fold() -> None:
        """Hand the lane's trades on to the connection's Prometheus counters."""
        nonlocal folded
        conn._trade_frames += taken - folded
        conn._stream_trades += taken - folded
        folded = taken

    def housekeeping(ingest: int) -> None:
        """Connection.receive's periodic work: activity time, delivery reports, metrics."""
        nonlocal due_lo, due_hi
        due_lo, due_hi = ingest, ingest + poll_us
        now = monotonic()
        stats.last_activity = now  # the watchdog's horizon is seconds: this is plenty
        conn._polled_at = now
        poll(0)
        if now - conn._synced_at >= METRICS_SYNC_S:
            conn.sync_metrics()  # calls fold()

    conn._before_sync = fold
    return receive


__all__ = ["AvroLane", "binance_receiver", "decimal_bytes"]
