"""The long-running explainer: anomalies.v1 -> Explainer -> explanations.v1 + gold.explanations.

Exactly once, and one LLM call per anomaly_id:
- At start, explanations.v1 is read to its end (read_committed): every id there is
  explained, so a restart or a replay of anomalies.v1 from the beginning makes no second
  call. (explanations.v1 is keyed by anomaly_id, so it can be compacted.)
- Consume-transform-produce: the explanations of a batch and the consumer offsets of that
  batch are committed in one Kafka transaction; anomalies are read read_committed.
  The only window for a second call is a crash after the model answered and before the
  transaction committed (at most one batch).
- gold.explanations is a projection of explanations.v1: after each commit the new rows
  are appended, and at start any id in the topic but not in the table is appended, so a
  crash between the two is repaired; an id already in the table is never appended again.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

import structlog
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from adapters import avro
from candleflow.config import StackSettings, Topics
from candleflow.domain import Anomaly, Explanation
from explainer.budget import Budget
from explainer.candles import CandleCache
from explainer.explainer import Explainer
from explainer.iceberg import ExplanationsTable
from explainer.llm import ClaudeExplainer
from explainer.metrics import ExplainerMetrics
from explainer.settings import ExplainerSettings

log = structlog.get_logger("candleflow.explainer.service")


def configure_logging(level: str = "INFO") -> None:
    """JSON lines on stderr. Library loggers go through the same handler."""
    lvl = logging.getLevelName(level.upper())
    logging.basicConfig(level=lvl, stream=sys.stderr, format="%(name)s %(levelname)s %(message)s")
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )


def read_topic_to_end(
    stack: StackSettings, topic: str, contract: str, timeout_s: float = 30.0
) -> list[Any]:
    """Every committed record of `topic`, decoded, reading all partitions to their end."""
    consumer = Consumer(
        stack.kafka_config(
            **{
                "group.id": f"candleflow-reader-{uuid.uuid4().hex}",
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
            }
        )
    )
    deser = avro.deserializer(avro.registry_client(stack), contract)
    out: list[Any] = []
    try:
        meta = consumer.list_topics(topic, timeout=10)
        if meta.topics[topic].error is not None:
            return out
        parts = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.topics[topic].partitions]
        ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in parts}
        todo = {p for p, end in ends.items() if end > 0}
        consumer.assign(parts)
        deadline = time.monotonic() + timeout_s
        while todo and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                # read_committed: trailing transaction markers are never delivered
                for tp in consumer.position([TopicPartition(topic, p) for p in list(todo)]):
                    if tp.offset >= ends[tp.partition]:
                        todo.discard(tp.partition)
                continue
            if msg.error():
                raise KafkaException(msg.error())
            out.append(deser(msg.value(), avro.value_context(topic)))
            offset, partition = msg.offset(), msg.partition()
            assert offset is not None and partition is not None
            if offset + 1 >= ends[partition]:
                todo.discard(partition)
        if todo:
            raise TimeoutError(f"could not read {topic} to its end in {timeout_s}s")
        return out
    finally:
        consumer.close()


class HasRegistry(Protocol):
    registry: CollectorRegistry


class HealthServer:
    """GET /healthz (200 while the loop is alive) and /metrics (Prometheus). Shared by the
    long-running services (the explainer, the invariant checker)."""

    def __init__(self, port: int, metrics: HasRegistry, max_silence_s: float = 60.0) -> None:
        self.last_beat = time.monotonic()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                if self.path == "/metrics":
                    body, ctype, code = generate_latest(metrics.registry), CONTENT_TYPE_LATEST, 200
                elif self.path == "/healthz":
                    ok = time.monotonic() - outer.last_beat < max_silence_s
                    body, ctype, code = (
                        (b"ok\n" if ok else b"stalled\n"),
                        "text/plain",
                        (200 if ok else 503),
                    )
                else:
                    body, ctype, code = b"not found\n", "text/plain", 404
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:  # quiet: metrics scrapes are noise
                pass

        self.server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> HealthServer:
        self.thread.start()
        return self

    def beat(self) -> None:
        self.last_beat = time.monotonic()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class ExplainerService:
    def __init__(
        self,
        settings: ExplainerSettings | None = None,
        stack: StackSettings | None = None,
        topics: Topics | None = None,
        *,
        llm_client: Any = None,
    ) -> None:
        self.settings = settings or ExplainerSettings()
        self.stack = stack or StackSettings()
        self.topics = topics or Topics()
        self.metrics = ExplainerMetrics()
        self.stopping = threading.Event()
        s = self.settings
        llm = None
        if s.online or llm_client is not None:
            budget = Budget(s.calls_per_minute, s.calls_per_day, s.usd_per_day)
            llm = ClaudeExplainer(s, self.metrics, budget, client=llm_client)
        self.explained: set[str] = set()
        self.candles = CandleCache(
            self.stack, self.topics.candles, s.context_candles, s.candles_lookback_minutes
        )
        self.core = Explainer(
            model=s.model if llm else "offline",
            metrics=self.metrics,
            explained=self.explained,
            context=self.candles.context,
            llm=llm,
        )
        self.table = ExplanationsTable(self.stack, s.iceberg_table) if s.write_iceberg else None

    def request_stop(self, *_: object) -> None:
        log.info("explainer.stopping")
        self.stopping.set()

    def recover(self) -> None:
        """Load the explained ids from explanations.v1; repair gold.explanations from it."""
        done: list[Explanation] = read_topic_to_end(
            self.stack, self.topics.explanations, "explanation"
        )
        self.explained.update(e.anomaly_id for e in done)
        self.metrics.explained_ids.set(len(self.explained))
        repaired = self.table.append_missing(done) if self.table else 0
        log.info(
            "explainer.recovered",
            explained_ids=len(self.explained),
            iceberg_repaired=repaired,
            online=self.core.llm is not None,
            model=self.core.model,
        )

    def run(self, *, max_idle_s: float | None = None, health: HealthServer | None = None) -> None:
        """Consume until SIGTERM/stop (or, for tests, until idle for `max_idle_s`)."""
        self.recover()
        s, stack = self.settings, self.stack
        consumer = Consumer(
            stack.kafka_config(
                **{
                    "group.id": s.group_id,
                    "isolation.level": "read_committed",
                    "enable.auto.commit": False,
                    "auto.offset.reset": "earliest",
                }
            )
        )
        producer = Producer(
            stack.kafka_config(
                **{
                    "transactional.id": s.transactional_id,
                    "enable.idempotence": True,
                    "linger.ms": 5,
                }
            )
        )
        client = avro.registry_client(stack)
        deser = avro.deserializer(client, "anomaly")
        ser = avro.serializer(client, "explanation")
        out_ctx = avro.value_context(self.topics.explanations)
        in_ctx = avro.value_context(self.topics.anomalies)
        producer.init_transactions(30)
        consumer.subscribe([self.topics.anomalies])
        idle_since = time.monotonic()
        try:
            while not self.stopping.is_set():
                if health:
                    health.beat()
                msgs = consumer.consume(num_messages=50, timeout=1.0)
                if not msgs:
                    if max_idle_s is not None and time.monotonic() - idle_since > max_idle_s:
                        break
                    continue
                idle_since = time.monotonic()
                written: list[Explanation] = []
                producer.begin_transaction()
                try:
                    for msg in msgs:
                        if msg.error():
                            raise KafkaException(msg.error())
                        anomaly: Anomaly = deser(msg.value(), in_ctx)  # type: ignore[assignment]
                        e = self.core.explain(anomaly)
                        if e is None:
                            continue
                        producer.produce(
                            self.topics.explanations,
                            key=e.anomaly_id.encode(),
                            value=ser(e, out_ctx),
                        )
                        self.explained.add(e.anomaly_id)  # later duplicates in this batch skip
                        written.append(e)
                    producer.send_offsets_to_transaction(
                        consumer.position(consumer.assignment()),
                        consumer.consumer_group_metadata(),
                        30,
                    )
                    producer.commit_transaction(30)
                except BaseException:
                    producer.abort_transaction(30)
                    self.explained.difference_update(e.anomaly_id for e in written)
                    raise
                self.metrics.explained_ids.set(len(self.explained))
                if self.table and written:
                    self.table.append_missing(written)
                log.info("explainer.batch_committed", anomalies=len(msgs), explained=len(written))
        finally:
            consumer.close()
            producer.flush(10)
            self.candles.close()
            log.info("explainer.stopped")


def serve(settings: ExplainerSettings | None = None, max_idle_s: float | None = None) -> None:
    """`candleflow explainer run`: the service with /healthz + /metrics and SIGTERM handling."""
    svc = ExplainerService(settings)
    health = HealthServer(svc.settings.metrics_port, svc.metrics).start()
    signal.signal(signal.SIGTERM, svc.request_stop)
    signal.signal(signal.SIGINT, svc.request_stop)
    log.info(
        "explainer.starting",
        metrics_port=health.port,
        model=svc.settings.model,
        online=svc.settings.online,
        anomalies=svc.topics.anomalies,
        explanations=svc.topics.explanations,
    )
    try:
        svc.run(health=health, max_idle_s=max_idle_s)
    finally:
        health.stop()
