"""An idle market's pending windows are finalised by the global watermark during the run,
without empty windows past its own clock and without holding back a busy market."""

from __future__ import annotations

from decimal import Decimal

import pytest

from candleflow import reference
from candleflow.config import CandleSettings
from candleflow.domain import Side, Trade
from tests.jobs.harness import run_job

pytestmark = pytest.mark.flink

T0 = 1_778_198_400_000_000
SETTINGS = CandleSettings(
    intervals="1m,5m", grace_seconds={"1m": 10, "5m": 30}, idle_flush_delay_seconds=60
)


def _trade(symbol: str, n: int, at_s: float, price: str) -> Trade:
    us = T0 + int(at_s * 1_000_000)
    return Trade(
        "binance",
        symbol,
        symbol.replace("-", ""),
        n,
        Decimal(price),
        Decimal("1"),
        Side.BUY,
        us,
        us,
    )


def test_quiet_market_flushed_by_watermark(tmp_path):
    quiet = [_trade("Q-USD", n, 5 + 10 * n, "10") for n in range(5)]  # 0:05 .. 0:45
    busy = [_trade("B-USD", n, 2 * n, str(100 + n % 5)) for n in range(900)]  # 0:00 .. 29:58
    trades = sorted(quiet + busy, key=lambda t: t.event_time_us)
    out = run_job(trades, SETTINGS, parallelism=1, workdir=tmp_path)

    ref = reference.stream_reference(trades, settings=SETTINGS)
    assert out.final() == ref.final()
    q = [c for c in out.candles if c.symbol == "Q-USD"]
    # One 1m and one 5m candle, both final, no empty windows after the market went quiet.
    assert sorted((c.interval, c.window_start_us, c.revision, c.is_empty) for c in q) == [
        ("1m", T0, 0, False),
        ("5m", T0, 0, False),
    ]
    # Emitted during the run (file order = emission order at parallelism 1): long before the
    # busy market's last candles, i.e. not only by the end-of-input flush.
    position = {id(c): n for n, c in enumerate(out.candles)}
    last_busy = max(position[id(c)] for c in out.candles if c.symbol == "B-USD")
    assert max(position[id(c)] for c in q) < last_busy - 20
