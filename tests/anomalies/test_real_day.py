"""The detectors on the real Binance COIN-M BTCUSD_PERP day (2026-05-08), 1m candles.

With the default configuration (baseline 60 windows, z >= 6, HIGH from z >= 10, price
move also >= 0.2%, gap >= 3 empty minutes) the day yields the 19 anomalies below, all
ACTIVE and none retracted (no corrections in a batch of final candles). What they are:

- 02:01-02:17: a sell-off from ~79,670 to ~79,300 in three bursts. 02:01 trades 8.5x the
  hour's average volume with a 0.21% range (6x normal); 02:07 another 11.8x burst; at
  02:17 the biggest: 99,028 contracts (37x the average), a 0.27% range and a -0.22% close
  that is 6.8 z-scores beyond the typical absolute 1m return (PRICE_MOVE).
- 05:47 and 06:00: a quiet early-European session broken by an 18x volume minute with a
  0.14% range, then a 0.18% range minute at the 06:00 hour turn.
- 12:30: 12:30 UTC is 08:30 New York, when US macro data is released: the day's widest
  minute (0.42%, 21 z-scores, HIGH) on 23x volume; the close ends near the low, so the
  close-to-close return (0.17%) stays under the 0.2% gate and no PRICE_MOVE fires.
- 14:18: the largest volume of the day (200,425 contracts, 35x, z = 38.5) and a +0.38%
  jump from 80,005.9 to 80,312 (PRICE_MOVE z = 9.4, VOLATILITY_SPIKE HIGH).
- 17:30, 17:36, 18:00: range spikes at the half-hour/hour turn and a 14.7x volume minute.
- 19:59 and 22:01: volume bursts of 9-10x in thin hours (22:01's baseline has 59 non-empty
  minutes: one of the day's 3 empty minutes lies inside it).
- No GAP: the 3 empty minutes of the day are isolated, never 3 in a row.
- No CROSS_EXCHANGE_DIVERGENCE: one exchange only.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from candleflow.anomaly_rules import ACTIVE, active_after, detect_all
from devstack.candle_series import coinm_1m_candles
from devstack.sample_data import COINM_DAY

EXPECTED = [  # (UTC minute, rule, severity, value)
    ("02:01", "VOLATILITY_SPIKE", "MEDIUM", 7.705647),
    ("02:01", "VOLUME_SPIKE", "MEDIUM", 6.285231),
    ("02:07", "VOLUME_SPIKE", "MEDIUM", 8.194022),
    ("02:17", "PRICE_MOVE", "MEDIUM", 6.79044),
    ("02:17", "VOLATILITY_SPIKE", "MEDIUM", 6.98825),
    ("02:17", "VOLUME_SPIKE", "HIGH", 21.029299),
    ("05:47", "VOLATILITY_SPIKE", "MEDIUM", 7.073252),
    ("05:47", "VOLUME_SPIKE", "MEDIUM", 9.786798),
    ("06:00", "VOLATILITY_SPIKE", "MEDIUM", 6.348765),
    ("12:30", "VOLATILITY_SPIKE", "HIGH", 21.025467),
    ("12:30", "VOLUME_SPIKE", "HIGH", 20.391512),
    ("14:18", "PRICE_MOVE", "MEDIUM", 9.377327),
    ("14:18", "VOLATILITY_SPIKE", "HIGH", 10.955949),
    ("14:18", "VOLUME_SPIKE", "HIGH", 38.512178),
    ("17:30", "VOLATILITY_SPIKE", "MEDIUM", 6.010264),
    ("17:36", "VOLUME_SPIKE", "HIGH", 12.402638),
    ("18:00", "VOLATILITY_SPIKE", "MEDIUM", 6.708024),
    ("19:59", "VOLUME_SPIKE", "MEDIUM", 6.818993),
    ("22:01", "VOLUME_SPIKE", "MEDIUM", 6.789486),
]


@pytest.fixture(scope="module")
def candles():
    if not COINM_DAY.exists():
        pytest.skip(f"real data not found: {COINM_DAY}")
    return coinm_1m_candles()


def _minute(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).strftime("%H:%M")


def test_real_coinm_day_anomalies(candles):
    assert len(candles) == 1440 and sum(c.is_empty for c in candles) == 3
    events = detect_all(candles)
    got = [(_minute(a.window_start_us), a.rule, a.severity, a.value) for a in events]
    assert got == EXPECTED
    assert {a.status for a in events} == {ACTIVE}
    assert {(a.exchange, a.symbol, a.interval) for a in events} == {
        ("binance", "BTC-USD-PERP", "1m")
    }
    big = next(
        a for a in events if a.rule == "VOLUME_SPIKE" and _minute(a.window_start_us) == "14:18"
    )
    assert big.details["volume"] == "200425"
    jump = next(
        a for a in events if a.rule == "PRICE_MOVE" and _minute(a.window_start_us) == "14:18"
    )
    assert (jump.details["previous_close"], jump.details["close"]) == ("80005.9", "80312")


def test_real_day_replayed_twice_gives_the_same_anomalies(candles):
    once = detect_all(candles)
    assert detect_all(candles + candles) == once
    assert set(active_after(once)) == {a.anomaly_id for a in once}
