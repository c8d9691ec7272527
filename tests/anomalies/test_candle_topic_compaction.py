"""candles.v1 under a log cleaner that really runs (docs/semantics.md, "The candle topic's key").

The same candle stream, with a correction that retracts a volume spike, goes to two topics
with segments that roll every 100 ms and a cleaner that wants any dirty log:

- the production policy (`default_topics()`: delete, keyed by market, 3 partitions);
- the rejected alternative: compact,delete keyed by window (exchange:symbol:interval:start).

We wait until the cleaner has removed records from the compacted copy (so it has run on this
broker in this time), then check: the production topic holds every record, in per-market
order, and a consumer from earliest rebuilds the same candles and, through the real anomaly
job started from earliest, the same anomalies as before; the compacted copy still holds each
window's latest revision but lost the revision a replay needs to raise the spike again.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from candleflow import avro, topics
from candleflow.anomaly_rules import detect_all
from candleflow.config import StackSettings, Topics
from candleflow.domain import Candle
from candleflow.testing import unique_name
from jobs.anomalies import build, make_stream_table_env, production_config
from jobs.operator_uids import execute
from serving.explainer.service import read_topic_to_end
from tests.anomalies.test_job_local import crafted

pytestmark = [pytest.mark.integration, pytest.mark.flink]

# Segments roll after 100 ms, the cleaner takes any log with 1 % dirty records, tombstones
# and superseded records may go at once (the broker's log.cleaner.backoff.ms is 15 s).
CLEANER_NOW = {
    "segment.ms": "100",
    "min.cleanable.dirty.ratio": "0.01",
    "delete.retention.ms": "100",
    "min.compaction.lag.ms": "0",
}


def market_key(c: Candle) -> str:
    return f"{c.exchange}:{c.symbol}"


def window_key(c: Candle) -> str:
    return f"{c.exchange}:{c.symbol}:{c.interval}:{c.window_start_us}"


def produce_rolling(settings: StackSettings, topic: str, candles: list[Candle], key) -> None:
    """Produce in chunks 150 ms apart, so the log has many segments the cleaner may take; the
    last candle of each market again at the end (a replayed revision, a no-op for every
    consumer) rolls the segment holding the rest, which the cleaner never touches while active."""
    ser = avro.serializer(avro.registry_client(settings), "candle")
    p = Producer(settings.kafka_config(**{"enable.idempotence": True}))
    last = {market_key(c): c for c in candles}
    chunks = [candles[i : i + 20] for i in range(0, len(candles), 20)] + [list(last.values())]
    for chunk in chunks:
        for c in chunk:
            p.produce(topic, key=key(c).encode(), value=ser(c, avro.value_context(topic)))
        assert p.flush(30) == 0
        time.sleep(0.15)


def read_with_offsets(settings: StackSettings, topic: str) -> list[tuple[int, int, Candle]]:
    """(partition, offset, candle) of every record from the beginning to the end."""
    consumer = Consumer(
        settings.kafka_config(
            **{"group.id": f"compaction-reader-{uuid.uuid4().hex}", "enable.auto.commit": False}
        )
    )
    deser = avro.deserializer(avro.registry_client(settings), "candle")
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        parts = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions]
        ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in parts}
        consumer.assign(parts)
        out: list[tuple[int, int, Candle]] = []
        todo = {p for p, end in ends.items() if end > 0}
        deadline = time.monotonic() + 30
        while todo and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            out.append(
                (msg.partition(), msg.offset(), deser(msg.value(), avro.value_context(topic)))
            )
            if msg.offset() + 1 >= ends[msg.partition()]:
                todo.discard(msg.partition())
        assert not todo, f"{topic}: partitions {todo} not read to their end in 30 s"
        return out
    finally:
        consumer.close()


def wait_until_compacted(settings: StackSettings, topic: str, produced: int) -> list[Candle]:
    """Poll until the log cleaner has removed records (fewer than produced): not a sleep."""
    deadline = time.monotonic() + 120
    while True:
        records = read_with_offsets(settings, topic)
        if len(records) < produced:
            return [c for _, _, c in records]
        assert time.monotonic() < deadline, f"{topic}: the log cleaner did not run in 120 s"
        time.sleep(2)


def latest_per_window(candles: list[Candle]) -> dict[str, Candle]:
    out: dict[str, Candle] = {}
    for c in candles:
        k = window_key(c)
        if k not in out or out[k].revision < c.revision:
            out[k] = c
    return out


def per_market(candles: list[Candle]) -> dict[str, list[Candle]]:
    out: dict[str, list[Candle]] = defaultdict(list)
    for c in candles:
        out[market_key(c)].append(c)
    return dict(out)


def anomalies(a_list) -> list[tuple[str, str]]:
    return sorted((a.anomaly_id, a.status) for a in a_list)


def test_candle_history_survives_a_running_log_cleaner(stack, unique_topic, unique_namespace):
    s = stack.settings
    stream = crafted()
    assert any(c.revision == 1 for c in stream), "the stream must hold a correction"
    sent = stream + list({market_key(c): c for c in stream}.values())
    before = anomalies(detect_all(stream))
    spec = next(t for t in topics.default_topics() if t.name == Topics().candles)

    production = unique_topic(
        "candles", partitions=spec.partitions, cleanup_policy=spec.cleanup_policy, **CLEANER_NOW
    )
    by_window = unique_topic("candles-by-window", cleanup_policy="compact,delete", **CLEANER_NOW)
    produce_rolling(s, production, stream, market_key)
    produce_rolling(s, by_window, stream, window_key)

    compacted = wait_until_compacted(s, by_window, len(sent))
    # The window-keyed copy keeps each window's latest revision ...
    assert latest_per_window(compacted) == latest_per_window(stream)
    # ... but a replay of it no longer raises (and retracts) the volume spike.
    assert anomalies(detect_all(compacted)) != before

    # The production topic, cleaned over the same time: every record, offsets from 0 with
    # no gap, each market in one partition in the order produced.
    records = read_with_offsets(s, production)
    assert len(records) == len(sent)
    offsets = defaultdict(list)
    for p, o, _ in records:
        offsets[p].append(o)
    assert all(o == list(range(len(o))) for o in offsets.values())
    replayed = [c for _, _, c in records]
    assert per_market(replayed) == per_market(sent)
    partitions = defaultdict(set)
    for p, _, c in records:
        partitions[market_key(c)].add(p)
    assert all(len(ps) == 1 for ps in partitions.values()), partitions
    assert latest_per_window(replayed) == latest_per_window(stream)

    # The anomaly job restarted from earliest gives the anomalies of the live run.
    topics_ = Topics(candles=production, anomalies=unique_topic("anomalies"))
    t_env = make_stream_table_env(parallelism=2, checkpoint_interval_ms=1000, stack=s)
    config = production_config(
        s,
        topics_,
        bounded=True,
        iceberg_database=unique_namespace,
        group_id=unique_name("anomalies"),
        transactional_id_prefix=unique_name("anomalies-tx"),
        startup_mode="earliest-offset",
    )
    execute(t_env, build(t_env, config)).wait()
    assert anomalies(read_topic_to_end(s, topics_.anomalies, "anomaly")) == before
