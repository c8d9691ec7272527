"""The grace is per interval, checked at its edges on the real job: a trade can be too late
for its 1m window and still correct its 5m window (the dedup horizon: tests/jobs/test_dedup.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from candleflow import reference
from candleflow.config import CandleSettings
from candleflow.domain import Side, Trade
from tests.jobs.harness import run_job

pytestmark = pytest.mark.flink

T0 = 1_778_198_400_000_000
S = 1_000_000


def _trade(n: int, at_s: float, price: str = "100", qty: str = "1") -> Trade:
    us = T0 + int(at_s * S)
    return Trade("binance", "X-USD", "XUSD", n, Decimal(price), Decimal(qty), Side.BUY, us, us)


def _late(out) -> list[tuple[int, str, int]]:
    return sorted((lt.trade.trade_id, lt.interval, lt.window_start_us) for lt in out.late)


def test_grace_is_per_interval(tmp_path):
    settings = CandleSettings(
        intervals="1m,5m", grace_seconds={"1m": 10, "5m": 30}, allowed_lateness_seconds=60
    )
    # Late for a window when the market clock before the trade >= end + grace + lateness:
    # 1m [0, 60): 130 s; 5m [0, 300): 390 s (it would be 370 s with the 1m grace, and the
    # 1m window would accept until 150 s with the 5m grace).
    ticks = [_trade(n, 10 + 20 * n) for n in range(35)]  # 10 s, 30 s, ... 690 s
    y = _trade(100, 55, price="95")  # arrives at clock 130: late for 1m only
    x = _trade(101, 50.5, price="90")  # arrives at clock 370: late for 1m only
    arrival = ticks[:7] + [y] + ticks[7:19] + [x] + ticks[19:]
    assert (ticks[6].event_time_us, ticks[18].event_time_us) == (T0 + 130 * S, T0 + 370 * S)

    out = run_job(arrival, settings, parallelism=1, workdir=tmp_path)
    ref = reference.stream_reference(arrival, settings=settings)
    assert out.final() == ref.final()
    assert _late(out) == _late(ref) == [(100, "1m", T0), (101, "1m", T0)]
    five = out.final()[("binance", "X-USD", "5m", T0)]
    # Both corrected the emitted 5m window (revision 1 from x, after its emission at 330 s).
    assert (five.low, five.trade_count, five.revision) == (Decimal("90"), 17, 1)
    one = out.final()[("binance", "X-USD", "1m", T0)]
    assert (one.low, one.trade_count, one.revision) == (Decimal("100"), 3, 0)
