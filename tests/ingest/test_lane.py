"""The Binance fast lane (ingest/lane.py) produces exactly what the general route produces.

Two connections see the same frames at the same ingest clock: one into a sink that offers
the lane (raw Avro bytes), one into the same sink without it (parse -> Trade -> gap
tracker -> encode_body). Messages (topic, key, bytes), rejects, statistics and gaps must
be identical, frame for frame — real frames, and real frames duplicated, reordered, lost,
corrupted, from unsubscribed or unknown markets, with values the contract cannot hold.
The lane's bytes are also checked against fastavro directly.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters import avro
from candleflow.binance_files import read_trades
from candleflow.domain import Trade
from devstack.fakes.exchange import binance_agg_frames
from devstack.sample_data import COINM_DAY
from ingest import binance, lane
from ingest.avro_trade import TradeEncoder
from ingest.common import DEFAULT_OPTIONS, ParseOptions, Reject, TradeBatch
from ingest.connection import Connection, Endpoint

SCHEMA_ID = 7


class Sink:
    """Records what a TradeProducer would send: (topic, key, Avro bytes) and rejects."""

    def __init__(self) -> None:
        self.encode = TradeEncoder(SCHEMA_ID)
        self.messages: list[tuple[str, bytes, bytes]] = []
        self.rejects: list[tuple[str, str, str, str]] = []
        self.general_trades = 0  # trades that came the general route (produce_many)
        self.polls = 0
        self.full = 0  # the next N raw produce() calls find the queue full
        self.blocked = 0
        self.produced = 0

    def produce_many(self, trades: list[Trade]) -> None:  # TradeProducer.produce_many
        self.general_trades += len(trades)
        for t in trades:
            try:
                value = self.encode(t)
            except ValueError as exc:
                self.rejects.append((t.exchange, "BAD_TYPE", repr(t), str(exc)))
                continue
            self.messages.append(("trades", t.key.encode(), value))
            self.produced += 1

    def produce_reject(self, reject: Reject) -> None:
        self.rejects.append((reject.exchange, reject.reason.value, reject.raw, reject.detail))

    def poll(self, timeout: float = 0) -> int:
        self.polls += 1
        return 0

    def _delivered(self, err: Any, msg: Any) -> None:  # pragma: no cover - never called here
        pass

    def _raw(self, topic: str, value: bytes, key: bytes, partition: int, cb: Any) -> None:
        assert partition == -1 and cb == self._delivered
        if self.full:
            self.full -= 1
            raise BufferError("queue full")
        self.messages.append((topic, key, value))

    def _blocking(self, topic: str, key: bytes, value: bytes) -> None:
        self.blocked += 1
        self.produced += 1
        self.messages.append((topic, key, value))


class LaneSink(Sink):
    def avro_lane(self) -> lane.AvroLane:
        return lane.AvroLane(
            owner=self,
            header=self.encode.header,
            topic="trades",
            produce=self._raw,
            on_delivery=self._delivered,
            produce_blocking=self._blocking,
            poll=self.poll,
            poll_every=64,
        )


class Clock:
    """time.time_ns for both routes (common.now_us and the lane read it)."""

    def __init__(self) -> None:
        self.us = 1_778_198_400_000_000

    def __call__(self) -> int:
        return self.us * 1000


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(time, "time_ns", c)
    return c


def _pair(options: ParseOptions = DEFAULT_OPTIONS) -> tuple[Connection, Connection]:
    ep = Endpoint("binance", "ws://unused.invalid", [], aggregate=True)
    return (
        Connection(
            ep, sink := LaneSink(), options=options, fast_lane=lane.fast_lane("binance", sink)
        ),
        Connection(ep, Sink(), options=options),
    )


def _state(conn: Connection) -> dict[str, Any]:
    sink = conn.sink
    assert isinstance(sink, Sink)
    if conn._before_sync is not None:
        conn._before_sync()  # the lane's counts, as sync_metrics() hands them on
    s = conn.stats
    gaps = [gap for _, gap in list(conn._gaps._queue)]  # type: ignore[attr-defined]
    return {
        "messages": list(sink.messages),
        "rejects": list(sink.rejects),
        "stats": (s.frames, s.trades, s.duplicates, s.rejects, s.controls),
        "counts": (conn._trade_frames, conn._control_frames, conn._stream_trades),
        "gaps": gaps,
        "high": conn.tracker._markets.get(("binance", "BTC-USD-PERP")),
    }


def _feed(
    frames: list[str | bytes],
    clock: Clock,
    options: ParseOptions = DEFAULT_OPTIONS,
    ingest: list[int] | None = None,
) -> tuple[Connection, Connection]:
    fast, plain = _pair(options)
    assert fast.receive != plain.receive  # the lane is installed on one of them only
    for i, frame in enumerate(frames):
        if ingest is not None:
            clock.us = ingest[i]
        fast.receive(frame)
        plain.receive(frame)
        assert _state(fast) == _state(plain), (i, frame)
    return fast, plain


COIN_M = [
    t
    for _, t in zip(
        range(400),
        read_trades(COINM_DAY),
        strict=False,
    )
]
FRAMES = binance_agg_frames(COIN_M, "BTCUSD_PERP")


def _with(frame: str, **data: object) -> str:
    obj = json.loads(frame)
    obj["data"].update(data)
    return json.dumps(obj, separators=(",", ":"))


def test_real_frames_take_the_lane_and_equal_the_general_route(clock: Clock) -> None:
    fast, plain = _feed(list(FRAMES), clock)
    sink = fast.sink
    assert isinstance(sink, LaneSink)
    assert len(sink.messages) == len(FRAMES) and sink.general_trades == 1  # only the first
    for (_, key, value), trade in zip(sink.messages, COIN_M, strict=True):
        assert key == b"binance:BTC-USD-PERP" and value[:5] == b"\x00\x00\x00\x00\x07"
        decoded = avro.decode("trade", value[5:])
        assert avro.encode(decoded) == value[5:]  # fastavro writes the very same bytes
        assert (decoded.trade_id, decoded.price, decoded.quantity, decoded.side) == (
            trade.trade_id,
            trade.price,
            trade.quantity,
            trade.side,
        )
        assert (decoded.event_time_us, decoded.first_trade_id, decoded.last_trade_id) == (
            trade.event_time_us,
            trade.first_trade_id,
            trade.last_trade_id,
        )
        assert decoded.ingest_time_us == clock.us


def test_faults_and_bad_frames_take_the_general_route_with_the_same_result(clock: Clock) -> None:
    f = FRAMES
    frames: list[str | bytes] = [
        *f[:10],
        f[8],  # duplicate
        f[11],
        f[10],  # reordered: a gap, then its filler
        *f[12:20],
        *f[25:30],  # 5 lost: a gap
        f[30].encode(),  # bytes frames take the lane too
        _with(f[31], p="0"),  # NON_POSITIVE
        _with(f[31], q="1.0000000000000000001"),  # 19 places: the encoder refuses it
        _with(f[31], p="1e20"),
        _with(f[31], s="NOPE"),  # unknown symbol
        _with(f[31], s="ETHUSD_PERP"),  # another market: its first trade, then the lane
        _with(f[32], s="ETHUSD_PERP"),
        _with(f[31], a=2**63),  # does not fit a long
        _with(f[31], f=5, l=4),  # last < first
        _with(f[31], T=f[31].count("x") - 1),  # not an epoch time
        _with(f[31], T=json.loads(f[31])["data"]["T"] * 1000),  # µs
        _with(f[32], m=True, M=False),
        json.dumps({"result": None, "id": 1}),  # control
        json.dumps(json.loads(f[33])["data"]),  # a raw-stream frame (no wrapper)
        f[34][:40],  # truncated
        *f[35:60],
        _with(f[60], a=str(COIN_M[60].trade_id)),  # digit-string id: only the checked path
        f[61],
    ]
    fast, _ = _feed(frames, clock)
    sink = fast.sink
    assert isinstance(sink, LaneSink)
    assert len(sink.messages) - sink.general_trades >= 25  # the lane took the ordinary frames
    reasons = [r[1] for r in sink.rejects]
    assert reasons.count("BAD_TYPE") >= 5 and "NON_POSITIVE" in reasons
    assert "UNKNOWN_SYMBOL" in reasons and "MALFORMED_JSON" in reasons


def test_live_options_subscribed_symbols_and_clock_skew(clock: Clock) -> None:
    options = ParseOptions(symbols=frozenset({"BTC-USD-PERP"}), max_skew_us=5_000_000)
    frames: list[str | bytes] = [*FRAMES[:50], _with(FRAMES[50], s="ETHUSD_PERP"), *FRAMES[51:80]]
    ingest = [json.loads(f)["data"]["T"] * 1000 + 1000 for f in frames]
    ingest[20] += 5_000_000 - 1000  # exactly at the limit: accepted
    ingest[21] += 5_000_000  # beyond: CLOCK_SKEW
    ingest[22] -= 20_000_000
    fast, _ = _feed(frames, clock, options, ingest)
    sink = fast.sink
    assert isinstance(sink, LaneSink)
    assert [r[1] for r in sink.rejects] == ["CLOCK_SKEW", "CLOCK_SKEW", "UNKNOWN_SYMBOL"]


def test_a_full_queue_waits_in_order_and_reports_are_served(clock: Clock) -> None:
    fast, plain = _pair()
    sink = fast.sink
    assert isinstance(sink, LaneSink)
    for frame in FRAMES[:5]:
        fast.receive(frame)
    sink.full = 3
    for frame in FRAMES[5:300]:
        fast.receive(frame)
    assert sink.blocked == 3 and sink.produced == len(sink.messages) == 300  # each counted once
    assert [avro.decode("trade", v[5:]).trade_id for _, _, v in sink.messages] == [
        t.trade_id for t in COIN_M[:300]
    ]
    assert sink.polls >= 300 // 64  # delivery reports served every POLL_EVERY messages
    fast.sync_metrics()
    assert (fast.stats.frames, fast.stats.trades, fast._stream_trades) == (300, 300, 300)


_texts = st.one_of(
    st.decimals(min_value=Decimal("1e-20"), max_value=Decimal("1e21"), places=20).map(str),
    st.decimals(min_value=Decimal("1e-8"), max_value=Decimal("1e12"), places=8).map(str),
    st.sampled_from(["1", "0.1", "1.10", "100", "1E+2", "1e-18", "1e-19", "0", "-1", "NaN"]),
)


@settings(max_examples=300, deadline=None)
@given(
    price=_texts,
    qty=_texts,
    trade_id=st.integers(min_value=1, max_value=2**63),
    span=st.integers(min_value=0, max_value=2**40),
    ms=st.integers(min_value=1, max_value=4_000_000_000_000),
    micros=st.booleans(),
    maker=st.booleans(),
    aggregate=st.booleans(),
)
def test_lane_bytes_equal_fastavro_and_the_general_route(
    price: str,
    qty: str,
    trade_id: int,
    span: int,
    ms: int,
    micros: bool,
    maker: bool,
    aggregate: bool,
) -> None:
    now = time.time_ns
    clock = Clock()
    time.time_ns = clock  # type: ignore[assignment]
    try:
        t = ms * 1000 if micros else ms
        data: dict[str, object] = {
            "e": "aggTrade" if aggregate else "trade",
            "E": ms,
            "s": "BTCUSD_PERP" if aggregate else "BTCUSDT",
            "p": price,
            "q": qty,
            "T": t,
            "m": maker,
        }
        if aggregate:
            data.update(a=trade_id, f=trade_id * 3, l=trade_id * 3 + span)
        else:
            data["t"] = trade_id
        frame = json.dumps({"stream": "x", "data": data})
        primer = json.dumps(
            {
                "stream": "x",
                "data": {
                    **data,
                    "p": "1",
                    "q": "1",
                    "T": 1_778_198_400_000,
                    **({"a": trade_id - 1, "f": 0, "l": 0} if aggregate else {"t": trade_id - 1}),
                },
            }
        )
        fast, _ = _feed([primer, frame], clock)
        sink = fast.sink
        assert isinstance(sink, LaneSink)
        parsed = binance.parse(frame, clock.us)
        if isinstance(parsed, TradeBatch) and len(sink.messages) == 2:
            (trade,) = parsed
            assert sink.messages[1][2] == sink.encode.header + avro.encode(trade)
    finally:
        time.time_ns = now  # type: ignore[assignment]


def test_decimal_bytes_refuse_what_parse_or_the_encoder_refuse() -> None:
    assert lane.decimal_bytes("1.5") == lane.decimal_bytes("1.50") == lane._decimal_bytes["1.5"]
    for bad in ("0", "-1", "NaN", "sNaN", "Infinity", "1e20", "1.0000000000000000001", "x"):
        with pytest.raises((ValueError, ArithmeticError)):
            lane.decimal_bytes(bad)
        assert bad not in lane._decimal_bytes


def test_prometheus_counts_through_the_lane_are_exact(clock: Clock) -> None:
    from prometheus_client import REGISTRY

    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    keys = (
        ("candleflow_ingest_frames_total", {"exchange": "binance", "outcome": "trades"}),
        ("candleflow_ingest_frames_total", {"exchange": "binance", "outcome": "control"}),
        ("candleflow_ingest_trades_total", {"exchange": "binance", "source": "stream"}),
        ("candleflow_ingest_duplicates_total", {"exchange": "binance"}),
    )
    before = [value(n, **labels) for n, labels in keys]
    fast, _ = _pair()
    frames = [*FRAMES[:100], *FRAMES[90:95], json.dumps({"result": None, "id": 1})]
    for frame in frames:
        fast.receive(frame)
    fast.sync_metrics()  # also runs every METRICS_SYNC_S and when a session ends
    after = [value(n, **labels) for n, labels in keys]
    assert [a - b for a, b in zip(after, before, strict=True)] == [105, 1, 100, 5]
    fast.sync_metrics()  # nothing counted twice
    assert [value(n, **labels) for n, labels in keys] == after
    assert (fast.stats.frames, fast.stats.trades, fast.stats.duplicates) == (106, 100, 5)


def test_the_lane_is_chosen_by_the_caller_for_binance_into_an_avro_sink() -> None:
    """Connection does not pick the lane itself: the CLI passes lane.fast_lane(...)."""
    assert lane.fast_lane("coinbase", LaneSink()) is None
    assert lane.fast_lane("binance", Sink()) is None
    laned, plain = _pair()
    assert getattr(laned.receive, "__func__", None) is not Connection.receive  # the lane's
    assert getattr(plain.receive, "__func__", None) is Connection.receive
