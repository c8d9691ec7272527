"""Dedup memory of the real jobs: ids across bitmap boundaries, and the dedup horizon.

The candles job keeps a market's trade ids as bitmaps of 4,096 ids (udfs SeenIds) and forgets
a bitmap once its newest trade is older than the dedup horizon (event time). Within the
horizon a re-sent id is dropped wherever it falls; after it, a re-sent old trade is no longer
recognised, but being far beyond the allowed lateness it lands in the DLQ instead of any
candle. The bronze job remembers ids for the horizon in processing time (docs/semantics.md,
"Bronze"), so within one run it lands every id once, the old replay included.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from decimal import Decimal

import pytest

from candleflow import reference
from candleflow.config import CandleSettings
from candleflow.domain import Side, Trade
from tests.jobs.harness import run_bronze, run_job

pytestmark = pytest.mark.flink

T0 = 1_778_198_400_000_000  # 2026-05-08 00:00 UTC
SETTINGS = CandleSettings(
    intervals="1m,5m",
    grace_seconds={"1m": 10, "5m": 30},
    allowed_lateness_seconds=120,
    dedup_ttl_seconds=600,
    idle_flush_delay_seconds=10 * 86400,
)
# Ids around a bitmap boundary, a large one, and a dense run.
IDS = [4_094, 4_095, 4_096, 4_097, 8_191, 8_192, 10_000_000_000, *range(20_000, 20_040)]


def trade(trade_id: int, second: int) -> Trade:
    us = T0 + second * 1_000_000
    return Trade(
        exchange="binance",
        symbol="BTC-USDT",
        native_symbol="BTCUSDT",
        trade_id=trade_id,
        price=Decimal("100") + Decimal(trade_id % 7),
        quantity=Decimal("0.5"),
        side=Side.BUY if trade_id % 2 else Side.SELL,
        event_time_us=us,
        ingest_time_us=us,
    )


def test_duplicates_within_horizon_dropped_after_it_dlq(tmp_path):
    # Ids in increasing time, 20 s apart over ~16 minutes (beyond the 600 s horizon + the
    # prune cadence of horizon/4), each re-sent 5 s later; then the first trade once more.
    first = [trade(i, 20 * n) for n, i in enumerate(IDS)]
    arrivals: list[Trade] = []
    for t in first:
        arrivals.append(t)
        arrivals.append(replace(t, ingest_time_us=t.ingest_time_us + 5_000_000))
    replay = first[0]
    arrivals.append(replay)

    out = run_job(arrivals, SETTINGS, workdir=tmp_path)
    landed = run_bronze(
        arrivals, dedup_ttl_s=SETTINGS.dedup_ttl_seconds, parallelism=2, workdir=tmp_path
    )

    # Bronze: each id once, the first copy (the replay came seconds later in processing time).
    assert Counter(t.trade_id for t in landed) == Counter(IDS)
    assert sorted(landed, key=lambda t: t.trade_id) == sorted(first, key=lambda t: t.trade_id)
    # The forgotten replay is far too late: one DLQ row per interval, nothing else.
    assert sorted((lt.trade.trade_id, lt.interval) for lt in out.late) == [
        (replay.trade_id, "1m"),
        (replay.trade_id, "5m"),
    ]
    # Candles: exactly those of the trades without duplicates.
    ref = reference.stream_reference(first, settings=SETTINGS)
    assert out.final() == ref.final()
