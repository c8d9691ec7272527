"""One check of the invariants over a time range: read, check, report."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from candleflow.config import CandleSettings
from candleflow.intervals import Interval, parse_intervals
from serving.check.invariants import GAP_FREE_EXCHANGES, Violation, check_all
from serving.check.lake import Lake, Span, spans
from serving.check.revisions import RevisionLog

# Beyond the candle job's own delays, time for the last window's rows to be committed to
# both tables (the jobs commit on checkpoints, by default every 10 s; bronze and candles
# are separate jobs).
COMMIT_MARGIN_US = 120_000_000


def settle_us(settings: CandleSettings | None = None) -> int:
    """How long after a window's end its candle and trades are final in the lakehouse: the
    longest grace + allowed lateness + idle-flush delay (docs/semantics.md) + a commit
    margin. Checking a younger window would report a candle that is still being corrected."""
    s = settings or CandleSettings()
    grace = max(s.grace_us(iv.name) for iv in parse_intervals(s.intervals))
    return (
        grace
        + s.allowed_lateness_us
        + int(s.idle_flush_delay_seconds * 1_000_000)
        + COMMIT_MARGIN_US
    )


@dataclass
class Report:
    start_us: int
    end_us: int
    spans: list[Span]
    violations: list[Violation] = field(default_factory=list)
    candles: int = 0  # candles read
    trade_windows: int = 0  # windows with trades in bronze.trades
    revision_windows: int | None = None  # windows seen in candles.v1 (None: not checked)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.violations


def run_check(
    lake: Lake,
    start_us: int,
    end_us: int,
    intervals: Sequence[Interval],
    revisions: RevisionLog | None = None,
    gap_free: Iterable[str] = GAP_FREE_EXCHANGES,
    catch_up_timeout_s: float = 60.0,
) -> Report:
    """Every invariant over the windows of `intervals` wholly inside [start_us, end_us)."""
    t0 = time.monotonic()
    todo = spans(start_us, end_us, intervals)
    report = Report(start_us, end_us, todo)
    candles, trades = [], []
    for span in todo:
        candles.extend(lake.candles(span))
        trades.extend(lake.trade_windows(span))
    revs = None
    if revisions is not None:
        revisions.catch_up(catch_up_timeout_s)
        revs = revisions.revisions(todo)
        report.revision_windows = len(revs)
    report.violations = check_all(
        candles, trades, {s.interval.name: s.interval for s in todo}, revs, gap_free
    )
    report.candles, report.trade_windows = len(candles), len(trades)
    report.seconds = time.monotonic() - t0
    return report
