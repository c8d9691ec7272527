"""Property: whatever the arrival order (within the correction horizon) and whatever
revisions a window goes through, the anomalies that end ACTIVE are those of the final
candles processed in event-time order."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from candleflow.anomaly_rules import active_after, detect_all
from devstack.candle_series import noisy_series

N = 70  # below the retention (76 windows), so no window is pruned: every value counts


def base_series():
    a = noisy_series(N, exchange="binance", symbol="BTC-USD")
    b = noisy_series(N, exchange="coinbase", symbol="BTC-USD")
    return a, b


@st.composite
def histories(draw):
    """Final candles with some spikes, earlier wrong revisions, and a shuffled arrival."""
    a, b = base_series()
    for series in (a, b):
        for i in draw(st.lists(st.integers(21, N - 1), max_size=4, unique=True)):
            kind = draw(st.sampled_from(["volume", "range", "step", "empty"]))
            c = series[i]
            if kind == "volume":
                series[i] = replace(c, volume=Decimal(draw(st.integers(30, 90))))
            elif kind == "range":
                series[i] = replace(c, low=c.close * Decimal("0.985"))
            elif kind == "step":
                f = Decimal("1.01")
                series[i:] = [
                    replace(x, open=x.open * f, high=x.high * f, low=x.low * f, close=x.close * f)
                    for x in series[i:]
                ]
            else:
                series[i] = replace(c, volume=Decimal(0), is_empty=True, high=c.close, low=c.close)
    finals = a + b
    # earlier revisions: a window first arrives wrong (revision 0), then corrected
    arrivals = []
    corrected = set(draw(st.lists(st.integers(0, len(finals) - 1), max_size=8, unique=True)))
    for n, c in enumerate(finals):
        if n in corrected:
            wrong = replace(
                c,
                volume=c.volume * 5 + 1,
                close=c.close * Decimal("0.99"),
                revision=0,
                is_empty=False,
            )
            arrivals.append((n, wrong))
            arrivals.append((n + draw(st.integers(0, 6)) + 0.5, replace(c, revision=1)))
        else:
            arrivals.append((n, c))
    # local disorder: each candle may arrive up to 8 positions late
    keyed = [(pos + draw(st.integers(0, 8)), i, c) for i, (pos, c) in enumerate(arrivals)]
    keyed.sort(key=lambda t: (t[0], t[1]))
    # (a correction may even overtake its wrong revision 0: the lower revision is ignored)
    return finals, [c for _, _, c in keyed]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_final_anomalies_do_not_depend_on_arrival(history):
    finals, arrivals = history
    expected = {k: (a.rule, a.window_start_us) for k, a in active_after(detect_all(finals)).items()}
    got = {k: (a.rule, a.window_start_us) for k, a in active_after(detect_all(arrivals)).items()}
    assert got == expected


def final_state(candles):
    """Per series: every window held, re-evaluated on the final state (rule -> value)."""
    from candleflow.anomaly_rules import DetectorConfig, SeriesDetector

    cfg = DetectorConfig()
    dets: dict[tuple[str, str, str], SeriesDetector] = {}
    for c in candles:
        key = (c.exchange, c.symbol, c.interval)
        dets.setdefault(key, SeriesDetector(*key, cfg)).update(c)
    return {
        (key, ws): {r: a.value for r, a in det.evaluate(ws).items()}
        for key, det in dets.items()
        for ws in det.points
    }


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_final_statistics_do_not_depend_on_arrival(history):
    """Stronger: the numbers too (baselines hold the same windows whatever the order)."""
    finals, arrivals = history
    assert final_state(arrivals) == final_state(finals)
