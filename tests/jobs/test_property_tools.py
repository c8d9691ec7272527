"""The property tests' own tools, with many hypothesis examples (pure Python, no Flink):
generated data.binance.vision files read back as the trades they were written from, the
generated scenarios satisfy conservation in the reference, and the checks fail when a trade
is lost, counted twice, or both counted and in the DLQ."""

from __future__ import annotations

import random
import tempfile
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from candleflow import binance_files, reference
from candleflow.domain import LateTrade
from tests.jobs import checks, scenarios
from tests.jobs.test_backfill_properties import market_files
from tests.jobs.test_properties import stream_settings

# A seed per example: the generator draws thousands of values, beyond what shrinking helps.
RANDOMS = st.integers(0, 2**32).map(random.Random)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rng=RANDOMS, index=st.integers(0, 3000))
def test_generated_files_read_back_as_their_trades(rng: random.Random, index: int, tmp_path: Path):
    directory = Path(tempfile.mkdtemp(dir=tmp_path))
    files, held = market_files(rng, index, directory)
    assert [t for f in files for t in binance_files.read_trades(f)] == held


def _scenario_run(rng: random.Random, intervals: str):
    s = stream_settings(intervals, idle=True)
    batch = scenarios.stream_scenarios(
        rng, 4, grace_us=10_000_000, lateness_us=s.allowed_lateness_us, longest_us=3_600_000_000
    )
    trades = scenarios.merged_arrival(batch)
    return trades, reference.stream_reference(trades, settings=s)


@settings(max_examples=300, deadline=None)
@given(rng=RANDOMS, intervals=st.sampled_from(["1m", "5m", "15m", "1h", "1m,5m,15m,1h"]))
def test_reference_conserves_generated_scenarios(rng: random.Random, intervals: str):
    trades, ref = _scenario_run(rng, intervals)
    p: checks.Problems = defaultdict(list)
    checks.conservation(ref.accepted, ref.final(), ref.late, intervals.split(","), p)
    checks.revisions_contiguous(ref.emissions, p)
    checks.compare_final(ref.final(), checks.final(reference.batch_candles([], intervals)), p)
    # compare_final against nothing reports every window as extra: the check can fail.
    assert set(p) == {(c.exchange, c.symbol) for c in ref.emissions}
    p.clear()
    checks.conservation(ref.accepted, ref.final(), ref.late, intervals.split(","), p)
    assert not p


@settings(max_examples=200, deadline=None)
@given(rng=RANDOMS, how=st.sampled_from(["lose", "twice", "both"]))
def test_conservation_check_catches_lost_double_and_both(rng: random.Random, how: str):
    trades, ref = _scenario_run(rng, "1m")
    finals = ref.final()
    late = list(ref.late)
    full = [k for k, c in finals.items() if c.trade_count]
    if how == "lose":  # the last window of a market is gone (issue 13)
        finals.pop(max(full))
    elif how == "twice":
        k = rng.choice(full)
        finals[k] = replace(finals[k], trade_count=finals[k].trade_count + 1)
    else:  # an accepted, counted trade also in the DLQ
        t = rng.choice([t for t in ref.accepted if not any(lt.trade == t for lt in late)])
        late.append(LateTrade(t, "1m", 0, reference.BEYOND_ALLOWED_LATENESS, 0))
    p: checks.Problems = defaultdict(list)
    checks.conservation(ref.accepted, finals, late, ["1m"], p)
    assert p
