"""The reference on small cases whose expected candles are written out by hand."""

from __future__ import annotations

from decimal import Decimal as D

from candleflow.config import CandleSettings
from candleflow.domain import Candle, InstrumentKind, Side
from candleflow.reference import batch_candles, quote_amount, stream_reference

from .common import T0, trade

M = 60_000_000  # one minute in µs
BUY, SELL = Side.BUY, Side.SELL


def c(
    start_min: int,
    o: str,
    h: str,
    lo: str,
    cl: str,
    vol: str,
    quote: str,
    count: int,
    buy_vol: str,
    buy_quote: str,
    vwap: str | None,
    first: int | None,
    last: int | None,
    revision: int = 0,
    *,
    interval: str = "1m",
    symbol: str = "BTC-USDT",
) -> Candle:
    size = {"1m": M, "5m": 5 * M}[interval]
    start = T0 + start_min * M
    return Candle(
        "binance",
        symbol,
        interval,
        start,
        start + size,
        D(o),
        D(h),
        D(lo),
        D(cl),
        D(vol),
        D(quote),
        count,
        D(buy_vol),
        D(buy_quote),
        D(vwap) if vwap else None,
        first,
        last,
        revision,
        vwap is None,
    )


def test_open_close_by_event_time_not_arrival() -> None:
    trades = [
        trade(2, "102", "1", 30, SELL),
        trade(1, "100", "2", 1, BUY),
        trade(3, "99", "3", 10, BUY),
    ]
    # open = 100 (t=1s), close = 102 (t=30s); quote 200 + 102 + 297 = 599; vwap 599/6.
    expected = [
        c(0, "100", "102", "99", "102", "6", "599", 3, "5", "497", "99.833333333333333333", 1, 3)
    ]
    assert batch_candles(trades, "1m") == expected
    assert stream_reference(trades, "1m").final_candles() == expected


def test_same_time_ties_broken_by_trade_id() -> None:
    trades = [trade(8, "10", "1", 5), trade(7, "11", "1", 5), trade(9, "12", "1", 5)]
    (candle,) = batch_candles(trades, "1m")
    assert (candle.open, candle.close) == (D("11"), D("12"))


def test_empty_windows_flat_at_previous_close_only_between_trades() -> None:
    trades = [trade(1, "100", "1", 5), trade(2, "101", "2", 20, SELL), trade(3, "105", "1", 190)]
    assert batch_candles(trades, "1m") == [
        c(0, "100", "101", "100", "101", "3", "302", 2, "1", "100", "100.666666666666666667", 1, 2),
        c(1, "101", "101", "101", "101", "0", "0", 0, "0", "0", None, None, None),
        c(2, "101", "101", "101", "101", "0", "0", 0, "0", "0", None, None, None),
        c(3, "105", "105", "105", "105", "1", "105", 1, "1", "105", "105", 3, 3),
    ]


def test_duplicates_first_arrival_wins() -> None:
    trades = [trade(1, "100", "1", 5), trade(1, "999", "5", 6), trade(2, "101", "1", 7)]
    (candle,) = batch_candles(trades, "1m")
    assert (candle.high, candle.volume, candle.trade_count) == (D("101"), D("2"), 2)
    result = stream_reference(trades, "1m")
    assert [t.price for t in result.duplicates] == [D("999")]


def test_inverse_quote_volume_is_base_amount_rounded_per_trade() -> None:
    kw = {"symbol": "BTC-USD-PERP", "kind": InstrumentKind.INVERSE, "contract_size": "100"}
    a = trade(1, "80000", "3", 1, BUY, first=10, last=11, **kw)  # type: ignore[arg-type]
    b = trade(2, "70000", "1", 2, SELL, first=12, last=12, **kw)  # type: ignore[arg-type]
    # 300/80000 = 0.00375; 100/70000 = 0.001428571428571428|571.. -> ...429 (HALF_UP, 18 dp)
    assert quote_amount(a) == D("0.00375")
    assert quote_amount(b) == D("0.001428571428571429")
    # vwap = 4 contracts x 100 / 0.005178571428571429 BTC
    assert batch_candles([b, a], "1m") == [
        c(
            0,
            "80000",
            "80000",
            "70000",
            "70000",
            "4",
            "0.005178571428571429",
            3,
            "3",
            "0.00375",
            "77241.379310344821193817",
            10,
            12,
            symbol="BTC-USD-PERP",
        ),
    ]


