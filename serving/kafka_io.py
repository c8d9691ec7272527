"""Kafka plumbing of the serving layer: positions, decoding, bounded replays.

Everything here is blocking (confluent-kafka); the asyncio side calls it from threads.
All consumers read `read_committed`, so a candle is served only once Flink's
transaction that wrote it committed, and aborted writes are never seen.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, IsolationLevel, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from adapters import avro
from candleflow.kafka_security import client_config

Positions = dict[tuple[str, int], int]


@dataclass(frozen=True, slots=True)
class Record:
    """One decoded Kafka record; `value` is a domain object (Candle, Anomaly, Explanation)."""

    topic: str
    partition: int
    offset: int
    timestamp_us: int
    kind: str  # contract name: candle, anomaly, explanation
    value: Any


def consumer_config(bootstrap: str, **extra: Any) -> dict[str, Any]:
    own = {
        # Assigned partitions only, never a group rebalance: each server reads everything.
        "group.id": f"candleflow-serving-{uuid.uuid4().hex}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "isolation.level": "read_committed",
        "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": 50,
    }
    return client_config(bootstrap, **{**own, **extra})


def partitions(bootstrap: str, topics: list[str], timeout: float = 10.0) -> list[tuple[str, int]]:
    """All (topic, partition) pairs of existing topics; KafkaException if one is missing."""
    admin = AdminClient(client_config(bootstrap))
    meta = admin.list_topics(timeout=timeout)
    out = []
    for topic in topics:
        tmeta = meta.topics.get(topic)
        if tmeta is None or tmeta.error is not None:
            raise KafkaException(
                KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART, f"topic {topic} does not exist")
            )
        out += [(topic, p) for p in sorted(tmeta.partitions)]
    return out


def list_offsets(
    bootstrap: str,
    tps: list[tuple[str, int]],
    spec: str,
    timestamp_us: int | None = None,
    timeout: float = 10.0,
) -> Positions:
    """Committed-read offsets: spec = "earliest", "latest" (the last stable offset) or
    "timestamp" (first record appended at or after timestamp_us; latest if none)."""
    if not tps:
        return {}
    admin = AdminClient(client_config(bootstrap))
    if spec == "earliest":
        o = OffsetSpec.earliest()
    elif spec == "latest":
        o = OffsetSpec.latest()
    else:
        assert timestamp_us is not None
        o = OffsetSpec.for_timestamp(timestamp_us // 1000)
    req = {TopicPartition(t, p): o for t, p in tps}
    futures = admin.list_offsets(
        req, isolation_level=IsolationLevel.READ_COMMITTED, request_timeout=timeout
    )
    out: Positions = {}
    latest: Positions | None = None
    for tp, fut in futures.items():
        off = fut.result().offset
        if off < 0:  # no record at/after the timestamp: start at the end
            if latest is None:
                latest = list_offsets(bootstrap, tps, "latest", timeout=timeout)
            off = latest[(tp.topic, tp.partition)]
        out[(tp.topic, tp.partition)] = off
    return out


class Decoder:
    """Confluent wire format -> domain objects, through the schema registry (cached ids)."""

    def __init__(self, registry_url: str, topic_contracts: Mapping[str, str]):
        from confluent_kafka.schema_registry import SchemaRegistryClient

        client = SchemaRegistryClient({"url": registry_url})
        self._contracts = dict(topic_contracts)
        self._des = {c: avro.deserializer(client, c) for c in set(topic_contracts.values())}

    def decode(self, msg: Any) -> Record:
        topic = msg.topic()
        contract = self._contracts[topic]
        value = self._des[contract](msg.value(), avro.value_context(topic))
        return Record(
            topic, msg.partition(), msg.offset(), msg.timestamp()[1] * 1000, contract, value
        )


def replay(
    bootstrap: str,
    decoder: Decoder,
    start: Positions,
    stop: Positions,
    batch: int = 500,
    poll_timeout: float = 0.5,
) -> Iterator[list[Record]]:
    """Committed records with start <= offset < stop, per partition, in batches.

    A partition is done when it reaches `stop` or its end (records past the end at the
    time of reading arrive through the live path instead, so nothing is read twice).
    """
    todo = {tp for tp, off in stop.items() if start.get(tp, off) < off}
    if not todo:
        return
    consumer = Consumer(consumer_config(bootstrap, **{"enable.partition.eof": True}))
    try:
        consumer.assign([TopicPartition(t, p, start[(t, p)]) for t, p in sorted(todo)])
        while todo:
            out: list[Record] = []
            for msg in consumer.consume(batch, poll_timeout):
                tp = (msg.topic(), msg.partition())
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        todo.discard(tp)
                        continue
                    raise KafkaException(err)
                offset = int(msg.offset() or 0)  # never None for a record
                if tp not in todo:
                    continue
                if offset >= stop[tp]:
                    todo.discard(tp)
                    consumer.pause([TopicPartition(*tp)])
                    continue
                out.append(decoder.decode(msg))
                if offset + 1 >= stop[tp]:
                    todo.discard(tp)
                    consumer.pause([TopicPartition(*tp)])
            if out:
                yield out
    finally:
        consumer.close()
