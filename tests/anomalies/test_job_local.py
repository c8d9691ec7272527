"""The anomalies job on a Flink MiniCluster (bounded files): same anomalies as the pure
detectors, at parallelism 1 and 2, and a replay of the same candles adds nothing."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from candleflow.anomaly_rules import RETRACTED, detect_all
from devstack.candle_series import candle, noisy_series
from tests.anomalies.flink_harness import normalise, run_job

pytestmark = pytest.mark.flink


def crafted():
    """Two exchanges; a volume spike, a correction that retracts it, a divergence."""
    a = noisy_series(80, exchange="binance", symbol="BTC-USD")
    b = noisy_series(80, exchange="coinbase", symbol="BTC-USD")
    a[70] = replace(a[70], volume=Decimal("40"))
    b[75] = replace(b[75], close=b[75].close * Decimal("1.01"), high=b[75].close * Decimal("1.011"))
    b[76] = candle(76, b[76].close, exchange="coinbase", symbol="BTC-USD")
    fix = replace(a[70], volume=Decimal("11"), revision=1)
    stream = [c for pair in zip(a, b, strict=True) for c in pair]
    return stream[:150] + [fix] + stream[150:]


def key(a):
    return (a.anomaly_id, a.status, a.rule, a.window_start_us)


@pytest.mark.parametrize("parallelism", [1, 2])
def test_job_matches_the_pure_detectors(parallelism):
    stream = crafted()
    expected = sorted(key(a) for a in detect_all(stream))
    statuses = sorted((r, s) for _, s, r, _ in expected)
    # volume spike then its retraction; coinbase's 1% spike: price move (its own series),
    # volatility (the wide candle), and the cross-exchange divergence at that window
    assert ("VOLUME_SPIKE", "ACTIVE") in statuses and ("VOLUME_SPIKE", RETRACTED) in statuses
    assert ("CROSS_EXCHANGE_DIVERGENCE", "ACTIVE") in statuses
    got = run_job(stream, parallelism=parallelism)
    assert sorted(key(a) for a in got) == expected
    by_id = {(a.anomaly_id, a.status): normalise(a) for a in detect_all(stream)}
    for a in got:
        assert normalise(a) == by_id[(a.anomaly_id, a.status)]


def test_replaying_the_same_candles_twice_adds_nothing():
    stream = crafted()
    once = sorted(key(a) for a in detect_all(stream))
    assert sorted(key(a) for a in run_job(stream + stream)) == once


def test_job_on_the_real_coinm_day_finds_the_expected_anomalies():
    """The 1m candles of the real COIN-M day through the job: the 19 anomalies of
    tests/anomalies/test_real_day.py (explained there), values and numbers included."""
    from devstack.candle_series import coinm_1m_candles
    from devstack.sample_data import COINM_DAY
    from tests.anomalies.test_real_day import EXPECTED, _minute

    if not COINM_DAY.exists():
        pytest.skip("real data not found")
    candles = coinm_1m_candles()
    got = sorted(run_job(candles, parallelism=2), key=lambda a: (a.window_start_us, a.rule))
    assert [(_minute(a.window_start_us), a.rule, a.severity, a.value) for a in got] == EXPECTED
    pure = {a.anomaly_id: normalise(a) for a in detect_all(candles)}
    assert [normalise(a) for a in got] == [pure[a.anomaly_id] for a in got]
