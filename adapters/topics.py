"""Kafka topics: explicit partitions, retention and cleanup policy, created idempotently."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)

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
    """The pipeline's topics. Keys are "exchange:symbol" (anomaly_id for the anomaly topics).

    Only explanations.v1 is compacted: its key is what a new record supersedes. The change
    logs (candles, anomalies) are read from the beginning by consumers that must see every
    revision (docs/semantics.md, "The candle topic's key"), so they are never compacted.
    """
    t = topics or Topics()
    return [
        # The source of truth for replay: every accepted trade, kept a week.
        TopicSpec(t.trades, partitions=3, retention_ms=7 * DAY_MS),
        # The DLQ must outlive an investigation and be replayable: a month, never compacted.
        TopicSpec(t.late_trades, partitions=1, retention_ms=30 * DAY_MS),
        # Keyed by market (one partition per market: its candles in order); every revision
        # is kept, so a replay from earliest sees what the live consumers saw.
        TopicSpec(t.candles, partitions=3, retention_ms=30 * DAY_MS),
        TopicSpec(t.rejects, partitions=1, retention_ms=7 * DAY_MS),
        # ACTIVE then RETRACTED under one anomaly_id: a change log like the candles.
        TopicSpec(t.anomalies, partitions=1, retention_ms=30 * DAY_MS),
        # Keyed by anomaly_id; an anomaly is explained once and a record supersedes the
        # earlier one of its id, so compaction loses nothing the explainer reads back.
        TopicSpec(
            t.explanations, partitions=1, retention_ms=30 * DAY_MS, cleanup_policy="compact,delete"
        ),
        # Every difference the live reconciler found (keyed by market), kept for the
        # investigation like the DLQ: a month, never compacted (a re-check repeats an id).
        TopicSpec(t.reconcile, partitions=1, retention_ms=30 * DAY_MS),
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


def align_configs(
    client: AdminClient, specs: list[TopicSpec], timeout: float = 30.0
) -> dict[str, dict[str, str]]:
    """Set each existing topic's spec config (cleanup policy, retention, extras) where it
    differs, so a policy change reaches topics created by an older release. Partition
    counts are not touched (growing them would move keys to other partitions).
    Returns {topic: {setting: new value}} of what was changed."""
    resources = [ConfigResource(ResourceType.TOPIC, s.name) for s in specs]
    current = {r.name: f.result(timeout) for r, f in client.describe_configs(resources).items()}
    changed: dict[str, dict[str, str]] = {}
    for spec in specs:
        have = current[spec.name]
        diff = {k: v for k, v in spec.config().items() if k not in have or have[k].value != v}
        if not diff:
            continue
        entries = [
            ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in diff.items()
        ]
        resource = ConfigResource(ResourceType.TOPIC, spec.name, incremental_configs=entries)
        for fut in client.incremental_alter_configs([resource]).values():
            fut.result(timeout)
        changed[spec.name] = diff
    return changed


def delete_topics(client: AdminClient, names: list[str], timeout: float = 30.0) -> None:
    if not names:
        return
    for fut in client.delete_topics(names, request_timeout=timeout).values():
        try:
            fut.result(timeout=timeout)
        except KafkaException as exc:
            if exc.args[0].name() != "UNKNOWN_TOPIC_OR_PART":
                raise
