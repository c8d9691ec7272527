"""Prometheus metrics of the ingest process, and the /metrics + /healthz HTTP endpoint."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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
