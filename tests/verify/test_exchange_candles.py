"""Request builders and response parsers of the exchanges' candle endpoints, on the documented
response examples (../shared/reference/binance/binance-rest-api.md "Kline/Candlestick data";
Coinbase Advanced Trade "Get Public Product Candles"; Kraken "Get OHLC Data"), and the
precision rules as properties. Pure, < 2 s."""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from candleflow.intervals import Interval
from verify.compare import field_matches
from verify.exchange_candles import (
    BaseUrls,
    FieldRule,
    Market,
    RateLimited,
    Unavailable,
    parse,
    requests_for,
)

M1 = Interval.parse("1m")
KRAKEN, COINBASE = Market("kraken", "BTC-USD"), Market("coinbase", "BTC-USD")
H1 = Interval.parse("1h")

BINANCE_DOC = """[[1499040000000, "0.01634790", "0.80000000", "0.01575800", "0.01577100",
  "148976.11427815", 1499644799999, "2434.19055334", 308, "1756.87402397", "28.46694368", "0"]]"""
COINBASE_DOC = """{"candles": [{"start": "1639508050", "low": "140.21", "high": "140.21",
  "open": "140.21", "close": "140.21", "volume": "56437345"}]}"""
KRAKEN_DOC = """{"error": [], "result": {"XXBTZUSD": [
  [1688671200, "30306.1", "30306.2", "30305.7", "30305.7", "30306.1", "3.39243896", 23],
  [1688671260, "30305.7", "30305.7", "30300.0", "30300.1", "30302.4", "0.05800000", 7]],
  "last": 1688672160}}"""


def test_binance_documented_kline() -> None:
    [c] = parse(BINANCE_DOC, Market("binance", "BNB-BTC"), M1)
    assert c.window_start_us == 1499040000000_000
    assert c.values == {
        "open": Decimal("0.01634790"),
        "high": Decimal("0.80000000"),
        "low": Decimal("0.01575800"),
        "close": Decimal("0.01577100"),
        "volume": Decimal("148976.11427815"),
        "quote_volume": Decimal("2434.19055334"),
        "trade_count": 308,
        "taker_buy_volume": Decimal("1756.87402397"),
        "taker_buy_quote_volume": Decimal("28.46694368"),
    }
    # timeUnit=MICROSECOND answers (spot, from 2025): the same kline in µs
    micro = json.loads(BINANCE_DOC)
    micro[0][0] *= 1000
    [c2] = parse(json.dumps(micro), Market("binance", "BNB-BTC"), M1)
    assert c2.window_start_us == c.window_start_us


def test_coinbase_documented_candle_and_kraken_ohlc() -> None:
    [c] = parse(COINBASE_DOC, Market("coinbase", "SOL-USD"), M1)
    assert c.window_start_us == 1639508050_000000
    assert set(c.values) == {"open", "high", "low", "close", "volume"}
    assert c.values["volume"] == Decimal("56437345")
    got = parse(KRAKEN_DOC, Market("kraken", "BTC-USD"), M1)
    assert [k.window_start_us for k in got] == [1688671200_000000, 1688671260_000000]
    assert got[0].values["vwap"] == Decimal("30306.1") and got[0].values["trade_count"] == 23
    assert got[1].values["low"] == Decimal("30300.0")


@pytest.mark.parametrize(
    ("market", "body", "error"),
    [
        (KRAKEN, '{"error":["EAPI:Rate limit exceeded"],"result":{}}', RateLimited),
        (KRAKEN, '{"error":["EQuery:Unknown asset pair"]}', Unavailable),
        (Market("binance", "BTC-USDT"), '{"code":-1121,"msg":"Invalid symbol."}', Unavailable),
        (Market("binance", "BTC-USDT"), "[[1, 0.5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]]", Unavailable),
        (COINBASE, '{"error":"NOT_FOUND","message":"no product"}', Unavailable),
        (COINBASE, "<html>502 Bad Gateway</html>", Unavailable),
    ],
)  # fmt: skip
def test_error_answers_are_never_candles(market: Market, body: str, error: type) -> None:
    with pytest.raises(error):
        parse(body, market, M1)


