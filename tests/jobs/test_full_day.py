"""The whole real COIN-M day through Kafka -> the candles job -> Kafka (exactly-once) + Iceberg:
every candle of every default interval, in both sinks, equals the batch reference on every
field; and the bronze job lands every trade once in bronze.trades, every field exact.
(Disorder, duplicates and lateness over two hours of the same day: test_kafka_iceberg.py.)"""

from __future__ import annotations

import pytest

from candleflow import binance_files, reference
from candleflow.config import CandleSettings
from devstack.sample_data import COINM_DAY
from tests.jobs.harness import iceberg_trades, run_bronze_on_stack, run_candles_on_stack
from tests.jobs.test_kafka_iceberg import consume_committed, iceberg_candles, produce

pytestmark = [pytest.mark.integration, pytest.mark.flink, pytest.mark.slow]

SETTINGS = CandleSettings()  # 1m, 5m, 15m, 1h


@pytest.mark.skipif(not COINM_DAY.exists(), reason="shared data not present")
def test_whole_day_through_kafka_to_kafka_and_iceberg(
    stack, unique_topic, unique_namespace, tmp_path
):
    s = stack.settings
    trades = list(binance_files.read_trades(COINM_DAY))
    assert len(trades) > 100_000
    want = {reference.candle_key(c): c for c in reference.batch_candles(trades, SETTINGS.intervals)}
    assert len(want) == 1440 + 288 + 96 + 24

    t_topic, c_topic, l_topic = unique_topic("day"), unique_topic("day-c"), unique_topic("day-l")
    produce(s, t_topic, trades)
    topics = (t_topic, c_topic, l_topic)
    run_candles_on_stack(
        s,
        topics,
        unique_namespace,
        SETTINGS,
        tmp_path / "ckpt",
        parallelism=2,
        checkpoint_interval_ms=5000,
    )

    # candles.v1: trades in exchange order, so each window exactly once, final.
    got = consume_committed(s, c_topic, "candle")
    assert len(got) == len(want), "a candle missing or written twice"
    assert {reference.candle_key(c): c for c in got} == want
    assert not consume_committed(s, l_topic, "late_trade")
    assert iceberg_candles(s, unique_namespace) == want
    run_bronze_on_stack(
        s,
        t_topic,
        unique_namespace,
        tmp_path / "ckpt-bronze",
        parallelism=2,
        checkpoint_interval_ms=5000,
    )
    landed = iceberg_trades(s, unique_namespace)
    assert sorted(landed, key=lambda t: t.trade_id) == sorted(trades, key=lambda t: t.trade_id)
    # Every raw trade of the day in exactly one candle per interval.
    for interval in ("1m", "5m", "15m", "1h"):
        assert sum(c.trade_count for c in got if c.interval == interval) == 240_198
