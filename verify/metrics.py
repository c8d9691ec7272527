"""Prometheus metrics of the reconciler (own registry) and its /metrics + /healthz endpoint."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)


@dataclass
class ReconcileMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r, market = self.registry, ["exchange", "symbol", "interval"]
        self.checked = Counter(
            "candleflow_reconcile_windows_checked",
            "Windows compared with the exchange's own candle",
            market,
            registry=r,
        )
        self.matched = Counter(
            "candleflow_reconcile_windows_matched",
            "Windows where every comparable field equals the exchange's",
            market,
            registry=r,
        )
        self.mismatches = Counter(
            "candleflow_reconcile_mismatches",
            "Field mismatches (field=window: a window missing on one side)",
            [*market, "field"],
            registry=r,
        )
        self.unverifiable = Counter(
            "candleflow_reconcile_windows_unverifiable",
            "Windows the exchange no longer serves (Kraken: 720 most recent entries)",
            market,
            registry=r,
        )
        self.fetch_events = Counter(
            "candleflow_reconcile_fetch_events",
            "REST answers that were not candles (rate_limited, retry, unavailable, gave_up)",
            ["exchange", "event"],
            registry=r,
        )
        self.pending_windows = Gauge(
            "candleflow_reconcile_pending_windows",
            "Closed windows not yet checked (outage or rate limiting keeps them pending)",
            market,
            registry=r,
        )
        self.checked_until = Gauge(
            "candleflow_reconcile_checked_until_seconds",
            "End of the last window checked (Unix seconds)",
            market,
            registry=r,
        )
        self.published = Counter(
            "candleflow_reconcile_records_published",
            "Mismatch records written to reconcile.v1",
            registry=r,
        )
        self.cycles = Counter(
            "candleflow_reconcile_cycles", "Reconcile cycles by outcome", ["outcome"], registry=r
        )


class Health:
    """/healthz: healthy while the loop beat within `max_silence_s` and every check passes."""

    def __init__(self, max_silence_s: float = 120.0) -> None:
        self.max_silence_s = max_silence_s
        self.last_beat = time.monotonic()
        self.checks: dict[str, Callable[[], bool]] = {}

    def beat(self) -> None:
        self.last_beat = time.monotonic()

    def report(self) -> tuple[bool, dict[str, bool]]:
        results = {"loop": time.monotonic() - self.last_beat < self.max_silence_s}
        for name, check in self.checks.items():
            try:
                results[name] = bool(check())
            except Exception:  # a failing check is unhealthy, never a crashed endpoint
                results[name] = False
        return all(results.values()), results


def serve(port: int, registry: CollectorRegistry, health: Health) -> ThreadingHTTPServer:
    """/metrics and /healthz on a daemon thread; port 0 picks a free port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if self.path.startswith("/metrics"):
                body, status, kind = generate_latest(registry), 200, CONTENT_TYPE_LATEST
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

        def log_message(self, *args: object) -> None:  # scrapes are not news
            pass

    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)  # noqa: S104 (a pod's port)
    threading.Thread(target=server.serve_forever, name="verify-metrics", daemon=True).start()
    return server
