"""The reconciler's Kafka side: candles.v1 read_committed into memory, reconcile.v1 out.

`CandleView` keeps, per market and interval of interest, the last committed record of each
window (candles.v1 is keyed by market, so one partition holds a market's revisions in
order: the last one read is the current candle). `catch_up` reads every partition to its
last stable offset, so a check never runs on a half-read topic, and a Flink transaction
that was aborted is never compared.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from confluent_kafka import Consumer, IsolationLevel, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from adapters import avro
from candleflow.config import StackSettings
from candleflow.domain import Candle
from candleflow.records import micros_out
from verify.compare import Mismatch
from verify.exchange_candles import Market

Key = tuple[str, str, str]  # exchange, symbol, interval


class CandleView:
    def __init__(
        self,
        stack: StackSettings,
        topic: str,
        markets: Iterable[Market],
        intervals: Iterable[str],
        since_us: int,
    ) -> None:
        self.stack, self.topic, self.since_us = stack, topic, since_us
        self.wanted = {(m.exchange, m.symbol, iv) for m in markets for iv in intervals}
        self.candles: dict[Key, dict[int, Candle]] = {k: {} for k in self.wanted}
        self.reach: dict[Key, int] = {}
        self.records = 0
        self.consumer = Consumer(
            stack.kafka_config(
                **{
                    "group.id": f"candleflow-verify-{uuid.uuid4().hex}",
                    "isolation.level": "read_committed",
                    "enable.auto.commit": False,
                    "auto.offset.reset": "earliest",
                }
            )
        )
        self.admin = AdminClient(stack.kafka_config())
        self.deserialize = avro.deserializer(avro.registry_client(stack), "candle")
        self.partitions: list[int] = []

    def start(self, timeout_s: float = 10.0) -> None:
        """Assign every partition from the first record at or after since_us (a replay of
        the topic's recent past; candles are appended in window order per market)."""
        meta = self.consumer.list_topics(self.topic, timeout=timeout_s).topics[self.topic]
        if meta.error is not None:
            raise KafkaException(meta.error)
        self.partitions = sorted(meta.partitions)
        # A window's record is written after the window closed: seek by time from its start.
        at = [TopicPartition(self.topic, p, self.since_us // 1000) for p in self.partitions]
        found = self.consumer.offsets_for_times(at, timeout=timeout_s)
        ends = self._stable_ends(timeout_s)
        for tp in found:
            if tp.offset < 0:  # no record that new: start at the end
                tp.offset = ends[tp.partition]
        # How far each partition is known read (positions skip transaction markers).
        self.read_to = {tp.partition: tp.offset for tp in found}
        self.consumer.assign(found)

    def _stable_ends(self, timeout_s: float) -> dict[int, int]:
        specs = {TopicPartition(self.topic, p): OffsetSpec.latest() for p in self.partitions}
        futures = self.admin.list_offsets(
            specs, isolation_level=IsolationLevel.READ_COMMITTED, request_timeout=timeout_s
        )
        return {tp.partition: f.result(timeout_s).offset for tp, f in futures.items()}

    def catch_up(self, timeout_s: float = 30.0) -> bool:
        """Read to the last stable offset of every partition as of now; False on timeout."""
        ends = self._stable_ends(timeout_s)
        deadline = time.monotonic() + timeout_s
        while True:
            for tp in self.consumer.position(
                [TopicPartition(self.topic, p) for p in self.partitions]
            ):
                self.read_to[tp.partition] = max(self.read_to[tp.partition], tp.offset)
            if all(self.read_to[p] >= ends[p] for p in self.partitions):
                return True
            if time.monotonic() > deadline:
                return False
            msg = self.consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            candle = self.deserialize(msg.value(), avro.value_context(self.topic))
            assert isinstance(candle, Candle)
            self._add(candle)

    def _add(self, c: Candle) -> None:
        self.records += 1
        key = (c.exchange, c.symbol, c.interval)
        if key not in self.wanted:
            return
        self.candles[key][c.window_start_us] = c  # the last committed record of a window
        self.reach[key] = max(self.reach.get(key, 0), c.window_end_us)

    def until_us(self, market: Market, interval: str) -> int | None:
        return self.reach.get((market.exchange, market.symbol, interval))

    def windows(
        self, market: Market, interval: str, start_us: int, end_us: int
    ) -> Mapping[int, Candle]:
        per = self.candles.get((market.exchange, market.symbol, interval), {})
        return {s: c for s, c in per.items() if start_us <= s < end_us}

    def prune(self, progress: Mapping[tuple[Market, str], int]) -> None:
        """Forget windows already checked (a later correction of one is not re-checked)."""
        for (market, interval), before in progress.items():
            per = self.candles.get((market.exchange, market.symbol, interval), {})
            for s in [s for s in per if s < before]:
                del per[s]

    def close(self) -> None:
        self.consumer.close()


def mismatch_record(m: Mismatch, interval_us: int, checked_at_us: int) -> dict[str, Any]:
    """The reconcile.v1 record of a mismatch (contract candleflow/contracts/reconcile)."""
    start = m.window_start_us
    return {
        "reconcile_id": f"{m.market}:{m.interval}:{start}:{m.field}:{m.revision}",
        "exchange": m.market.exchange,
        "symbol": m.market.symbol,
        "interval": m.interval,
        "window_start": micros_out(start, "window_start"),
        "window_end": micros_out(start + interval_us, "window_end"),
        "field": m.field,
        "kind": m.kind,
        "ours": m.ours,
        "theirs": m.theirs,
        "candle_revision": m.revision,
        "checked_at": micros_out(checked_at_us, "checked_at"),
    }


class MismatchPublisher:
    """reconcile.v1: one record per mismatch, keyed by market; idempotent producer, flushed
    per batch (a delivery failure raises: a mismatch is never dropped silently)."""

    def __init__(self, stack: StackSettings, topic: str) -> None:
        self.topic = topic
        self.producer = Producer(stack.kafka_config(**{"enable.idempotence": True, "acks": "all"}))
        self.serialize = avro.serializer(avro.registry_client(stack), "reconcile", domain=False)
        self.failed: list[str] = []

    def _delivered(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self.failed.append(str(err))

    def publish(self, records: Sequence[dict[str, Any]], timeout_s: float = 30.0) -> None:
        for r in records:
            key = f"{r['exchange']}:{r['symbol']}".encode()
            value = self.serialize(r, avro.value_context(self.topic))
            self.producer.produce(self.topic, value, key, on_delivery=self._delivered)
        left = self.producer.flush(timeout_s)
        if left or self.failed:
            failed, self.failed = self.failed, []
            raise KafkaException(f"reconcile.v1: {left} undelivered, failures {failed[:3]}")
