"""Prometheus metrics of the reconciler, in their own registry (one per reconciler)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
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