def test_lateness_corrections_and_dlq_per_interval() -> None:
    """grace 1m = 10 s, 5m = 30 s; allowed lateness 300 s (the defaults)."""
    settings = CandleSettings()
    arrivals = [
        trade(1, "100", "1", 5),  # A: 1m w0, 5m w0
        trade(2, "110", "1", 80),  # B: clock 80 s >= 60 + 10: 1m w0 emitted (A)
        trade(3, "90", "1", 30, SELL),  # C: 80 < 60+10+300: 1m w0 corrected, revision 1
        trade(4, "120", "1", 420),  # D: 1m w1 (B) emitted; 5m w0 emitted (A, B, C)
        trade(5, "95", "1", 50),  # E: 1m: 420 >= 370 -> DLQ; 5m: 420 < 630 -> w0 rev 1
        trade(2, "110", "1", 80),  # B again: a duplicate, ignored
    ]
    result = stream_reference(arrivals, ["1m", "5m"], settings)
    one = [e for e in result.emissions if e.interval == "1m"]
    five = [e for e in result.emissions if e.interval == "5m"]
    flat = ("110", "110", "110", "110", "0", "0", 0, "0", "0", None, None, None)
    assert one == [
        c(0, "100", "100", "100", "100", "1", "100", 1, "1", "100", "100", 1, 1),
        c(0, "100", "100", "90", "90", "2", "190", 2, "1", "100", "95", 1, 3, 1),
        c(1, "110", "110", "110", "110", "1", "110", 1, "1", "110", "110", 2, 2),
        # end of input: the empties up to D's window, then D's window
        c(2, *flat),
        c(3, *flat),
        c(4, *flat),
        c(5, *flat),
        c(6, *flat),  # type: ignore[arg-type]
        c(7, "120", "120", "120", "120", "1", "120", 1, "1", "120", "120", 4, 4),
    ]
    assert five == [
        c(0, "100", "110", "90", "110", "3", "300", 3, "2", "210", "100", 1, 3, 0, interval="5m"),
        c(0, "100", "110", "90", "110", "4", "395", 4, "3", "305", "98.75", 1, 5, 1, interval="5m"),
        c(5, "120", "120", "120", "120", "1", "120", 1, "1", "120", "120", 4, 4, 0, interval="5m"),
    ]
    assert [
        (lt.trade.trade_id, lt.interval, lt.window_start_us, lt.watermark_us, lt.reason)
        for lt in result.late
    ] == [(5, "1m", T0, T0 + 420 * 1_000_000, "BEYOND_ALLOWED_LATENESS")]
    assert [t.trade_id for t in result.duplicates] == [2]


def test_correction_reprices_following_empty_windows() -> None:
    settings = CandleSettings()
    arrivals = [
        trade(1, "100", "1", 5),
        trade(2, "103", "1", 200),  # w0 emitted, w3 pending
        trade(3, "104", "1", 260),  # clock 260 >= 240 + 10: w1, w2 empty at 100, w3
        trade(4, "99", "1", 50),
    ]  # late for w0 but within lateness: new close 99
    emissions = stream_reference(arrivals, "1m", settings).emissions
    summary = [
        ((e.window_start_us - T0) // M, e.revision, str(e.close), e.is_empty) for e in emissions
    ]
    assert summary == [
        (0, 0, "100", False),
        (1, 0, "100", True),
        (2, 0, "100", True),
        (3, 0, "103", False),
        (0, 1, "99", False),
        (1, 1, "99", True),
        (2, 1, "99", True),
        (4, 0, "104", False),
    ]


def test_window_before_the_first_emitted_fills_the_gap() -> None:
    arrivals = [
        trade(1, "100", "1", 185),
        trade(2, "101", "1", 250),  # w3 emitted at 250
        trade(3, "97", "1", 10),
    ]  # w0: new, due at once; w1, w2 empty at 97
    emissions = stream_reference(arrivals, "1m").emissions
    summary = [
        ((e.window_start_us - T0) // M, e.revision, str(e.close), e.is_empty) for e in emissions
    ]
    assert summary == [
        (3, 0, "100", False),
        (0, 0, "97", False),
        (1, 0, "97", True),
        (2, 0, "97", True),
        (4, 0, "101", False),
    ]


def test_a_busy_market_does_not_make_a_quiet_one_late() -> None:
    arrivals = [
        trade(1, "100", "1", 5, symbol="ETH-USDT"),
        trade(1, "50", "1", 5),
        trade(2, "51", "1", 3600),  # BTC clock jumps an hour
        trade(2, "101", "1", 20, symbol="ETH-USDT"),
    ]  # ETH's own clock is at 5 s
    result = stream_reference(arrivals, "1m")
    assert result.late == []
    eth = [x for x in result.final_candles() if x.symbol == "ETH-USDT"]
    assert [(x.volume, x.close) for x in eth] == [(D(2), D(101))]
