"""`candleflow verify live`: the long-running reconciler.

Every cycle: candles.v1 read to its last stable offset, then each market's settled windows
checked against the exchange (reconciler.py), mismatches to reconcile.v1 and the logs,
counts to /metrics. /healthz is healthy while cycles complete (an exchange outage is not
the reconciler's ill health: it shows in candleflow_reconcile_fetch_events_total and
pending windows). SIGTERM/SIGINT end the current cycle's wait and close Kafka cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from typing import Any, cast

import aiohttp
import structlog

from candleflow.config import StackSettings, Topics
from verify.client import limiters
from verify.compare import Mismatch
from verify.kafka_io import CandleView, MismatchPublisher, mismatch_record
from verify.metrics import ReconcileMetrics
from verify.reconciler import Reconciler
from verify.settings import VerifySettings

log = structlog.get_logger("candleflow.verify")


def now_us() -> int:
    return time.time_ns() // 1000


class VerifyService:
    def __init__(
        self,
        settings: VerifySettings | None = None,
        stack: StackSettings | None = None,
        topics: Topics | None = None,
    ) -> None:
        self.settings = s = settings or VerifySettings()
        self.stack = stack or StackSettings()
        self.topics = topics or Topics()
        self.metrics = ReconcileMetrics()
        self.max_silence_s = max(120.0, 4 * s.cycle_seconds)
        start = now_us() - int(s.lookback_seconds * 1_000_000)
        self.reconciler = Reconciler(
            markets=s.market_list(),
            intervals=s.interval_list(),
            start_us=start,
            settle_s=s.settle_seconds,
            limiters=limiters(s.budget_fraction),
            metrics=self.metrics,
            urls=s.urls(),
            max_pages_per_cycle=s.max_pages_per_cycle,
        )
        self.view = CandleView(
            self.stack,
            self.topics.candles,
            self.reconciler.markets,
            [iv.name for iv in self.reconciler.intervals],
            since_us=start,
        )
        self.publisher = MismatchPublisher(self.stack, self.topics.reconcile)
        self.micros = {iv.name: iv.micros for iv in self.reconciler.intervals}

    def _publish(self, mismatches: list[Mismatch]) -> None:
        at = now_us()
        self.publisher.publish(
            [mismatch_record(m, self.micros[m.interval], at) for m in mismatches]
        )
        self.metrics.published.inc(len(mismatches))

    async def run(self, stop: asyncio.Event, port: int | None = None) -> None:
        # /healthz (200 while cycles complete) and /metrics: the explainer's server, one copy.
        from explainer.service import HealthServer

        s = self.settings
        port = s.metrics_port if port is None else port
        # Typed on ExplainerMetrics on main; it only reads `.registry` (branch check types it
        # on a Protocol), so the cast goes away with that.
        metrics = cast(Any, self.metrics)
        self.health = HealthServer(port, metrics, self.max_silence_s).start()
        self.port = self.health.port
        log.info(
            "verify.started",
            markets=[str(m) for m in self.reconciler.markets],
            intervals=s.intervals,
            settle_seconds=s.settle_seconds,
            candles_topic=self.topics.candles,
            reconcile_topic=self.topics.reconcile,
            metrics_port=self.port,
        )
        try:
            await asyncio.to_thread(self.view.start)
            async with aiohttp.ClientSession() as session:
                while not stop.is_set():
                    await self._cycle(session)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), s.cycle_seconds)
        finally:
            log.info("verify.stopping")
            self.view.close()
            self.publisher.producer.flush(10)
            self.health.stop()

    async def _cycle(self, session: aiohttp.ClientSession) -> None:
        if not await asyncio.to_thread(self.view.catch_up):
            self.metrics.cycles.labels(outcome="kafka_behind").inc()
            log.warning("verify.candles_not_caught_up", topic=self.topics.candles)
            return
        report = await self.reconciler.cycle(session, self.view, now_us(), self._publish)
        self.view.prune(self.reconciler.progress)
        self.metrics.cycles.labels(outcome="partial" if report.failures else "complete").inc()
        self.health.beat()
        log.info(
            "verify.cycle",
            checked=report.checked,
            matched=report.matched,
            mismatches=len(report.mismatches),
            failures=report.failures,
            candle_records=self.view.records,
        )


def main(settings: VerifySettings | None = None) -> None:
    from explainer.service import configure_logging  # JSON lines, as every service

    service = VerifyService(settings)
    configure_logging(service.settings.log_level)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await service.run(stop)

    asyncio.run(run())
