"""`candleflow check` on what the real jobs publish: 20 minutes of the real COIN-M day, sent
out of order with duplicates, a correction and two trades for the DLQ, through Kafka -> the
candles job (candles.v1 + silver.candles, upserted with Flink's equality deletes) and the
bronze job (bronze.trades). Through Trino and embedded, the check finds exactly what the
semantics make of the DLQ'd trades, and nothing else: each is in bronze.trades but in no
candle, so its windows' volumes differ (and, where the trade sat between the window's first
and last ids, its trade count is short of the id span). Cost: two bounded Flink jobs,
about a minute on an idle machine.
"""

from __future__ import annotations

import pytest

from candleflow import reference
from candleflow.config import CandleSettings
from devstack.sample_data import COINM_DAY
from tests.check.test_check_lake import MINUTE, T0, Lake, run_check
from tests.check.test_invariants import real_trades
from tests.jobs.harness import run_bronze_on_stack, run_candles_on_stack
from tests.jobs.test_kafka_iceberg import produce

pytestmark = [
    pytest.mark.integration,
    pytest.mark.flink,
    pytest.mark.trino,
    pytest.mark.skipif(not COINM_DAY.exists(), reason="shared data not present"),
]

SETTINGS = CandleSettings(intervals="1m,5m", allowed_lateness_seconds=120)


def arrival(trades):
    """Exchange order, but trade 700 arrives 100 s late (a correction), trades 300 and 1100
    400 s late (the DLQ), and every 61st twice."""
    keyed = []
    for n, t in enumerate(trades):
        delay = {700: 100_000_000, 300: 400_000_000, 1100: 400_000_000}.get(n, 0)
        keyed.append((t.event_time_us + delay, n, t))
        if n % 61 == 7:
            keyed.append((t.event_time_us + 20_000_000, n, t))
    keyed.sort(key=lambda x: (x[0], x[1]))
    return [t for _, _, t in keyed]


def test_check_on_the_jobs_output_reports_exactly_the_dlq_windows(
    stack, unique_topic, unique_namespace, trino_server, tmp_path
):
    s = trino_server
    trades = list(real_trades())
    sent = arrival(trades)
    ref = reference.stream_reference(sent, settings=SETTINGS)
    assert ref.late and any(c.revision for c in ref.emissions)
    t_topic, c_topic, l_topic = unique_topic("trades"), unique_topic("candles"), unique_topic("l")
    produce(s, t_topic, sent)
    topics = (t_topic, c_topic, l_topic)
    run_candles_on_stack(s, topics, unique_namespace, SETTINGS, tmp_path / "ckpt-jobs.candles")
    run_bronze_on_stack(s, t_topic, unique_namespace, tmp_path / "ckpt-jobs.bronze")

    final = ref.final()
    want = set()
    for lt in ref.late:
        want.add(("volume", lt.interval, lt.window_start_us))
        c = final[("binance", "BTC-USD-PERP", lt.interval, lt.window_start_us)]
        if c.first_trade_id < lt.trade.first_trade_id <= c.last_trade_id:
            want.add(("trade_count", lt.interval, lt.window_start_us))
    assert len(want) >= 3
    assert all(T0 <= ws < T0 + 20 * MINUTE for _, _, ws in want)
    lake = Lake(s, unique_namespace, c_topic, trades, [])
    for via in ("trino", "embedded"):
        res = run_check(lake, via)
        assert res.exit_code == 1, (via, res.output)
        got = set()
        for line in res.output.splitlines():
            if ": binance BTC-USD-PERP " in line:
                invariant, rest = line.split(": binance BTC-USD-PERP ", 1)
                interval, _, window = rest.split(" ", 3)[:3]
                got.add((invariant, interval, window.rstrip(":")))
        assert got == {(i, iv, _iso(ws)) for i, iv, ws in want}, (via, res.output)


def _iso(us: int) -> str:
    from serving.check.invariants import us_to_iso

    return us_to_iso(us)
