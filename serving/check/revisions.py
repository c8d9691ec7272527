"""The revisions each window went through, from candles.v1 (read_committed).

silver.candles keeps only a window's last revision (upsert), and two revisions committed
in one checkpoint never appear in any snapshot, so the table cannot tell a skipped
revision from a merged one. candles.v1 carries every emission, so that is where the
"no revision n without revision n - 1" invariant is observable.

`RevisionLog` consumes the topic incrementally (the long-running checker keeps one and
catches up each cycle; `candleflow check` catches up once) and forgets windows that
started before a horizon, so its memory stays bounded.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from candleflow.config import StackSettings
from serving.check.invariants import Key
from serving.check.lake import Span


class RevisionLog:
    def __init__(self, stack: StackSettings, topic: str) -> None:
        self.stack, self.topic = stack, topic
        self.seen: dict[Key, set[int]] = defaultdict(set)
        self._consumer: Any = None
        self._deser: Any = None

    def _open(self) -> Any:
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        from adapters import avro

        consumer = Consumer(
            self.stack.kafka_config(
                **{
                    "group.id": f"candleflow-check-{uuid.uuid4().hex}",
                    "isolation.level": "read_committed",
                    "enable.auto.commit": False,
                }
            )
        )
        meta = consumer.list_topics(self.topic, timeout=10)
        if meta.topics[self.topic].error is not None:
            consumer.close()
            raise RevisionLogError(
                f"topic {self.topic}: {meta.topics[self.topic].error} "
                "(set --candles-topic, or --no-revisions to skip the revision check)"
            )
        parts = meta.topics[self.topic].partitions
        consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in parts])
        self._deser = avro.deserializer(avro.registry_client(self.stack), "candle")
        return consumer

    def catch_up(self, timeout_s: float = 60.0) -> int:
        """Read every record committed before this call; returns how many were read."""
        from confluent_kafka import KafkaException, TopicPartition

        from adapters import avro

        if self._consumer is None:
            self._consumer = self._open()
        consumer = self._consumer
        parts = [tp.partition for tp in consumer.assignment()]
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10)[1]
            for p in parts
        }
        ctx = avro.value_context(self.topic)
        read, deadline = 0, time.monotonic() + timeout_s
        while True:
            behind = [
                tp
                for tp in consumer.position([TopicPartition(self.topic, p) for p in parts])
                if tp.offset < ends[tp.partition] and ends[tp.partition] > 0
            ]
            # A fresh partition's position is OFFSET_BEGINNING (< 0) until its first poll.
            if not behind:
                return read
            if time.monotonic() > deadline:
                raise RevisionLogError(f"could not read {self.topic} to its end in {timeout_s}s")
            msg = consumer.poll(0.5)
            if msg is None:
                continue  # read_committed: a trailing transaction marker is never delivered
            if msg.error():
                raise KafkaException(msg.error())
            c = self._deser(msg.value(), ctx)
            self.seen[(c.exchange, c.symbol, c.interval, c.window_start_us)].add(c.revision)
            read += 1

    def revisions(self, spans: Sequence[Span]) -> dict[Key, set[int]]:
        """The revisions seen of every window inside the spans."""
        bounds = {s.interval.name: (s.start_us, s.end_us) for s in spans}
        out = {}
        for key, revs in self.seen.items():
            lo, hi = bounds.get(key[2], (0, 0))
            if lo <= key[3] < hi:
                out[key] = set(revs)
        return out

    def forget_before(self, window_start_us: int) -> None:
        for key in [k for k in self.seen if k[3] < window_start_us]:
            del self.seen[key]

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None


class RevisionLogError(RuntimeError):
    pass
