"""Property tests: the real candles job (Java PTF on a MiniCluster) and the real bronze job
against the reference.

Each hypothesis example is a batch of independent markets in one Flink run (a run costs
tens of seconds), at parallelism 1 and 2. Idle flushes are disabled here (a huge delay) so
every emission, revisions included, is deterministic and compared exactly.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings

from candleflow import reference
from candleflow.config import CandleSettings
from tests.jobs.harness import run_bronze, run_job
from tests.jobs.strategies import scenario

pytestmark = pytest.mark.flink

SETTINGS = CandleSettings(
    intervals="1m,5m",
    grace_seconds={"1m": 10, "5m": 30},
    allowed_lateness_seconds=120,
    idle_flush_delay_seconds=10 * 86400,
)


def _window(c):
    return (c.exchange, c.symbol, c.interval, c.window_start_us)


def _late_key(lt):
    t = lt.trade
    return (t.exchange, t.symbol, t.trade_id, lt.interval, lt.window_start_us, lt.watermark_us)


def check(trades, out, landed, ref) -> None:
    # Every emission, revisions included (emission order across windows may differ).
    got = Counter((_window(c), c) for c in out.candles)
    want = Counter((_window(c), c) for c in ref.emissions)
    assert got == want, (
        f"missing {list((want - got).elements())[:5]}\nextra {list((got - want).elements())[:5]}"
    )
    # The last revision per window equals the batch aggregation of the accepted trades
    # minus the DLQ (the reference's own invariant, checked on the job's output).
    assert out.final() == ref.final()
    # DLQ: exactly the trades the rule calls late, with interval, window and clock.
    assert sorted(map(_late_key, out.late)) == sorted(map(_late_key, ref.late))
    # Bronze (the bronze job): every accepted trade once, nothing else, the first copy.
    assert sorted(landed, key=lambda t: (t.exchange, t.symbol, t.trade_id)) == sorted(
        ref.accepted, key=lambda t: (t.exchange, t.symbol, t.trade_id)
    )
    # Conservation, per market and interval: counted in a final candle xor in the DLQ.
    counted = defaultdict(int)
    for c in out.final().values():
        counted[(c.exchange, c.symbol, c.interval)] += c.trade_count
    for lt in out.late:
        counted[(lt.trade.exchange, lt.trade.symbol, lt.interval)] += lt.trade.trade_count
    accepted = defaultdict(int)
    for t in ref.accepted:
        for iv in ("1m", "5m"):
            accepted[(t.exchange, t.symbol, iv)] += t.trade_count
    assert counted == accepted


@pytest.mark.parametrize("parallelism", [1, 2])
@settings(
    max_examples=1, deadline=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck)
)
@given(trades=scenario(markets=10))
def test_job_equals_reference(parallelism, trades, tmp_path_factory):
    ref = reference.stream_reference(trades, settings=SETTINGS)
    # Only examples that exercise the DLQ, corrections and duplicates are worth a Flink run.
    assume(ref.late and ref.duplicates and any(c.revision > 0 for c in ref.emissions))
    out = run_job(
        trades,
        SETTINGS,
        parallelism=parallelism,
        workdir=tmp_path_factory.mktemp(f"prop-p{parallelism}"),
    )
    landed = run_bronze(
        trades,
        dedup_ttl_s=SETTINGS.dedup_ttl_seconds,
        parallelism=parallelism,
        workdir=tmp_path_factory.mktemp(f"prop-bronze-p{parallelism}"),
    )
    check(trades, out, landed, ref)
