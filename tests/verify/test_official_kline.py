"""End to end against the exchange: the shipped official Binance trades of 2025-01-01 00:00
(µs times, a file name that is not a data.binance.vision name) go through Candleflow's own
candle path (ingest replay -> trades topic -> the candles job -> candles.v1 exactly-once and
Iceberg silver.candles) and are reconciled (verify.reconcile) with that minute's official
kline: every field equal, in both sinks.

The one-trade change runs in the same job (one Flink start, not two): a twin market
binance:BTC-USDC carries the same trades with one trade's price moved by one tick, and is
reconciled against the same official kline. It must fail, naming the window and the one
field that trade changes (quote volume). Cost: one bounded candles job, ~40 s."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from rich.console import Console

from adapters import catalog
from candleflow import binance_files
from candleflow.config import CandleSettings
from candleflow.domain import KLINE_FIELDS, Candle, Side, Trade
from ingest.producer import TradeProducer
from ingest.replay import replay
from tests.jobs.harness import run_candles_on_stack
from tests.jobs.test_kafka_iceberg import consume_committed
from tests.verify.markets import SPOT_KLINE, SPOT_MINUTE
from verify.reconcile import compare, print_report, read_candles_iceberg

pytestmark = [
    pytest.mark.integration,
    pytest.mark.flink,
    pytest.mark.skipif(not SPOT_MINUTE.exists(), reason="shared data not present"),
]

WINDOW_US = 1735689600_000000  # 2025-01-01 00:00:00 UTC
TWIN = "BTC-USDC"


def _values(c: Candle) -> dict[str, Decimal | int]:
    return {f: getattr(c, f) for f in KLINE_FIELDS}


def one_trade_changed(trades: list[Trade]) -> tuple[list[Trade], Trade]:
    """The trades as the twin market, one taker-sell trade strictly inside (low, high) and
    neither first nor last moved up one tick: only the quote volume can differ."""
    prices = [t.price for t in trades]
    low, high = min(prices), max(prices)
    i, t = next(
        (i, t)
        for i, t in enumerate(trades[1:-1], start=1)
        if t.side is Side.SELL and low < t.price + Decimal("0.01") < high
    )
    twin = [dataclasses.replace(x, symbol=TWIN, native_symbol="BTCUSDC") for x in trades]
    twin[i] = dataclasses.replace(twin[i], price=t.price + Decimal("0.01"))
    return twin, twin[i]


def test_shipped_trades_reconcile_with_the_official_kline(
    stack, unique_topic, unique_namespace, tmp_path
) -> None:
    s = stack.settings
    trades = list(binance_files.read_trades(SPOT_MINUTE, symbol="BTCUSDT"))
    assert len(trades) == 2631
    twin, changed = one_trade_changed(trades)
    t_topic, c_topic, l_topic = unique_topic("ok-t"), unique_topic("ok-c"), unique_topic("ok-l")

    producer = TradeProducer(s, trades_topic=t_topic)  # the ingest path: file -> Kafka
    result = replay([SPOT_MINUTE], producer, symbol="BTCUSDT")
    producer.produce_many(twin)
    producer.close()
    assert result.trades == 2631

    settings = CandleSettings(intervals="1m")
    topics = (t_topic, c_topic, l_topic)
    run_candles_on_stack(
        s, topics, unique_namespace, settings, tmp_path / "ckpt", checkpoint_interval_ms=1000
    )

    klines = [list(binance_files.read_klines(SPOT_KLINE))]
    assert [k.open_time_us for k in klines[0]] == [WINDOW_US]
    got = consume_committed(s, c_topic, "candle")
    assert not consume_committed(s, l_topic, "late_trade")
    kafka = {
        sym: {c.window_start_us: _values(c) for c in got if c.symbol == sym}
        for sym in ("BTC-USDT", TWIN)
    }
    cat = catalog.catalog(s)
    table = f"{unique_namespace}.candles"
    iceberg = {
        sym: read_candles_iceberg("binance", sym, "1m", table_name=table, catalog=cat)
        for sym in ("BTC-USDT", TWIN)
    }

    for source in (kafka, iceberg):  # the shipped trades: every kline field equal
        report = compare(klines, source["BTC-USDT"])
        assert report.ok and report.compared == 1, report

    for source in (kafka, iceberg):  # one trade moved one tick: the window and the field
        report = compare(klines, source[TWIN])
        assert not report.ok and report.compared == 1
        [m] = report.mismatches
        assert (m.open_time_us, m.field) == (WINDOW_US, "quote_volume")
        assert m.theirs == Decimal("768978.75522470")
        assert Decimal(m.ours) - Decimal("768978.7552247") == changed.quantity * Decimal("0.01")
        console = Console(record=True, width=200)
        print_report(report, console)
        text = console.export_text()
        assert "2025-01-01 00:00:00" in text and "quote_volume" in text and "FAIL" in text
