"""The connection loop against a fake exchange replaying recorded real frames over real
WebSockets: disconnects, dropped, duplicated, reordered and malformed frames, quiet
connections. The sink here is in memory; test_kafka.py runs the same with real Kafka."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from candleflow.binance_files import read_trades
from candleflow.domain import Trade
from devstack.fakes.exchange import FakeExchange, Faults, binance_agg_frames
from devstack.sample_data import CAPTURES, COINM_DAY
from ingest.captures import read_frames
from ingest.common import Reject, RejectReason
from ingest.connection import Connection, LoopSettings, endpoint

COINBASE_FRAMES = [
    f.data for f in read_frames(CAPTURES / "coinbase_advanced_market_trades_2026-08-09.jsonl")
]
FAST = LoopSettings(
    backoff_base_s=0.05,
    backoff_cap_s=0.2,
    stale_after_s=2.0,
    ping_interval_s=0.3,
    backfill_grace_s=0.3,
)


class ListSink:
    def __init__(self) -> None:
        self.trades: list[Trade] = []
        self.rejects: list[Reject] = []

    def produce_many(self, trades: list[Trade]) -> None:
        self.trades.extend(trades)

    def produce_reject(self, reject: Reject) -> None:
        self.rejects.append(reject)

    def poll(self, timeout: float = 0) -> int:
        return 0


def _ids(trades: list[Trade]) -> Counter[tuple[str, int]]:
    return Counter((t.symbol, t.trade_id) for t in trades)


def _expected_coinbase() -> Counter[tuple[str, int]]:
    # shared/data/README.md: BTC-USD ids 1068571991-1068572137, ETH-USD 833140679-833140810
    return Counter(
        [("BTC-USD", i) for i in range(1068571991, 1068572138)]
        + [("ETH-USD", i) for i in range(833140679, 833140811)]
    )


async def _run(
    fake: FakeExchange,
    symbols: list[str],
    expected: int,
    sink: ListSink,
    timeout: float = 30.0,
    **kw: object,
) -> Connection:
    ep = endpoint(fake.exchange, symbols, ws_base=fake.ws_url, **kw)  # type: ignore[arg-type]
    conn = Connection(ep, sink, settings=FAST, rest_base=fake.rest_url, seed=1)
    stop = asyncio.Event()
    task = asyncio.create_task(conn.run(stop))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (
        len(sink.trades) < expected or not fake.finished.is_set()
    ):
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # anything extra (a duplicate) would show up now
    stop.set()
    await asyncio.wait_for(task, 10)
    return conn


def _lost(frames: list[str], start: int, count: int) -> int:
    from devstack.fakes.exchange import raw_trades

    return len(raw_trades("coinbase", frames[start : start + count]))


async def test_disconnect_losing_trades_is_backfilled_exactly_once() -> None:
    start, count = 20, 6
    lost = _lost(COINBASE_FRAMES, start, count)
    assert lost >= 6
    async with FakeExchange("coinbase", COINBASE_FRAMES, Faults(disconnect={start: count})) as fake:
        sink = ListSink()
        conn = await _run(fake, ["BTC-USD", "ETH-USD"], 279, sink)
    assert _ids(sink.trades) == _expected_coinbase()  # every id, each exactly once
    assert fake.connections == 2 and conn.stats.connects == 2
    assert (conn.stats.gaps_found, conn.stats.gaps_filled, conn.stats.gaps_unfillable) == (
        lost,
        lost,
        0,
    )
    backfilled = {t.trade_id: t for t in sink.trades}
    # backfilled trades carry the same values as the stream would have (REST format)
    some = next(t for t in sink.trades if t.trade_id == 1068572096)
    assert (str(some.price), str(some.quantity), some.side.value) == (
        "65083.66",
        "0.00100346",
        "SELL",
    )
    assert len(backfilled) == 279
    assert len(fake.subscriptions) == 2  # resubscribed on the new connection


async def test_duplicates_reordering_and_malformed_frames_change_nothing() -> None:
    faults = Faults(
        duplicate={3, 10, 30},
        swap={5, 12, 40},
        malformed={
            7: '{"channel":"market_trades","events":[{"trades":[{"price":',
            25: '{"channel":"market_trades","sequence_num":1,"events":[{'
            '"type":"update","trades":[{"product_id":"BTC-USD",'
            '"trade_id":"1","price":"-5","size":"1","side":"BUY",'
            '"time":"2026-08-09T21:05:38.50436Z"}]}]}',
        },
    )
    async with FakeExchange("coinbase", COINBASE_FRAMES, faults) as fake:
        sink = ListSink()
        conn = await _run(fake, ["BTC-USD", "ETH-USD"], 279, sink)
    assert _ids(sink.trades) == _expected_coinbase()
    assert [r.reason for r in sink.rejects] == [
        RejectReason.MALFORMED_JSON,
        RejectReason.NON_POSITIVE,
    ]
    assert conn.stats.duplicates > 0 and conn.stats.gaps_found == 0
    assert fake.rest_calls == 0  # reordered frames filled their own gap within the grace


async def test_dropped_frames_are_found_and_backfilled() -> None:
    drop = {15, 33}
    lost = _lost(COINBASE_FRAMES, 15, 1) + _lost(COINBASE_FRAMES, 33, 1)
    async with FakeExchange("coinbase", COINBASE_FRAMES, Faults(drop=drop)) as fake:
        sink = ListSink()
        conn = await _run(fake, ["BTC-USD", "ETH-USD"], 279, sink)
    assert _ids(sink.trades) == _expected_coinbase()
    assert conn.stats.gaps_found == lost == conn.stats.gaps_filled
    assert conn.stats.sequence_gaps >= 2  # sequence_num jumps revealed the lost frames too


async def test_binance_agg_trades_with_disconnect() -> None:
    trades = list(
        zip(
            range(400),
            read_trades(COINM_DAY),
            strict=False,
        )
    )
    file_trades = [t for _, t in trades]
    frames = binance_agg_frames(file_trades, "BTCUSD_PERP")
    async with FakeExchange("binance", frames, Faults(disconnect={100: 37})) as fake:
        sink = ListSink()
        conn = await _run(fake, ["BTC-USD-PERP"], 400, sink, binance_kind="aggTrade")
    assert [
        (
            t.trade_id,
            t.price,
            t.quantity,
            t.side,
            t.event_time_us,
            t.first_trade_id,
            t.last_trade_id,
        )
        for t in sorted(sink.trades, key=lambda t: t.trade_id)
    ] == [
        (
            t.trade_id,
            t.price,
            t.quantity,
            t.side,
            t.event_time_us,
            t.first_trade_id,
            t.last_trade_id,
        )
        for t in file_trades
    ]
    assert (conn.stats.gaps_found, conn.stats.gaps_filled) == (37, 37)
    assert "btcusd_perp@aggTrade" in fake.subscriptions[0]


@pytest.mark.parametrize("exchange", ["coinbase", "binance"])
async def test_quiet_connection_is_not_restarted(exchange: str) -> None:
    # No trades at all for 3x the staleness limit: heartbeats (Coinbase) or pongs to our
    # pings (Binance sends no frames on a quiet stream) keep the connection alive.
    symbols = ["BTC-USD"] if exchange == "coinbase" else ["BTC-USDT"]
    async with FakeExchange(exchange, []) as fake:
        conn = Connection(
            endpoint(exchange, symbols, ws_base=fake.ws_url),
            ListSink(),
            settings=LoopSettings(stale_after_s=1.0, ping_interval_s=0.2),
        )
        stop = asyncio.Event()
        task = asyncio.create_task(conn.run(stop))
        await asyncio.sleep(3.5)
        stop.set()
        await asyncio.wait_for(task, 10)
    assert fake.connections == 1 and conn.stats.connects == 1
    assert conn.stats.rejects == 0


async def test_dead_peer_is_detected_by_the_watchdog_and_reconnected() -> None:
    async with FakeExchange("binance", [], Faults(silent=True)) as fake:
        conn = Connection(
            endpoint("binance", ["BTC-USDT"], ws_base=fake.ws_url),
            ListSink(),
            settings=LoopSettings(
                stale_after_s=0.6, ping_interval_s=0.1, backoff_base_s=0.05, backoff_cap_s=0.1
            ),
        )
        stop = asyncio.Event()
        task = asyncio.create_task(conn.run(stop))
        await asyncio.sleep(4)
        stop.set()
        await asyncio.wait_for(task, 10)
    assert fake.connections >= 2 and conn.stats.connects >= 2


async def test_circuit_opens_after_repeated_failures() -> None:
    from devstack.fakes.server import free_port

    url = f"ws://127.0.0.1:{free_port()}"  # nothing listens there
    conn = Connection(
        endpoint("kraken", ["BTC-USD"], ws_base=url),
        ListSink(),
        settings=LoopSettings(
            backoff_base_s=0.01, backoff_cap_s=0.02, breaker_failures=3, breaker_open_s=30
        ),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(conn.run(stop))
    await asyncio.sleep(2)
    assert conn.breaker.failures == 3  # no fourth attempt while the circuit is open
    assert conn.breaker.wait_s() > 20 and not conn.healthy()
    stop.set()
    await asyncio.wait_for(task, 5)
    assert conn.stats.connects == 0


def _kraken_v2_frames() -> list[str]:
    """The recorded Coinbase trades re-encoded as Kraken v2 `trade` frames (no Kraken v2
    session was recorded): numbers as JSON numbers, taker side, as Kraken documents."""
    from ingest import coinbase

    out = []
    for n, frame in enumerate(COINBASE_FRAMES):
        trades = coinbase.parse(frame, 0)
        assert not isinstance(trades, Reject)
        rows = ",".join(
            f'{{"symbol":"{t.symbol.replace("-", "/")}","side":"{t.side.value.lower()}",'
            f'"price":{t.price},"qty":{t.quantity},"ord_type":"market",'
            f'"trade_id":{t.trade_id},"timestamp":"{_iso(t.event_time_us)}"}}'
            for t in trades
        )
        kind = "snapshot" if n < 2 else "update"
        out.append(f'{{"channel":"trade","type":"{kind}","data":[{rows}]}}')
    return out


def _iso(us: int) -> str:
    from datetime import UTC, datetime

    return (
        datetime.fromtimestamp(us // 1_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        + f".{us % 1_000_000:06d}Z"
    )


async def test_kraken_v2_disconnect_is_backfilled_by_time_paging() -> None:
    from ingest import coinbase

    expected = {
        (t.symbol, t.trade_id): (t.price, t.quantity, t.side, t.event_time_us)
        for f in COINBASE_FRAMES
        for t in coinbase.parse(f, 0)
    }  # type: ignore[union-attr]
    async with FakeExchange("kraken", _kraken_v2_frames(), Faults(disconnect={20: 6})) as fake:
        sink = ListSink()
        conn = await _run(fake, ["BTC-USD", "ETH-USD"], 279, sink)
    got = {
        (t.symbol, t.trade_id): (t.price, t.quantity, t.side, t.event_time_us) for t in sink.trades
    }
    assert len(sink.trades) == 279 and got == expected
    assert conn.stats.gaps_found == conn.stats.gaps_filled > 0 and fake.rest_calls > 0
    assert fake.subscriptions[0]["params"]["symbol"] == ["BTC/USD", "ETH/USD"]
