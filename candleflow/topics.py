"""Kafka topics: explicit partitions, retention and cleanup policy, created idempotently."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from candleflow.config import Topics
from candleflow.kafka_security import client_config

DAY_MS = 86_400_000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int = 1
    retention_ms: int = 7 * DAY_MS
    cleanup_policy: str = "delete"
    extra: dict[str, str] = field(default_factory=dict)

    def config(self) -> dict[str, str]:
        return {
            "cleanup.policy": self.cleanup_policy,
            "retention.ms": str(self.retention_ms),
            **self.extra,
        }


def default_topics(topics: Topics | None = None) -> list[TopicSpec]:
    """The pipeline's topics. Keys are "exchange:symbol[...]", so a market stays in order."""
    t = topics or Topics()
    return [
        # The source of truth for replay: every accepted trade, kept a week.
        TopicSpec(t.trades, partitions=3, retention_ms=7 * DAY_MS),
        # The DLQ must outlive an investigation and be replayable: a month, never compacted.
        TopicSpec(t.late_trades, partitions=1, retention_ms=30 * DAY_MS),
        # Candles are keyed by (exchange, symbol, interval, window_start): a correction
        # (revision n+1) supersedes the earlier revision, so compaction keeps the latest
        # per window while delete still bounds the topic to 30 days of windows.
        TopicSpec(
            t.candles, partitions=3, retention_ms=30 * DAY_MS, cleanup_policy="compact,delete"
        ),
        TopicSpec(t.rejects, partitions=1, retention_ms=7 * DAY_MS),
        TopicSpec(t.anomalies, partitions=1, retention_ms=30 * DAY_MS),
        # Keyed by anomaly_id; a re-explanation replaces the previous one.
        TopicSpec(
            t.explanations, partitions=1, retention_ms=30 * DAY_MS, cleanup_policy="compact,delete"
        ),
    ]


def admin(bootstrap_servers: str, quiet: bool = False) -> AdminClient:
    """An admin client; quiet=True silences librdkafka's connection errors (health probes)."""
    conf: dict[str, Any] = client_config(bootstrap_servers)
    if quiet:
        conf["log_level"] = 0
    return AdminClient(conf)


def ensure_topics(client: AdminClient, specs: list[TopicSpec], timeout: float = 30.0) -> list[str]:
    """Create the missing topics; returns the names created. Existing ones are left as they are."""
    existing = set(client.list_topics(timeout=timeout).topics)
    new = [
        NewTopic(s.name, num_partitions=s.partitions, replication_factor=1, config=s.config())
        for s in specs
        if s.name not in existing
    ]
    if not new:
        return []
    created = []
    for name, fut in client.create_topics(new, request_timeout=timeout).items():
        try:
            fut.result(timeout=timeout)
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":  # a concurrent creator won
                raise
    return created


def delete_topics(client: AdminClient, names: list[str], timeout: float = 30.0) -> None:
    if not names:
        return
    for fut in client.delete_topics(names, request_timeout=timeout).values():
        try:
            fut.result(timeout=timeout)
        except KafkaException as exc:
            if exc.args[0].name() != "UNKNOWN_TOPIC_OR_PART":
                raise
