"""The idempotent Kafka producer of trades (Avro via the registry) and rejects (JSON).

- enable.idempotence + acks=all: a retry after a broker restart or a lost ack never
  writes a trade twice, and the per-partition order (one key = one market) is kept.
- key = "exchange:symbol", so every trade of a market lands in one partition, in order.
- delivery reports are checked and counted; a failed delivery is logged with its key. By
  default librdkafka reports failures only (delivered = produced - failed - in flight);
  produce latency comes from its statistics (per-broker percentiles, metrics.BROKER_*),
  and with delivery_reports="all" also from every 64th message (PRODUCE_LATENCY).
- bounded memory: librdkafka's queue is capped (queue.buffering.max.messages); when it is
  full, produce() serves delivery reports until there is room (backpressure) instead of
  buffering more.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.schema_registry import Schema
from pydantic_settings import SettingsConfigDict

from adapters.avro import registry_client
from candleflow.config import StackSettings, Topics
from candleflow.contracts import schema_text, subject
from candleflow.domain import Trade
from candleflow.env_settings import EnvSettings
from ingest import metrics
from ingest.avro_trade import TradeEncoder
from ingest.common import Reject, RejectReason
from ingest.lane import AvroLane

log = logging.getLogger(__name__)


class ProducerSettings(EnvSettings):
    """Producer tuning, from CANDLEFLOW_INGEST_<FIELD>."""

    model_config = SettingsConfigDict(env_prefix="CANDLEFLOW_INGEST_", extra="ignore")

    max_in_flight: int = 100_000  # messages queued or awaiting ack before produce() waits
    linger_ms: int = 20
    compression: str = "lz4"
    # How long librdkafka keeps retrying one message (broker restarts must fit in here).
    delivery_timeout_ms: int = 600_000
    # "errors" (default): librdkafka reports only failures (delivery.report.only.error) and
    # delivered = produced - failed - in flight (exact once polled or flushed); no Python
    # call per acknowledged message. "all": a report per message (delivered counted per
    # report, the per-message produce-latency histogram sampled from every 64th); about
    # 0.3-1 µs more CPU a message (docs/benchmarks.md "## Ingest").
    delivery_reports: str = "errors"
    # librdkafka statistics every this many ms (0: off): per-broker produce latency
    # percentiles (request round trip, queue and output-buffer times) as Prometheus gauges,
    # in both report modes (ingest/metrics.py BROKER_*).
    statistics_interval_ms: int = 5000


POLL_EVERY = 64  # produce_many serves delivery reports after this many messages


class DeliveryError(RuntimeError):
    pass


class TradeProducer:
    def __init__(
        self,
        stack: StackSettings | None = None,
        topics: Topics | None = None,
        *,
        trades_topic: str | None = None,
        rejects_topic: str | None = None,
        settings: ProducerSettings | None = None,
        extra_config: dict[str, Any] | None = None,
    ) -> None:
        stack = stack or StackSettings()
        topics = topics or Topics()
        self.settings = settings or ProducerSettings()
        self.trades_topic = trades_topic or topics.trades
        self.rejects_topic = rejects_topic or topics.rejects
        self.encode = TradeEncoder(self._schema_id(stack))
        config: dict[str, Any] = {
            **stack.kafka_config(),  # brokers + CANDLEFLOW_KAFKA_* security (holds secrets)
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": self.settings.linger_ms,
            "compression.type": self.settings.compression,
            "queue.buffering.max.messages": self.settings.max_in_flight,
            "message.timeout.ms": self.settings.delivery_timeout_ms,
            "client.id": "candleflow-ingest",
        }
        self.errors_only = self.settings.delivery_reports == "errors"
        if self.settings.delivery_reports not in ("all", "errors"):
            raise ValueError("delivery_reports must be 'all' or 'errors'")
        if self.errors_only:
            # failures only, to the default callback (no per-message callback object)
            config["delivery.report.only.error"] = True
            config["on_delivery"] = self._delivery_report
        if self.settings.statistics_interval_ms > 0:
            # stats_cb runs in poll()/flush(), on this thread: a JSON every interval
            config["statistics.interval.ms"] = self.settings.statistics_interval_ms
            config["stats_cb"] = self._on_stats
        self.last_stats: str | None = None  # the latest statistics JSON, as librdkafka sent it
        config.update(extra_config or {})
        self._producer = Producer(config)
        self._delivered = 0  # "all": counted per report
        self.produced = 0  # "errors": every message handed to librdkafka
        self.failed = 0
        self.failures: list[str] = []  # first few failure descriptions, for the report
        self._on_delivery = None if self.errors_only else self._delivery_report
        self._keys: dict[tuple[str, str], bytes] = {}
        self._synced_at = 0.0
        self._reported = 0
        self._unpolled = 0  # messages produced since the last poll()

    def _schema_id(self, stack: StackSettings) -> int:
        """Register (idempotently) the Trade contract under "<topic>-value"; its id."""
        client = registry_client(stack)
        return client.register_schema(
            subject(self.trades_topic), Schema(schema_text("trade"), "AVRO")
        )

    @property
    def delivered(self) -> int:
        """Messages acknowledged by Kafka (as of the last delivery reports served)."""
        if self.errors_only:
            # len() counts queued and unacknowledged messages and unserved (failure)
            # reports: never more than the truth, exact once polled or flushed
            return self.produced - self.failed - len(self._producer)
        return self._delivered

    def _delivery_report(self, err: KafkaError | None, msg: Message) -> None:
        # Per message, so kept cheap: plain counters here, Prometheus updated in poll().
        if err is None:
            self._delivered += 1
            if not self._delivered & 63:  # latency of every 64th message is plenty
                latency = msg.latency()
                if latency is not None:
                    metrics.PRODUCE_LATENCY.observe(latency)
            return
        topic = msg.topic() or "?"
        self.failed += 1
        metrics.DELIVERY_FAILED.labels(topic).inc()
        description = f"{topic} key={msg.key()!r}: {err}"
        if len(self.failures) < 20:
            self.failures.append(description)
        log.error("delivery failed: %s", description)

    def _on_stats(self, stats_json: str) -> None:
        self.last_stats = stats_json
        try:
            metrics.export_librdkafka_stats(json.loads(stats_json))
        except Exception:  # a malformed statistics document must never stop producing
            log.exception("could not read librdkafka statistics")

    def _produce(self, topic: str, key: bytes, value: bytes) -> None:
        while True:
            try:
                # positional (partition -1 = the partitioner decides, then the callback):
                # ~0.6 µs cheaper per message than the on_delivery= keyword
                self._producer.produce(topic, value, key, -1, self._on_delivery)
                self.produced += 1
                return
            except BufferError:
                # Queue full: serve delivery reports until the broker has acked some.
                metrics.BACKPRESSURE.inc()
                self._producer.poll(0.05)

    def _key(self, trade: Trade) -> bytes:
        key = self._keys.get((trade.exchange, trade.symbol))
        if key is None:
            key = self._keys[(trade.exchange, trade.symbol)] = trade.key.encode()
        return key

    def _encode(self, trade: Trade) -> bytes | None:
        try:
            return self.encode(trade)
        except ValueError as exc:  # DecimalRangeError: a value the contract cannot hold
            self.produce_reject(
                Reject(
                    trade.exchange,
                    RejectReason.BAD_TYPE,
                    repr(trade),
                    str(exc),
                    trade.ingest_time_us,
                )
            )
            return None

    def produce(self, trade: Trade) -> None:
        value = self._encode(trade)
        if value is not None:
            self._produce(self.trades_topic, self._key(trade), value)

    def produce_many(self, trades: list[Trade]) -> None:
        produce, topic = self._producer.produce, self.trades_topic
        on_delivery, encode, keys = self._on_delivery, self.encode, self._keys
        for trade in trades:
            try:
                value = encode(trade)
            except ValueError:
                self.produce(trade)  # turns it into a reject
                continue
            key = keys.get((trade.exchange, trade.symbol)) or self._key(trade)
            try:
                produce(topic, value, key, -1, on_delivery)  # positional: see _produce
                self.produced += 1
            except BufferError:
                self._produce(topic, key, value)
        # Serve delivery reports every POLL_EVERY messages rather than per call: a poll
        # costs ~0.7 µs even with nothing to serve, and one-trade frames call this per
        # trade. The reports wait at most POLL_EVERY messages (or the next poll()).
        self._unpolled += len(trades)
        if self._unpolled >= POLL_EVERY:
            self.poll(0)

    def avro_lane(self) -> AvroLane:
        """The raw produce route for ingest/lane.py (already encoded trades); the lane
        counts what it produces in `produced`, as produce_many does."""
        return AvroLane(
            owner=self,
            header=self.encode.header,
            topic=self.trades_topic,
            produce=self._producer.produce,
            on_delivery=self._on_delivery,
            produce_blocking=self._produce,
            poll=self.poll,
            poll_every=POLL_EVERY,
        )

    def produce_reject(self, reject: Reject) -> None:
        self._produce(self.rejects_topic, reject.exchange.encode(), reject.to_json())

    def poll(self, timeout: float = 0) -> int:
        self._unpolled = 0
        served = self._producer.poll(timeout)
        self._sync_metrics()
        return served

    def _sync_metrics(self) -> None:
        now = time.monotonic()
        if now - self._synced_at < 0.5:
            return
        self._synced_at = now
        metrics.QUEUE_DEPTH.set(len(self._producer))
        delivered = self.delivered
        if delivered > self._reported:
            metrics.DELIVERED.inc(delivered - self._reported)
            self._reported = delivered

    @property
    def in_flight(self) -> int:
        return len(self._producer)

    def flush(self, timeout: float = 30.0) -> int:
        """Wait for every queued message to be acked; the number still unacked."""
        deadline = time.monotonic() + timeout
        remaining = len(self._producer)
        while remaining and time.monotonic() < deadline:
            remaining = self._producer.flush(min(1.0, max(0.0, deadline - time.monotonic())))
        self._synced_at = 0.0
        self._sync_metrics()
        return remaining

    def close(self, timeout: float = 30.0) -> None:
        """Flush (SIGTERM path); raise if anything was not delivered."""
        remaining = self.flush(timeout)
        if remaining or self.failed:
            raise DeliveryError(
                f"{remaining} messages unacknowledged, {self.failed} failed: {self.failures[:3]}"
            )

    def healthy(self) -> bool:
        return self.failed == 0


__all__ = ["DeliveryError", "KafkaException", "ProducerSettings", "TradeProducer"]
