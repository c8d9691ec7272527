"""A serving resume from an early cursor gives the same candles after the log cleaner has run
on candles.v1 with the production policy (docs/semantics.md, "The candle topic's key").

A window-keyed compact,delete copy of the same candles, written at the same time, is the
proof that the cleaner did run (records gone); the served topic keeps every revision, so
the stream from the beginning and the resume from the cursor match what they were before."""

from __future__ import annotations

import time
from typing import Any

import pytest

from adapters import topics
from candleflow.config import Topics
from serving import convert
from serving.client import MarketDataClient
from tests.kafka_cleaner import (
    CLEANER_NOW,
    latest_per_window,
    produce_rolling,
    wait_until_compacted,
    window_key,
)
from tests.serving import data
from tests.serving.conftest import TOKEN
from tests.serving.test_streams import collect, key, revisions

pytestmark = pytest.mark.integration


async def stream_all(port: int, n: int, cursor: Any = None) -> list[Any]:
    async with MarketDataClient(f"127.0.0.1:{port}", token=TOKEN) as client:
        if cursor is None:
            stream = client.stream_candles(["BTC-USDT"], from_beginning=True, reconnect=False)
        else:
            stream = client.stream_candles(["BTC-USDT"], cursor=cursor, reconnect=False)
        return await collect(stream, n)


def values(events: list[Any]) -> list[Any]:
    return [convert.candle_from_pb(ev.candle) for ev in events]


async def test_resume_from_an_early_cursor_after_the_cleaner_ran(
    candle_topics, server_factory, unique_topic
):
    s = candle_topics.settings
    spec = next(t for t in topics.default_topics() if t.name == Topics().candles)
    served = topics.TopicSpec(
        candle_topics.topics.candles,
        partitions=candle_topics.partitions,
        retention_ms=spec.retention_ms,
        cleanup_policy=spec.cleanup_policy,
        extra=CLEANER_NOW,
    )
    topics.align_configs(topics.admin(s.bootstrap_servers), [served])
    by_window = unique_topic("candles-by-window", cleanup_policy="compact,delete", **CLEANER_NOW)

    candles = revisions(list(data.spot_candles()[:300]))
    prod = candle_topics.producer()
    for i in range(0, len(candles), 40):  # many segments: they roll every 100 ms
        prod.send(candles[i : i + 40])
        time.sleep(0.15)
    prod.send(candles[-1:])  # a replayed revision rolls the segment with the rest
    produce_rolling(s, by_window, candles, window_key)
    sent = len(candles) + 1

    _, port = await server_factory()
    everything = await stream_all(port, sent)
    cursor = everything[10].cursor
    resumed = await stream_all(port, sent - 11, cursor)
    assert sorted(map(key, values(everything[11:]))) == sorted(map(key, values(resumed)))

    compacted = wait_until_compacted(s, by_window, sent)
    assert latest_per_window(compacted) == latest_per_window(candles)

    assert values(await stream_all(port, sent)) == values(everything)
    assert values(await stream_all(port, sent - 11, cursor)) == values(resumed)
