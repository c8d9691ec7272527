"""Detector rules on crafted series: each rule fires exactly where expected and nowhere else."""

from __future__ import annotations

import hashlib
import random
from dataclasses import replace
from decimal import Decimal

from candleflow.anomaly_rules import (
    ACTIVE,
    ALL_EXCHANGES,
    RETRACTED,
    DetectorConfig,
    DivergenceDetector,
    SeriesDetector,
    active_after,
    anomaly_id,
    detect_all,
)
from devstack.candle_series import MINUTE_US, T0, candle, noisy_series

CFG = DetectorConfig()


def fired(events) -> list[tuple[str, int, str]]:
    """(rule, window index, status) of each event, in emission order."""
    return [(a.rule, (a.window_start_us - T0) // MINUTE_US, a.status) for a in events]


def scale(c, factor: str):
    f = Decimal(factor)
    return replace(c, open=c.open * f, high=c.high * f, low=c.low * f, close=c.close * f)


def test_calm_series_fires_nothing():
    assert detect_all(noisy_series(200)) == []


def test_anomaly_id_is_a_hash_of_rule_market_interval_window():
    expected = hashlib.sha256(f"VOLUME_SPIKE|binance|BTC-USDT|1m|{T0}".encode()).hexdigest()[:32]
    assert anomaly_id("VOLUME_SPIKE", "binance", "BTC-USDT", "1m", T0) == expected
    assert anomaly_id("VOLUME_SPIKE", "binance", "BTC-USDT", "5m", T0) != expected


def test_volume_spike_fires_only_at_the_spike():
    series = noisy_series(90)
    series[70] = replace(series[70], volume=Decimal("40"))
    events = detect_all(series)
    assert fired(events) == [("VOLUME_SPIKE", 70, ACTIVE)]
    a = events[0]
    ws = T0 + 70 * MINUTE_US
    assert a.anomaly_id == anomaly_id("VOLUME_SPIKE", "binance", "BTC-USDT", "1m", ws)
    # baseline: windows 10..69 (60), volumes cycle 10,12,9,11,13,8,10,12,9,11 -> mean 10.5
    assert a.details["mean_volume"] == "10.5"
    assert a.details["samples"] == "60"
    assert a.details["ratio"] == repr(round(40 / 10.5, 6))
    assert a.severity == "HIGH"  # z = (40 - 10.5) / 1.5 = 19.7 >= 10
    assert a.value == round((40 - 10.5) / 1.5, 6)


def test_no_z_score_rule_before_min_samples():
    series = noisy_series(90)
    series[10] = replace(series[10], volume=Decimal("400"))  # only 10 candles of baseline
    assert detect_all(series) == []
    lower = DetectorConfig(min_samples=10)
    assert fired(detect_all(series, lower)) == [("VOLUME_SPIKE", 10, ACTIVE)]


def test_price_move_needs_both_z_score_and_percent():
    big = noisy_series(90)
    big[70:] = [scale(c, "1.01") for c in big[70:]]  # a 1% step, ranges unchanged
    events = detect_all(big)
    assert fired(events) == [("PRICE_MOVE", 70, ACTIVE)]
    assert Decimal(events[0].details["pct_change"]) > Decimal("0.9")
    small = noisy_series(90)
    # +0.2% on a -0.05% wiggle: a 0.15% move, z = 7.3 >= 6 but 0.15% < 0.2%
    small[70:] = [scale(c, "1.002") for c in small[70:]]
    assert detect_all(small) == []
    lower = detect_all(small, DetectorConfig(price_pct=0.1))
    assert fired(lower) == [("PRICE_MOVE", 70, ACTIVE)]
    assert lower[0].value == 7.345929 and lower[0].details["pct_change"] == "0.14991"


def test_volatility_spike_fires_only_at_the_wide_candle():
    series = noisy_series(90)
    c = series[70]
    series[70] = replace(c, low=c.close * Decimal("0.99"))
    assert fired(detect_all(series)) == [("VOLATILITY_SPIKE", 70, ACTIVE)]


def test_gap_fires_once_when_the_empty_run_reaches_the_threshold():
    series = noisy_series(90)
    for i in (40, 41):  # a run of 2: below the threshold of 3
        series[i] = candle(i, series[39].close, empty=True)
    for i in range(70, 75):  # a run of 5: fires at the third empty window only
        series[i] = candle(i, series[69].close, empty=True)
    events = detect_all(series)
    assert fired(events) == [("GAP", 72, ACTIVE)]
    assert events[0].details["empty_windows"] == "3"
    assert events[0].details["run_start_us"] == str(T0 + 70 * MINUTE_US)


def test_correction_that_undoes_the_anomaly_retracts_it_with_the_same_id():
    det = SeriesDetector("binance", "BTC-USDT", "1m", CFG)
    series = noisy_series(80)
    spike = replace(series[70], volume=Decimal("40"))
    events = [e for c in series[:70] + [spike] + series[71:] for e in det.update(c)]
    assert fired(events) == [("VOLUME_SPIKE", 70, ACTIVE)]
    still = replace(spike, volume=Decimal("50"), revision=1)  # still a spike: nothing new
    assert det.update(still) == []
    undone = replace(series[70], revision=2)
    retraction = det.update(undone)
    assert fired(retraction) == [("VOLUME_SPIKE", 70, RETRACTED)]
    assert retraction[0].anomaly_id == events[0].anomaly_id
    assert retraction[0].candle_revision == 2
    assert det.update(undone) == []  # the same revision again is a no-op
    assert det.update(replace(spike, revision=1)) == []  # an older revision is ignored


def test_correction_re_evaluates_later_windows():
    det = SeriesDetector("binance", "BTC-USDT", "1m", CFG)
    series = noisy_series(80)
    assert [e for c in series for e in det.update(c)] == []
    # window 70's close was wrong by +1%: its return and window 71's return both jump
    fixed = replace(scale(series[70], "1.01"), high=series[70].high * Decimal("1.01"), revision=1)
    assert fired(det.update(fixed)) == [("PRICE_MOVE", 70, ACTIVE), ("PRICE_MOVE", 71, ACTIVE)]


def test_replaying_the_same_candles_emits_nothing_more():
    series = noisy_series(90)
    series[70] = replace(series[70], volume=Decimal("40"))
    once = detect_all(series)
    twice = detect_all(series + series)
    assert twice == once


def test_result_depends_on_event_time_not_arrival_order():
    series = noisy_series(120)
    series[70] = replace(series[70], volume=Decimal("40"))
    series[90:] = [scale(c, "1.01") for c in series[90:]]
    series[100] = replace(series[100], low=series[100].close * Decimal("0.99"))
    expected = {k: (a.rule, a.window_start_us) for k, a in active_after(detect_all(series)).items()}
    assert sorted(expected.values()) == [
        ("PRICE_MOVE", T0 + 90 * MINUTE_US),
        ("VOLATILITY_SPIKE", T0 + 100 * MINUTE_US),
        ("VOLUME_SPIKE", T0 + 70 * MINUTE_US),
    ]
    for seed in range(5):
        rng = random.Random(seed)
        shuffled = list(series[:1])
        rest = series[1:]
        while rest:  # locally out of order: blocks of up to 8 arrive shuffled
            size = rng.randint(1, 8)
            block, rest = rest[:size], rest[size:]
            rng.shuffle(block)
            shuffled.extend(block)
        final = active_after(detect_all(shuffled))
        got = {k: (a.rule, a.window_start_us) for k, a in final.items()}
        assert got == expected, seed


def test_divergence_fires_once_per_window_and_retracts():
    cfg = CFG
    det = DivergenceDetector("BTC-USD", "1m", cfg)
    out = []
    for i in range(5):
        out += det.update(candle(i, "100", exchange="binance", symbol="BTC-USD"))
        out += det.update(candle(i, "100.1", exchange="coinbase", symbol="BTC-USD"))  # 10 bps
    assert out == []
    first = det.update(candle(5, "100", exchange="binance", symbol="BTC-USD"))
    assert first == []  # one exchange alone: nothing to compare
    hit = det.update(candle(5, "101", exchange="coinbase", symbol="BTC-USD"))  # ~99.5 bps
    assert [(a.rule, a.exchange, a.status) for a in hit] == [
        ("CROSS_EXCHANGE_DIVERGENCE", ALL_EXCHANGES, ACTIVE)
    ]
    a = hit[0]
    assert a.details["high_exchange"] == "coinbase" and a.details["low_exchange"] == "binance"
    assert a.value == round(float(Decimal(1) / Decimal("100.5") * 10_000), 6)
    assert a.anomaly_id == anomaly_id(
        "CROSS_EXCHANGE_DIVERGENCE", "*", "BTC-USD", "1m", T0 + 5 * MINUTE_US
    )
    # a third exchange in the same window: still diverging, no second record
    assert det.update(candle(5, "100.2", exchange="kraken", symbol="BTC-USD")) == []
    # an empty candle's close is stale, so it never counts
    assert det.update(candle(6, "100", exchange="binance", symbol="BTC-USD")) == []
    assert det.update(candle(6, "105", exchange="coinbase", symbol="BTC-USD", empty=True)) == []
    # coinbase's correction brings window 5 back in line: retracted, same id
    back = det.update(candle(5, "100.1", exchange="coinbase", symbol="BTC-USD", revision=1))
    assert [(b.anomaly_id, b.status) for b in back] == [(a.anomaly_id, RETRACTED)]


def test_divergence_only_compares_the_same_symbol():
    events = detect_all(
        [candle(i, "100", exchange="binance", symbol="BTC-USDT") for i in range(3)]
        + [candle(i, "103", exchange="coinbase", symbol="BTC-USD") for i in range(3)]
    )
    assert events == []


def test_state_survives_a_pickle_round_trip_mid_stream():
    """Flink keeps each detector pickled in keyed state: a restore mid-stream (config set
    again by the owner) continues exactly like an uninterrupted run."""
    import pickle

    a = noisy_series(100, exchange="binance", symbol="BTC-USD")
    b = noisy_series(100, exchange="coinbase", symbol="BTC-USD")
    fix = replace(a[70], revision=1)  # the spike below turns out to be a bad print
    a[70] = replace(a[70], volume=Decimal("40"))
    b[80] = replace(b[80], close=b[80].close * Decimal("1.01"), high=b[80].high * Decimal("1.02"))
    stream = a[:90] + b + [fix] + a[90:]
    expected = detect_all(stream)
    series = SeriesDetector("binance", "BTC-USD", "1m", CFG)
    cross = DivergenceDetector("BTC-USD", "1m", CFG)
    other = SeriesDetector("coinbase", "BTC-USD", "1m", CFG)
    got = []
    for n, c in enumerate(stream):
        if n % 7 == 0:  # restore from state every few candles
            series, cross, other = (pickle.loads(pickle.dumps(d)) for d in (series, cross, other))
            for d in (series, cross, other):
                assert d.config is None
                d.config = CFG
        got += (series if c.exchange == "binance" else other).update(c)
        got += cross.update(c)
    assert got == expected
    assert ("VOLUME_SPIKE", RETRACTED) in [(x.rule, x.status) for x in got]
