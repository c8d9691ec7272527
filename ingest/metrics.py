"""Prometheus metrics of the ingest process, and the /metrics + /healthz HTTP endpoint."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

FRAMES = Counter(
    "candleflow_ingest_frames_total", "WebSocket frames received", ["exchange", "outcome"]
)  # outcome: trades, control, reject
TRADES = Counter("candleflow_ingest_trades_total", "Trades parsed", ["exchange", "source"])
DUPLICATES = Counter(
    "candleflow_ingest_duplicates_total",
    "Trades seen again (reconnect/backfill overlap) and not produced twice",
    ["exchange"],
)
REJECTS = Counter("candleflow_ingest_rejects_total", "Rejected frames", ["exchange", "reason"])
GAPS_FOUND = Counter(
    "candleflow_ingest_gap_trades_found_total", "Trade ids missing from the stream", ["exchange"]
)
GAPS_FILLED = Counter(
    "candleflow_ingest_gap_trades_filled_total",
    "Missing trade ids fetched over REST and produced",
    ["exchange"],
)
GAPS_UNFILLABLE = Counter(
    "candleflow_ingest_gap_trades_unfillable_total",
    "Missing trade ids REST could not return",
    ["exchange"],
)
SEQUENCE_GAPS = Counter(
    "candleflow_ingest_sequence_gaps_total",
    "Connection sequence-number jumps (frames lost)",
    ["exchange"],
)
RECONNECTS = Counter(
    "candleflow_ingest_reconnects_total", "WebSocket reconnects", ["exchange", "reason"]
)
CIRCUIT_OPEN = Gauge(
    "candleflow_ingest_circuit_open", "1 while the circuit breaker is open", ["exchange"]
)
DELIVERED = Counter(
    "candleflow_ingest_delivered_total", "Messages (trades and rejects) acknowledged by Kafka"
)
DELIVERY_FAILED = Counter(
    "candleflow_ingest_delivery_failed_total", "Messages Kafka did not acknowledge", ["topic"]
)
PRODUCE_LATENCY = Histogram(
    "candleflow_ingest_produce_latency_seconds",
    "produce() to broker acknowledgement",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)
QUEUE_DEPTH = Gauge("candleflow_ingest_queue_depth", "Messages waiting in the producer queue")
# From librdkafka's statistics (statistics.interval.ms, ProducerSettings): per broker, over
# the last statistics window. librdkafka measures these in µs; exported in seconds.
BROKER_LATENCY = Gauge(
    "candleflow_ingest_kafka_broker_latency_seconds",
    "Produce latency per broker over the last librdkafka statistics window (every"
    " CANDLEFLOW_INGEST_STATISTICS_INTERVAL_MS). kind: rtt = produce request round trip"
    " (sent to the broker -> its response, i.e. the acknowledgement), queue = message"
    " produce() -> handed to the broker thread (librdkafka int_latency), outbuf = request"
    " waiting in the output buffer before it is sent (outbuf_latency). stat: p50, p99 (from"
    " librdkafka's histogram, which leaves out samples beyond its range: see"
    " candleflow_ingest_kafka_broker_latency_out_of_range), avg and max (all samples)."
    " Kept from the last window that had samples",
    ["broker", "kind", "stat"],
)
BROKER_LATENCY_SAMPLES = Gauge(
    "candleflow_ingest_kafka_broker_latency_samples",
    "Samples behind candleflow_ingest_kafka_broker_latency_seconds in the last statistics"
    " window (0: nothing was sent, the latency gauges still show an earlier window)",
    ["broker", "kind"],
)
BROKER_LATENCY_OUT_OF_RANGE = Gauge(
    "candleflow_ingest_kafka_broker_latency_out_of_range",
    "Latency samples beyond the range of librdkafka's histogram since the producer started"
    " (missing from p50/p99, included in avg/max)",
    ["broker", "kind"],
)
STATS_QUEUE_MESSAGES = Gauge(
    "candleflow_ingest_kafka_queue_messages",
    "Messages in the producer's queue (queued or awaiting acknowledgement) at the last"
    " librdkafka statistics (msg_cnt); candleflow_ingest_queue_depth is the same, sampled"
    " every 0.5 s",
)
# librdkafka's window name -> our `kind` label
_LATENCY_WINDOWS = (("rtt", "rtt"), ("int_latency", "queue"), ("outbuf_latency", "outbuf"))
_LATENCY_STATS = ("p50", "p99", "avg", "max")


def librdkafka_latencies(
    stats: dict[str, Any],
) -> list[tuple[str, str, int, int, dict[str, float]]]:
    """(broker, kind, samples, out_of_range, {stat: seconds}) for every real broker of one
    librdkafka statistics document (bootstrap and internal entries, nodeid < 0, left out)."""
    out = []
    for name, broker in sorted((stats.get("brokers") or {}).items()):
        if not isinstance(broker, dict) or broker.get("nodeid", -1) < 0:
            continue
        for window, kind in _LATENCY_WINDOWS:
            w = broker.get(window)
            if not isinstance(w, dict):
                continue
            seconds = {stat: w[stat] / 1e6 for stat in _LATENCY_STATS}
            out.append((name, kind, int(w["cnt"]), int(w.get("outofrange", 0)), seconds))
    return out


def export_librdkafka_stats(stats: dict[str, Any]) -> None:
    """librdkafka statistics (the stats_cb JSON, decoded) -> the BROKER_* gauges."""
    for broker, kind, samples, out_of_range, seconds in librdkafka_latencies(stats):
        BROKER_LATENCY_SAMPLES.labels(broker, kind).set(samples)
        BROKER_LATENCY_OUT_OF_RANGE.labels(broker, kind).set(out_of_range)
        if samples:
            for stat, value in seconds.items():
                BROKER_LATENCY.labels(broker, kind, stat).set(value)
    if isinstance(stats.get("msg_cnt"), int):
        STATS_QUEUE_MESSAGES.set(stats["msg_cnt"])


BACKPRESSURE = Counter(
    "candleflow_ingest_backpressure_waits_total",
    "Times produce() waited because the producer queue was full",
)


class Health:
    """What /healthz reports: each component sets its own check (True = healthy)."""

    def __init__(self) -> None:
        self._checks: dict[str, Callable[[], bool]] = {}
        self.started = time.monotonic()

    def add(self, name: str, check: Callable[[], bool]) -> None:
        self._checks[name] = check

    def report(self) -> tuple[bool, dict[str, bool]]:
        results = {}
        for name, check in self._checks.items():
            try:
                results[name] = bool(check())
            except Exception:  # a failing check is unhealthy, never a crashed endpoint
                results[name] = False
        return all(results.values()), results


def serve(port: int, health: Health, host: str = "0.0.0.0") -> ThreadingHTTPServer:  # noqa: S104
    """Start /metrics and /healthz on a daemon thread; port 0 picks a free port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if self.path.startswith("/metrics"):
                body, status, kind = generate_latest(), 200, CONTENT_TYPE_LATEST
            elif self.path.startswith("/healthz"):
                ok, checks = health.report()
                body = json.dumps({"healthy": ok, "checks": checks}).encode()
                status, kind = (200 if ok else 503), "application/json"
            else:
                body, status, kind = b"not found\n", 404, "text/plain"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:  # quiet: scrapes are not news
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="ingest-metrics", daemon=True).start()
    return server
