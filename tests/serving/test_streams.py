"""Live streams against real Kafka: resume by cursor across a disconnect and a server
restart, the replay/live seam, fan-out to 100 subscribers, the slow-client policy.

Every check compares the candles received, value by value, with the committed candles
in Kafka (an aborted transaction in between must never show up)."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
from typing import Any

import grpc
import pytest
from prometheus_client import REGISTRY

from serving import convert
from serving.client import MarketDataClient
from tests.serving import data
from tests.serving.conftest import TOKEN

pytestmark = pytest.mark.integration


def key(c: Any) -> tuple:
    """Identity of a candle revision."""
    return (c.exchange, c.symbol, c.interval, c.window_start_us, c.revision)


def revisions(candles: list[Any]) -> list[Any]:
    """Some real candles plus corrections of every 7th, as the pipeline emits them."""
    out = list(candles)
    out += [data.corrected(c) for c in candles[::7]]
    return out


async def collect(stream: Any, n: int, timeout: float = 60.0) -> list[Any]:
    got: list[Any] = []

    async def run() -> None:
        async for ev in stream:
            if ev.HasField("candle"):
                got.append(ev)
                if len(got) >= n:
                    return

    await asyncio.wait_for(run(), timeout)
    return got


async def test_resume_after_disconnect_and_live_seam(candle_topics, server_factory):
    spot = data.spot_candles()[:600]
    first, later = revisions(list(spot[:400])), revisions(list(spot[400:]))
    prod = candle_topics.producer()
    prod.send(first)
    prod.send([dataclasses.replace(c, revision=99) for c in spot[:50]], abort=True)
    _, port = await server_factory()
    async with MarketDataClient(f"127.0.0.1:{port}", token=TOKEN) as client:
        # Replay part of history, then drop the connection.
        part = await collect(
            client.stream_candles(["BTC-USDT"], from_beginning=True, reconnect=False), 200
        )
        cursor = part[-1].cursor
        assert all(ev.replay for ev in part)
        # More candles are committed while the client is away.
        prod.send(later)
        rest_n = len(first) + len(later) - len(part)
        rest = await collect(client.stream_candles(["BTC-USDT"], cursor=cursor), rest_n)
        # ... and the stream goes on live after the replay.
        tail = [data.corrected(data.corrected(c)) for c in spot[:5]]
        live_task = asyncio.create_task(
            collect(client.stream_candles(["BTC-USDT"], cursor=rest[-1].cursor), len(tail))
        )
        await asyncio.sleep(1.0)
        prod.send(tail)
        live = await live_task
    received = [convert.candle_from_pb(ev.candle) for ev in part + rest + live]
    assert sorted(map(key, received)) == sorted(map(key, first + later + tail))
    assert len(set(map(key, received))) == len(received)  # exactly once
    # Values, not just identities: each revision arrives exactly as it was produced.
    assert {key(c): c for c in received} == {key(c): c for c in first + later + tail}
    assert not any(ev.replay for ev in live)


async def test_resume_across_server_restart(candle_topics, server_factory):
    candles = revisions(list(data.spot_candles()[:1200]))
    candle_topics.producer().send(candles)
    srv, port = await server_factory()
    received: list[Any] = []
    restarted = asyncio.Event()

    async def consume() -> None:
        async with MarketDataClient(f"127.0.0.1:{port}", token=TOKEN) as client:
            async for ev in client.stream_candles(
                ["BTC-USDT"], from_beginning=True, max_backoff=0.5
            ):
                if ev.HasField("candle"):
                    received.append(convert.candle_from_pb(ev.candle))
                    if len(received) == 300:
                        restarted.set()
                        await asyncio.sleep(0.5)  # the restart happens mid-replay
                    if len(received) >= len(candles):
                        return

    task = asyncio.create_task(consume())
    await asyncio.wait_for(restarted.wait(), 60)
    await srv.stop(0)
    await asyncio.sleep(1.0)
    await server_factory(port=port)
    await asyncio.wait_for(task, 120)
    assert len(received) == len(candles)
    assert {key(c): c for c in received} == {key(c): c for c in candles}


async def test_100_subscribers_each_receive_every_candle_of_their_symbols(
    candle_topics, server_factory
):
    spot = list(data.spot_candles()[:120])
    perp = list(data.perp_candles())
    _, port = await server_factory()
    wants = {"BTC-USDT": spot, "BTC-USD-PERP": perp}
    choices = [["BTC-USDT"], ["BTC-USD-PERP"], ["BTC-USDT", "BTC-USD-PERP"]]
    sent_before = (
        REGISTRY.get_sample_value("candleflow_serving_messages_sent_total", {"stream": "candles"})
        or 0
    )
    async with MarketDataClient(f"127.0.0.1:{port}", token=TOKEN) as client:
        subs = [choices[i % 3] for i in range(100)]
        expected = [sum((wants[s] for s in syms), []) for syms in subs]
        tasks = [
            asyncio.create_task(collect(client.stream_candles(syms), len(exp), 120))
            for syms, exp in zip(subs, expected, strict=True)
        ]
        await asyncio.sleep(3.0)  # all subscribed (live, no cursor)
        prod = candle_topics.producer()
        prod.send(spot + perp)
        results = await asyncio.gather(*tasks)
    sent = (
        REGISTRY.get_sample_value("candleflow_serving_messages_sent_total", {"stream": "candles"})
        - sent_before
    )
    assert sent == sum(len(e) for e in expected)  # the metric counts what was delivered
    for syms, exp, got in zip(subs, expected, results, strict=True):
        cs = [convert.candle_from_pb(ev.candle) for ev in got]
        assert sorted(map(key, cs)) == sorted(map(key, exp)), syms
        assert {key(c): c for c in cs} == {key(c): c for c in exp}


async def test_slow_client_gets_resource_exhausted_with_resume_cursor(
    candle_topics, server_factory
):
    candles = list(data.spot_candles()[:1440])
    _, port = await server_factory(queue_capacity=20)
    async with MarketDataClient(f"127.0.0.1:{port}", token=TOKEN) as client:
        call = client.raw_stream("StreamCandles", _req(["BTC-USDT"]))
        first = await call.read()  # heartbeat or candle: the subscription is live
        assert first is not None
        candle_topics.producer().send(candles)
        await asyncio.sleep(3.0)  # do not read: the server's queue overflows
        got = []
        with pytest.raises(grpc.aio.AioRpcError) as err:
            while (ev := await call.read()) is not grpc.aio.EOF:
                if ev.HasField("candle"):
                    got.append(ev)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        meta = {k: v for k, v in err.value.trailing_metadata() or ()}
        cursor = convert.cursor_from_token(meta["candleflow-resume-cursor"])
        rest = await collect(
            client.stream_candles(["BTC-USDT"], cursor=cursor), len(candles) - len(got)
        )
    received = [convert.candle_from_pb(ev.candle) for ev in got + rest]
    assert [key(c) for c in received] != []
    assert collections.Counter(map(key, received)) == collections.Counter(map(key, candles))


def _req(symbols: list[str]) -> Any:
    from serving.pb import pb

    return pb.StreamCandlesRequest(symbols=symbols)


async def test_batched_live_events_are_exact_and_resume_inside_a_batch(
    candle_topics, server_factory
):
    """A window close's candles may come packed in one message (`batch`); unpacked, they
    are the committed candles in order, and the cursor of an event inside a batch resumes
    exactly after it. A client that does not ask for batches never gets one."""
    from serving.pb import pb

    candles = list(data.spot_candles()[:300])
    _, port = await server_factory()
    async with MarketDataClient(f"127.0.0.1:{port}", token=TOKEN) as client:
        batched = client.raw_stream(
            "StreamCandles", pb.StreamCandlesRequest(symbols=["BTC-USDT"], batch=True)
        )
        single = client.raw_stream("StreamCandles", _req(["BTC-USDT"]))
        await batched.read(), await single.read()  # live (first message: heartbeat)
        candle_topics.producer().send(candles, batch=100)
        sizes, events = [], []  # candle events per message; all candle events in order
        while len(events) < len(candles):
            msg = await asyncio.wait_for(batched.read(), 60)
            inner = [e for e in (list(msg.events) or [msg]) if e.HasField("candle")]
            sizes.append(len(inner))
            events += inner
        plain = []
        while len(plain) < len(candles):
            msg = await asyncio.wait_for(single.read(), 60)
            assert not msg.events
            if msg.HasField("candle"):
                plain.append(msg)
        batched.cancel()
        single.cancel()
        assert max(sizes) > 1  # batches did happen
        got = [convert.candle_from_pb(e.candle) for e in events]
        assert len(got) == len(candles)
        assert {key(c): c for c in got} == {key(c): c for c in candles}
        assert [convert.candle_from_pb(m.candle) for m in plain] == got  # same order
        # Resume from the first event of a packed message: the rest of it and all later.
        first_big = next(i for i, n in enumerate(sizes) if n > 1)
        at = sum(sizes[:first_big])
        rest = await collect(
            client.stream_candles(["BTC-USDT"], cursor=events[at].cursor), len(candles) - at - 1
        )
    resumed = [convert.candle_from_pb(e.candle) for e in rest]
    assert sorted(map(key, resumed)) == sorted(map(key, got[at + 1 :]))
