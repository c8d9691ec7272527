"""Property tests of the stream path: the real candles job (Java PTF on a MiniCluster) over
hundreds of generated scenarios per run, each one market, against the batch reference.

A Flink run costs tens of seconds and a scenario almost nothing, so one run carries many
independent markets (tests/jobs/scenarios.py): 250 per run, five runs, 1,250 scenarios per
`make test`; `CANDLEFLOW_PROPERTY_SCALE=10` runs 12,500 (docs/semantics.md, Testing).
Intervals are per job, so each run has its own interval set: every interval alone, with
idle flushes on (the end of input and quiet markets decide the last windows), and a random
subset with idle flushes off, where every emission, revisions included, is deterministic and
compared exactly. The seed is printed; CANDLEFLOW_PROPERTY_SEED replays a run.
"""

from __future__ import annotations

import random
from collections import defaultdict

import pytest

from candleflow import reference
from candleflow.config import CandleSettings
from candleflow.intervals import parse_intervals
from jobs.candle_files import write_trades_csv
from tests.jobs import checks, scenarios
from tests.jobs.harness import run_bronze, run_job

pytestmark = pytest.mark.flink

GRACE = {"1m": 10, "5m": 30, "15m": 60, "1h": 60}
LATENESS_S = 120
PER_RUN = 250
SEED = scenarios.seed()
# (name, parallelism, idle flush): each interval alone, then a subset drawn from the seed.
RUNS = [("1m", 1, True), ("5m", 2, True), ("15m", 1, True), ("1h", 1, True), ("subset", 2, False)]


def run_intervals(name: str, rng: random.Random) -> str:
    if name != "subset":
        return name
    k = rng.randint(2, len(scenarios.INTERVAL_CHOICES))
    return ",".join(rng.sample(scenarios.INTERVAL_CHOICES, k))


def stream_settings(intervals: str, idle: bool) -> CandleSettings:
    return CandleSettings(
        intervals=intervals,
        grace_seconds=GRACE,
        allowed_lateness_seconds=LATENESS_S,
        idle_flush_delay_seconds=60 if idle else 10 * 86_400,
        dedup_ttl_seconds=12 * 86_400,
    )


def check_stream(trades, out, landed, ref, intervals: str, exact: bool) -> checks.Problems:
    """`landed`: what the bronze job landed from the same arrival order (None: not run)."""
    p: checks.Problems = defaultdict(list)
    names = [iv.name for iv in parse_intervals(intervals)]
    checks.compare_final(out.final(), ref.final(), p)
    checks.compare_late(out.late, ref.late, p)
    checks.revisions_contiguous(out.candles, p)
    checks.conservation(
        landed if landed is not None else ref.accepted, out.final(), out.late, names, p
    )
    if landed is not None:
        got_ids = sorted((t.exchange, t.symbol, t.trade_id) for t in landed)
        want_ids = sorted((t.exchange, t.symbol, t.trade_id) for t in ref.accepted)
        for k in sorted(set(got_ids) ^ set(want_ids)):
            p[k[:2]].append(f"bronze {'extra' if k in set(got_ids) else 'missing'} trade {k[2]}")
    if exact:  # every emission, revisions included (order across windows may differ)
        got = defaultdict(list)
        want = defaultdict(list)
        for c in out.candles:
            got[checks.window_key(c)].append(c)
        for c in ref.emissions:
            want[checks.window_key(c)].append(c)
        for k in set(got) | set(want):
            by_rev = lambda cs: sorted(cs, key=lambda c: c.revision)  # noqa: E731
            if by_rev(got[k]) != by_rev(want[k]):
                p[k[:2]].append(f"window {k[2:]}: emissions {got[k]} want {want[k]}")
    return p


@pytest.mark.parametrize(("name", "parallelism", "idle"), RUNS, ids=[r[0] for r in RUNS])
def test_job_equals_reference_over_many_markets(name, parallelism, idle, tmp_path):
    rng = random.Random(f"{SEED}-{name}")
    intervals = run_intervals(name, rng)
    settings = stream_settings(intervals, idle)
    longest = max(iv.micros for iv in parse_intervals(intervals))
    grace = min(settings.grace_us(iv.name) for iv in parse_intervals(intervals))
    batch = scenarios.stream_scenarios(
        rng,
        PER_RUN * scenarios.scale(),
        grace_us=grace,
        lateness_us=settings.allowed_lateness_us,
        longest_us=longest,
    )
    trades = scenarios.merged_arrival(batch)
    print(f"seed {SEED}: run {name} ({intervals}), {len(batch)} scenarios, {len(trades)} trades")
    ref = reference.stream_reference(trades, settings=settings)
    # The scenarios exercise what they should, as a whole.
    assert ref.late and ref.duplicates and any(c.revision > 0 for c in ref.emissions)
    out = run_job(trades, settings, parallelism=parallelism, workdir=tmp_path)
    # The bronze job (its own job since issue 14) over the same arrival order, once per test
    # session: the subset run; the other runs check conservation against the reference.
    landed = (
        run_bronze(
            trades,
            dedup_ttl_s=settings.dedup_ttl_seconds,
            parallelism=parallelism,
            workdir=tmp_path,
        )
        if name == "subset"
        else None
    )
    p = check_stream(trades, out, landed, ref, intervals, exact=not idle)
    if p:
        dump = tmp_path / "failing-scenarios.csv"
        write_trades_csv([t for t in trades if (t.exchange, t.symbol) in p], dump)
        pytest.fail(
            checks.report(
                p,
                f"CANDLEFLOW_PROPERTY_SEED={SEED} run {name} (intervals {intervals}, parallelism "
                f"{parallelism}, idle flush {idle}); their trades in arrival order: {dump}",
            ),
            pytrace=False,
        )
