"""Kafka topics whose log cleaner runs at once, and waiting until it really has run
(tests of the topics' cleanup policies, docs/semantics.md "The candle topic's key")."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from adapters import avro
from candleflow.config import StackSettings
from candleflow.domain import Candle

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


def produce_rolling(
    settings: StackSettings, topic: str, candles: list[Candle], key: Callable[[Candle], str]
) -> None:
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