def test_requests_page_and_route_by_market() -> None:
    urls = BaseUrls("http://s", "http://d", "http://c", "http://k")
    day = 86_400_000_000
    spot = requests_for(Market("binance", "BTC-USDT"), M1, 0, day, urls)
    assert [r.url for r in spot] == ["http://s/api/v3/klines"] * 2  # 1440 windows, 1000 a page
    assert spot[0].params["endTime"] == str((1000 * 60_000_000 - 1) // 1000)
    assert spot[1].params["startTime"] == str(1000 * 60_000)
    [coinm] = requests_for(Market("binance", "BTC-USD-PERP"), H1, 0, day, urls)
    assert coinm.url == "http://d/dapi/v1/klines" and coinm.params["symbol"] == "BTCUSD_PERP"
    assert coinm.weight == 5
    cb = requests_for(Market("coinbase", "BTC-USD"), M1, 0, day, urls)
    assert len(cb) == 5 and cb[0].params["granularity"] == "ONE_MINUTE"
    assert cb[0].url == "http://c/api/v3/brokerage/market/products/BTC-USD/candles"
    [kr] = requests_for(Market("kraken", "BTC-USD"), M1, 0, day, urls)
    assert kr.params == {"pair": "XBTUSD", "interval": "1", "since": "-60"}


def test_market_text() -> None:
    assert Market.parse("binance:btc-usdt") == Market("binance", "BTC-USDT")
    with pytest.raises(ValueError, match="EXCHANGE:SYMBOL"):
        Market.parse("bitfinex:BTC-USD")


PRINTED = FieldRule("quote_volume", "printed")
amounts = st.decimals(min_value=0, max_value=10**9, places=16, allow_nan=False)


@settings(max_examples=500)
@given(ours=amounts, decimals=st.integers(0, 8))
def test_printed_fields_match_their_own_rounding_and_no_unit_off(
    ours: Decimal, decimals: int
) -> None:
    unit = Decimal(1).scaleb(-decimals)
    theirs = ours.quantize(unit, ROUND_HALF_UP)
    assert field_matches(PRINTED, ours, theirs)
    assert not field_matches(PRINTED, ours, theirs + unit)
    if theirs >= unit:
        assert not field_matches(PRINTED, ours, theirs - unit)
    assert field_matches(FieldRule("vwap", "printed", 1), ours, theirs + unit)


@settings(max_examples=300)
@given(ours=amounts, zeros=st.integers(0, 6))
def test_exact_fields_ignore_printed_trailing_zeros(ours: Decimal, zeros: int) -> None:
    text = format(ours.normalize(), "f")
    assert field_matches(
        FieldRule("volume"), ours, Decimal(text + ("0" * zeros if "." in text else ""))
    )
    assert not field_matches(FieldRule("volume"), ours, ours + Decimal("1E-16"))


def test_a_mismatch_record_fits_the_reconcile_contract() -> None:
    import io

    import fastavro

    from candleflow.contracts import schema
    from verify.compare import MISSING_OURS, Mismatch
    from verify.kafka_io import mismatch_record

    parsed = fastavro.parse_schema(schema("reconcile"))
    m = Mismatch(Market("binance", "BTC-USDT"), "1m", 1735689600_000000, "window", None, "8.2",
                 MISSING_OURS)  # fmt: skip
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, parsed, mismatch_record(m, 60_000_000, 1735690000_000000))
    back = fastavro.schemaless_reader(io.BytesIO(buf.getvalue()), parsed, None)
    assert back["reconcile_id"] == "binance:BTC-USDT:1m:1735689600000000:window:None"
    assert (back["kind"], back["ours"], back["theirs"]) == ("MISSING_OURS", None, "8.2")
    assert back["window_end"].timestamp() - back["window_start"].timestamp() == 60
