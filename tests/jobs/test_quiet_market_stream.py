"""The streaming job (Kafka, unbounded) finalises the last window of a market that went quiet
for good, with a single interval configured.

The quiet market's only trade arrives after the global watermark has passed its window's
idle-flush deadline (a lagging market). Flink 2.1's PTF timer service silently ignores a timer
at or below the watermark, and the operator used to record such a timer as armed: the
market's window then waited for a timer that never fired, in the stream and at the end of a
bounded run alike (issue 13: the backfill's last 1m window). Its candle must appear during the
run, at the next watermark.
"""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from candleflow.config import CandleSettings
from candleflow.domain import Side, Trade
from jobs.candles import run
from tests.jobs.harness import job_config_for, stack_table_env
from tests.jobs.test_kafka_iceberg import consume_committed, produce

pytestmark = [pytest.mark.integration, pytest.mark.flink]

T0 = 1_778_198_400_000_000
SETTINGS = CandleSettings(intervals="1m", grace_seconds={"1m": 10}, idle_flush_delay_seconds=60)


def _trade(symbol: str, n: int, at_s: float) -> Trade:
    us = T0 + int(at_s * 1_000_000)
    return Trade(
        "binance",
        symbol,
        symbol.replace("-", ""),
        n,
        Decimal("100"),
        Decimal("1"),
        Side.BUY,
        us,
        us,
    )


def _wait_for(settings, topic, done, timeout_s: float) -> list:
    deadline = time.monotonic() + timeout_s
    while True:
        got = consume_committed(settings, topic, "candle")
        if done(got) or time.monotonic() > deadline:
            return got
        time.sleep(2)


def test_quiet_lagging_market_single_interval_is_flushed_in_stream(
    stack, unique_topic, unique_namespace, tmp_path
):
    s = stack.settings
    # One partition: both markets share it, so the watermark is simply the newest trade time.
    t_topic, c_topic, l_topic = unique_topic("quiet"), unique_topic("quiet-c"), unique_topic("q-l")
    config = job_config_for(s, t_topic, c_topic, l_topic, unique_namespace, SETTINGS, bounded=False)
    t_env = stack_table_env(s, tmp_path / "ckpt", checkpoint_interval_ms=1000)
    busy = [_trade("B-USD", n, 2 * n) for n in range(300)]  # 0:00 .. 9:58
    produce(s, t_topic, busy)
    job = run(t_env, config).get_job_client()
    assert job is not None
    try:
        # The busy market's clock and the watermark are at ~10:00 once its 0:08 window is out.
        got = _wait_for(s, c_topic, lambda c: len(c) >= 8, 240)
        assert len(got) >= 8, f"the job emitted {len(got)} candles in 240 s"
        # The quiet market trades once, at 0:05, then never again: its window's flush deadline
        # (0:01 + 10 s grace + 60 s idle) is far behind the watermark when the trade arrives.
        produce(s, t_topic, [_trade("Q-USD", 1, 5)])
        produce(s, t_topic, [_trade("B-USD", n, 2 * n) for n in range(300, 600)])  # to 19:58

        def quiet_out(candles):
            return [c for c in candles if c.symbol == "Q-USD"]

        got = _wait_for(s, c_topic, lambda c: quiet_out(c), 120)
    finally:
        job.cancel().result()
    q = quiet_out(got)
    assert [(c.interval, c.window_start_us, c.trade_count, c.revision) for c in q] == [
        ("1m", T0, 1, 0)
    ], "the quiet market's only window was never finalised"
    assert not consume_committed(s, l_topic, "late_trade")
