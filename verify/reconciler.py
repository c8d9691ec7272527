"""One reconcile cycle: for each market and interval, the windows that closed more than the
settle time ago and that our candles already cover, fetched from the exchange page by page,
compared, counted and published.

A window is checked once its page answered. An outage or a rate limit leaves the market's
windows pending (the next cycle retries them); it is counted in fetch metrics, never as a
mismatch. Our candles come from `OurCandles` (candles.v1 read_committed in the service, a dict
in tests): `until_us` is how far our candles of that market reach (the end of the last window
we emitted; empty windows included), so a lagging pipeline is not reported as missing windows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
import structlog

from candleflow.domain import Candle
from candleflow.intervals import Interval
from verify.client import Limiter, RetryPolicy, fetch_candles, limiter_key
from verify.compare import Mismatch, compare_windows
from verify.exchange_candles import (
    COMPARABLE,
    BaseUrls,
    Market,
    RateLimited,
    Unavailable,
    requests_for,
    supports,
)
from verify.metrics import ReconcileMetrics

log = structlog.get_logger("candleflow.verify")


class OurCandles(Protocol):
    def until_us(self, market: Market, interval: str) -> int | None: ...

    def windows(
        self, market: Market, interval: str, start_us: int, end_us: int
    ) -> Mapping[int, Candle]: ...


@dataclass
class CycleReport:
    checked: int = 0
    matched: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)  # market/interval -> reason


@dataclass
class Reconciler:
    markets: Sequence[Market]
    intervals: Sequence[Interval]
    start_us: int  # windows starting before this are never checked
    settle_s: float  # a window is checked once it closed this long ago (allowed lateness +)
    limiters: dict[str, Limiter]
    metrics: ReconcileMetrics
    urls: BaseUrls = field(default_factory=BaseUrls)
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    max_pages_per_cycle: int = 5  # per market and interval: a long backlog drains over cycles
    progress: dict[tuple[Market, str], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Every series at 0 from the start: increase() sees the first mismatch of a label set.
        for market in self.markets:
            for iv in self.intervals:
                labels = self._labels(market, iv.name)
                for name in [r.name for r in COMPARABLE[market.exchange]] + ["window"]:
                    self.metrics.mismatches.labels(**labels, field=name)
                for counter in (self.metrics.checked, self.metrics.matched):
                    counter.labels(**labels)

    def _labels(self, market: Market, interval: str) -> dict[str, str]:
        return {"exchange": market.exchange, "symbol": market.symbol, "interval": interval}

    async def cycle(
        self,
        session: aiohttp.ClientSession,
        ours: OurCandles,
        now_us: int,
        publish: Callable[[list[Mismatch]], None],
    ) -> CycleReport:
        report = CycleReport()
        for market in self.markets:
            for iv in self.intervals:
                if not supports(market, iv.name):
                    continue
                try:
                    await self._market(session, ours, market, iv, now_us, publish, report)
                except (RateLimited, Unavailable) as exc:
                    reason = f"{type(exc).__name__}: {exc}"
                    report.failures[f"{market}/{iv.name}"] = reason
                    log.warning(
                        "verify.fetch_failed", market=str(market), interval=iv.name, reason=reason
                    )
        return report

    async def _market(
        self,
        session: aiohttp.ClientSession,
        ours: OurCandles,
        market: Market,
        iv: Interval,
        now_us: int,
        publish: Callable[[list[Mismatch]], None],
        report: CycleReport,
    ) -> None:
        key, labels = (market, iv.name), self._labels(market, iv.name)
        start = self.progress.get(key, iv.window_start(self.start_us + iv.micros - 1))
        settled = iv.window_start(now_us - int(self.settle_s * 1_000_000))
        reach = ours.until_us(market, iv.name)
        end = min(settled, iv.window_start(reach)) if reach is not None else start
        self.metrics.pending_windows.labels(**labels).set(max(0, (settled - start) // iv.micros))
        if end <= start:
            return
        limiter = self.limiters[limiter_key(market)]
        events = self._events
        for request in requests_for(market, iv, start, end, self.urls)[: self.max_pages_per_cycle]:
            theirs = await fetch_candles(session, request, market, iv, limiter, self.policy, events)
            page_end = min(request.end_us, end)
            covered = request.start_us
            if market.exchange == "kraken":  # the 720 most recent entries only
                first = min((c.window_start_us for c in theirs), default=page_end)
                covered = max(covered, first)
                if covered > request.start_us:
                    gone = (covered - request.start_us) // iv.micros
                    self.metrics.unverifiable.labels(**labels).inc(gone)
            mine = ours.windows(market, iv.name, request.start_us, page_end)
            result = compare_windows(
                market, iv.name, mine, theirs, request.start_us, page_end, covered
            )
            if result.mismatches:
                publish(result.mismatches)
                for m in result.mismatches:
                    self.metrics.mismatches.labels(**labels, field=m.field).inc()
                    log.error(
                        "verify.mismatch",
                        market=str(market),
                        interval=iv.name,
                        window_start_us=m.window_start_us,
                        field=m.field,
                        kind=m.kind,
                        ours=m.ours,
                        theirs=m.theirs,
                        revision=m.revision,
                    )
            self.metrics.checked.labels(**labels).inc(len(result.checked))
            self.metrics.matched.labels(**labels).inc(result.matched)
            report.checked += len(result.checked)
            report.matched += result.matched
            report.mismatches += result.mismatches
            self.progress[key] = page_end
            self.metrics.checked_until.labels(**labels).set(page_end / 1_000_000)
            self.metrics.pending_windows.labels(**labels).set(
                max(0, (settled - page_end) // iv.micros)
            )
            if page_end >= end:
                break

    def _events(self, exchange: str, event: str) -> None:
        self.metrics.fetch_events.labels(exchange=exchange, event=event).inc()
