"""CandleSettings refuses a dedup horizon that a correction could outlive."""

from __future__ import annotations

import pytest

from candleflow.config import CandleSettings
from candleflow.env_settings import SettingsError


def test_default_horizon_covers_the_longest_window():
    assert CandleSettings().dedup_ttl_seconds >= 3600 + 60 + 300


@pytest.mark.parametrize(
    ("intervals", "lateness", "ttl", "ok"),
    [
        ("1m", 300, 370, True),  # 60 + grace 10 + 300 = 370: exactly enough
        ("1m", 300, 369, False),
        ("1m,1h", 300, 3959, False),  # the 1h window (3600 + 60 + 300) decides
        ("1m,1h", 0, 3660, True),
    ],
)
def test_dedup_horizon_must_outlive_corrections(intervals, lateness, ttl, ok):
    kwargs = dict(intervals=intervals, allowed_lateness_seconds=lateness, dedup_ttl_seconds=ttl)
    if ok:
        assert CandleSettings(**kwargs).dedup_ttl_seconds == ttl
    else:
        with pytest.raises(SettingsError, match="CANDLEFLOW_CANDLES_DEDUP_TTL_SECONDS"):
            CandleSettings(**kwargs)
