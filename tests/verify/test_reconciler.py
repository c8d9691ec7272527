"""The reconciler against local fake exchanges serving candles in each exchange's format,
built from real recorded trades: faithful data, planted mismatches, missing windows, rate
limits and outages. Pure Python (no Kafka): our candles come from a DictCandles.
Cost: about 10 s (the rate-limit cases wait out 1 s Retry-After answers)."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import aiohttp
import pytest

from candleflow.domain import Candle
from candleflow.intervals import parse_intervals
from devstack.fakes.exchange_candles import FakeCandleExchange
from tests.verify.markets import DictCandles, candles
from verify.client import Limiter, RetryPolicy, limiters
from verify.compare import MISSING_EXCHANGE, MISSING_OURS
from verify.exchange_candles import BaseUrls, Market
from verify.metrics import ReconcileMetrics
from verify.reconciler import CycleReport, Reconciler

FAST = RetryPolicy(attempts=4, backoff_s=0.05, max_wait_s=5.0, timeout_s=5.0)
# exchange key -> (market, price decimals, volume decimals) as that exchange prints them
SETUPS = {
    "binance": (Market("binance", "BTC-USDT"), 8, 8),
    "binance-coinm": (Market("binance", "BTC-USD-PERP"), 1, 0),
    "coinbase": (Market("coinbase", "BTC-USD"), 8, 8),
    "kraken": (Market("kraken", "XMR-USD"), 8, 8),
}


def urls(fake: FakeCandleExchange) -> BaseUrls:
    return BaseUrls(fake.url, fake.url, fake.url, fake.url)


def reconciler(market: Market, fake: FakeCandleExchange, ours: list[Candle]) -> Reconciler:
    first = min(c.window_start_us for c in ours if c.symbol == market.symbol)
    return Reconciler(
        markets=[market],
        intervals=parse_intervals("1m,5m"),
        start_us=first,
        settle_s=420,
        limiters=limiters(1.0),
        metrics=ReconcileMetrics(),
        urls=urls(fake),
        policy=FAST,
    )


def later(ours: list[Candle]) -> int:
    return max(c.window_end_us for c in ours) + 3_600_000_000


async def cycle(rec: Reconciler, ours: DictCandles, now_us: int) -> tuple[CycleReport, list]:
    published: list = []
    async with aiohttp.ClientSession() as session:
        report = await rec.cycle(session, ours, now_us, published.extend)
    return report, published


def fake_for(key: str, ours: list[Candle], **faults: object) -> FakeCandleExchange:
    _, price, volume = SETUPS[key]
    return FakeCandleExchange(ours, price_decimals=price, volume_decimals=volume, **faults)  # type: ignore[arg-type]


def counter(rec: Reconciler, name: str, **labels: str) -> float:
    value = rec.metrics.registry.get_sample_value(name, labels)
    return value or 0.0


@pytest.mark.parametrize("key", sorted(SETUPS))
async def test_faithful_candles_match_everywhere(key: str) -> None:
    market = SETUPS[key][0]
    ours = candles(key)
    async with fake_for(key, ours) as fake:
        rec = reconciler(market, fake, ours)
        report, published = await cycle(rec, DictCandles(ours), later(ours))
    traded = sum(1 for c in ours if not c.is_empty and c.symbol == market.symbol)
    assert report.mismatches == [] and published == [] and not report.failures
    assert report.checked >= traded > 0 and report.matched == report.checked
    labels = {"exchange": market.exchange, "symbol": market.symbol, "interval": "1m"}
    assert counter(rec, "candleflow_reconcile_windows_checked_total", **labels) > 0
    assert counter(rec, "candleflow_reconcile_windows_matched_total", **labels) == counter(
        rec, "candleflow_reconcile_windows_checked_total", **labels
    )


# (exchange key, field, planted value): every exchange's published fields, at its precision
PLANTS = [
    ("binance", "close", "93610.94000000"),
    ("binance", "quote_volume", "768978.75522471"),  # one unit of the 8th decimal
    ("binance", "trade_count", "2630"),
    ("binance", "taker_buy_volume", "3.95157001"),
    ("binance-coinm", "quote_volume", "0.00000001"),
    ("binance-coinm", "high", "99999.9"),
    ("coinbase", "volume", "0.001"),
    ("coinbase", "open", "1"),
    ("kraken", "vwap", "1.00000000"),
    ("kraken", "trade_count", "99"),
    ("kraken", "low", "0.00000001"),
]


@pytest.mark.parametrize(("key", "field", "value"), PLANTS)
async def test_planted_mismatch_is_found_with_market_window_field_and_both_values(
    key: str, field: str, value: str
) -> None:
    market = SETUPS[key][0]
    ours = candles(key)
    target = next(
        c for c in ours if c.interval == "1m" and not c.is_empty and c.symbol == market.symbol
    )
    plant = {(target.symbol, "1m", target.window_start_us, field): value}
    async with fake_for(key, ours, override=plant) as fake:
        rec = reconciler(market, fake, ours)
        report, published = await cycle(rec, DictCandles(ours), later(ours))
    assert published == report.mismatches
    [m] = report.mismatches
    assert (m.market, m.interval, m.window_start_us, m.field) == (
        market,
        "1m",
        target.window_start_us,
        field,
    )
    assert m.theirs is not None and Decimal(m.theirs) == Decimal(value)
    assert m.ours is not None and Decimal(m.ours) == Decimal(getattr(target, field))
    assert m.revision == target.revision
    labels = {"exchange": market.exchange, "symbol": market.symbol, "interval": "1m"}
    assert counter(rec, "candleflow_reconcile_mismatches_total", **labels, field=field) == 1


async def test_one_unit_below_the_printed_precision_is_not_a_mismatch() -> None:
    """Binance prints 8 decimals of a 16-decimal quote volume: ours is rounded half up."""
    ours = candles("binance")
    [minute] = [c for c in ours if c.interval == "1m"]
    assert minute.quote_volume == Decimal("768978.7552247000000000")
    nudged = dataclasses.replace(minute, quote_volume=minute.quote_volume + Decimal("4E-9"))
    ours_nudged = [nudged if c is minute else c for c in ours]
    async with fake_for("binance", ours) as fake:
        rec = reconciler(SETUPS["binance"][0], fake, ours)
        report, _ = await cycle(rec, DictCandles(ours_nudged), later(ours))
    assert report.mismatches == []
    bumped = dataclasses.replace(minute, quote_volume=minute.quote_volume + Decimal("5E-9"))
    async with fake_for("binance", ours) as fake:
        rec = reconciler(SETUPS["binance"][0], fake, ours)
        report, _ = await cycle(rec, DictCandles([bumped, *ours[1:]]), later(ours))
    assert [m.field for m in report.mismatches] == ["quote_volume"]


@pytest.mark.parametrize("key", ["binance-coinm", "coinbase"])
async def test_missing_windows_on_either_side(key: str) -> None:
    market = SETUPS[key][0]
    ours = candles(key)
    traded = [
        c for c in ours if c.interval == "1m" and not c.is_empty and c.symbol == market.symbol
    ]
    assert len(traded) >= 3  # the last one stays: it is how far our candles reach
    gone_there, gone_here = traded[0], traded[1]
    async with fake_for(
        key, ours, missing={(market.symbol, "1m", gone_there.window_start_us)}
    ) as fake:
        rec = reconciler(market, fake, ours)
        mine = [c for c in ours if c is not gone_here]
        report, _ = await cycle(rec, DictCandles(mine), later(ours))
    got = {(m.window_start_us, m.field, m.kind) for m in report.mismatches}
    assert got == {
        (gone_there.window_start_us, "window", MISSING_EXCHANGE),
        (gone_here.window_start_us, "window", MISSING_OURS),
    }
    missing_ours = next(m for m in report.mismatches if m.kind == MISSING_OURS)
    assert missing_ours.ours is None and Decimal(missing_ours.theirs or "0") == gone_here.volume


@pytest.mark.parametrize(
    ("key", "status"), [("binance", 429), ("binance", 418), ("coinbase", 429), ("kraken", 200)]
)
async def test_rate_limit_answers_are_waited_out_never_mismatches(key: str, status: int) -> None:
    market = SETUPS[key][0]
    ours = candles(key)
    async with fake_for(key, ours, rate_limited=2, status_ban=status or 429) as fake:
        rec = reconciler(market, fake, ours)
        report, published = await cycle(rec, DictCandles(ours), later(ours))
        times = [t for t, _, _ in fake.calls]
    assert report.mismatches == [] and published == [] and not report.failures
    assert report.checked > 0 and report.matched == report.checked
    assert (
        counter(
            rec,
            "candleflow_reconcile_fetch_events_total",
            exchange=market.exchange,
            event="rate_limited",
        )
        == 2
    )
    if key != "kraken":  # Retry-After: 1 honoured before the next call
        assert times[2] - times[1] >= 0.95 and times[1] - times[0] >= 0.95


async def test_a_long_ban_keeps_windows_pending_until_it_is_over() -> None:
    market = SETUPS["binance-coinm"][0]
    ours = candles("binance-coinm")
    async with fake_for("binance-coinm", ours, rate_limited=1, status_ban=418) as fake:
        fake.retry_after_s = 600
        rec = reconciler(market, fake, ours)
        report, published = await cycle(rec, DictCandles(ours), later(ours))
        assert report.mismatches == [] and published == [] and report.checked == 0
        assert len(report.failures) == 2 and len(fake.calls) == 1  # 5m not even asked
        assert rec.limiters["binance-coinm"].paused_until > 0
        rec.limiters["binance-coinm"] = Limiter(1000, 60.0)  # ...ten minutes later
        report, _ = await cycle(rec, DictCandles(ours), later(ours))
    assert report.mismatches == [] and report.checked > 0 and report.matched == report.checked
    assert report.checked >= sum(1 for c in ours if not c.is_empty and c.symbol == market.symbol)


@pytest.mark.parametrize("how", ["503", "refused"])
async def test_an_exchange_that_is_down_is_no_mismatch_and_is_checked_once_back(how: str) -> None:
    market = SETUPS["coinbase"][0]
    ours = candles("coinbase")
    fake = fake_for("coinbase", ours, down=how == "503")
    rec = reconciler(market, fake, ours)
    if how == "503":
        await fake.start()
    report, published = await cycle(rec, DictCandles(ours), later(ours))
    assert report.mismatches == [] and published == [] and report.checked == 0
    assert set(report.failures) == {"coinbase:BTC-USD/1m", "coinbase:BTC-USD/5m"}
    assert all("Unavailable" in r for r in report.failures.values())
    assert rec.progress == {}
    assert (
        counter(
            rec, "candleflow_reconcile_fetch_events_total", exchange="coinbase", event="unavailable"
        )
        == 2
    )
    fake.down = False
    if how == "refused":
        await fake.start()
    try:
        report, _ = await cycle(rec, DictCandles(ours), later(ours))
    finally:
        await fake.stop()
    assert report.mismatches == [] and report.checked > 0 and report.matched == report.checked


async def test_a_lagging_pipeline_is_not_reported_missing() -> None:
    """Windows past the end of our candles wait, however old they are."""
    market = SETUPS["binance-coinm"][0]
    ours = candles("binance-coinm")
    first_hour = [c for c in ours if c.window_end_us <= 1778198400_000000 + 3_600_000_000]
    async with fake_for("binance-coinm", ours) as fake:
        rec = reconciler(market, fake, ours)
        report, _ = await cycle(rec, DictCandles(first_hour), later(ours))
        assert report.mismatches == [] and report.checked == 60 + 12
        report, _ = await cycle(rec, DictCandles(ours), later(ours))  # the rest, once there
    assert report.mismatches == [] and report.checked == 60 + 12


async def test_kraken_windows_beyond_its_720_entries_are_unverifiable_not_mismatches() -> None:
    market = SETUPS["kraken"][0]
    ours = [c for c in candles("kraken", "1m") if c.symbol == "XMR-USD"]
    first = ours[0].window_start_us
    now = first + 720 * 60_000_000 + 60_000_000  # the first window fell out of Kraken's 720
    async with fake_for("kraken", ours, now_us=now) as fake:
        rec = reconciler(market, fake, ours)
        rec.intervals = parse_intervals("1m")
        report, _ = await cycle(rec, DictCandles(ours), now + 3_600_000_000)
    assert report.mismatches == []
    labels = {"exchange": "kraken", "symbol": "XMR-USD", "interval": "1m"}
    assert counter(rec, "candleflow_reconcile_windows_unverifiable_total", **labels) == 1
    assert report.checked == sum(1 for c in ours[1:] if not c.is_empty)


async def test_the_limiter_spends_the_documented_budget_and_no_more() -> None:
    """Kraken's ~1 request/s: 4 calls take 3 s; a Binance spot budget of 6000 weight/min at
    half share gives 25 kline calls (weight 2) a second at most."""
    import time

    kraken = limiters(1.0)["kraken"]
    started = time.monotonic()
    for _ in range(4):
        await kraken.acquire(1)
    assert 2.9 <= time.monotonic() - started < 4.0
    spot = limiters(0.5)["binance"]
    assert spot.capacity == 3000 and spot.rate == 50.0 and spot.hard_limit == 6000
