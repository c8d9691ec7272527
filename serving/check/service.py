"""The long-running checker: `candleflow check --every 60` runs the invariants on a schedule
over the settled windows of a sliding range and exposes the result as Prometheus metrics.

- /metrics: `candleflow_check_violations{invariant}` (the last completed check),
  `candleflow_check_runs_total{outcome}` (ok, violations, error),
  `candleflow_check_last_success_timestamp_seconds`, `candleflow_check_candles`,
  `candleflow_check_duration_seconds`. The chart's PrometheusRule alerts on them.
- /healthz: 200 while the loop completes cycles (a failing check is a metric, not a dead
  process), 503 when no cycle ended for three periods (and at least five minutes).
- Logs: JSON lines; each violation once per cycle (capped), each cycle's summary.
- SIGTERM/SIGINT: the current cycle ends, the Kafka consumer closes, exit 0.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

from explainer.service import HealthServer
from serving.check.invariants import INVARIANTS, by_invariant
from serving.check.runner import Report

log = structlog.get_logger("candleflow.check")
MAX_LOGGED_VIOLATIONS = 50  # per cycle; the metrics count them all


@dataclass
class CheckMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.violations = Gauge(
            "candleflow_check_violations",
            "Invariant violations found by the last completed check, by invariant",
            ["invariant"],
            registry=r,
        )
        self.runs = Counter(
            "candleflow_check_runs",
            "Checks run, by outcome (ok, violations, error)",
            ["outcome"],
            registry=r,
        )
        self.last_success = Gauge(
            "candleflow_check_last_success_timestamp_seconds",
            "Unix time the last check completed (with or without violations)",
            registry=r,
        )
        self.candles = Gauge(
            "candleflow_check_candles", "Candles read by the last check", registry=r
        )
        self.duration = Gauge(
            "candleflow_check_duration_seconds", "How long the last check took", registry=r
        )
        for outcome in ("ok", "violations", "error"):
            self.runs.labels(outcome)
        for invariant in INVARIANTS:
            self.violations.labels(invariant)

    def record(self, report: Report) -> None:
        for invariant, n in by_invariant(report.violations):
            self.violations.labels(invariant).set(n)
        self.runs.labels("ok" if report.ok else "violations").inc()
        self.last_success.set(time.time())
        self.candles.set(report.candles)
        self.duration.set(report.seconds)


def run_forever(
    check: Callable[[], Report],
    every_s: float,
    metrics: CheckMetrics,
    server: HealthServer | None,
    stop: threading.Event,
) -> None:
    """Run `check` every `every_s` until `stop` is set; one failing check does not end it."""
    while not stop.is_set():
        t0 = time.monotonic()
        try:
            report = check()
        except Exception as exc:  # noqa: BLE001 (a check that fails is counted and retried)
            metrics.runs.labels("error").inc()
            log.error("check_failed", error=f"{type(exc).__name__}: {exc}")
        else:
            metrics.record(report)
            for v in report.violations[:MAX_LOGGED_VIOLATIONS]:
                log.warning(
                    "invariant_violated",
                    invariant=v.invariant,
                    exchange=v.exchange,
                    symbol=v.symbol,
                    interval=v.interval,
                    window_start=v.window,
                    detail=v.detail,
                )
            log.info(
                "check_done",
                start_us=report.start_us,
                end_us=report.end_us,
                candles=report.candles,
                violations=len(report.violations),
                seconds=round(report.seconds, 3),
            )
        if server is not None:
            server.beat()
        stop.wait(max(0.0, every_s - (time.monotonic() - t0)))


def stop_on_signals(stop: threading.Event) -> None:
    def handle(signum: int, _frame: Any) -> None:
        log.info("stopping", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
