"""The data.binance.vision reader on the real COIN-M day, the official klines and small
files written in each documented variant (header or not, ms or µs, zip or csv)."""

from __future__ import annotations

import zipfile
from datetime import date
from decimal import Decimal
from itertools import pairwise
from pathlib import Path

import pytest

from candleflow.binance_files import (
    BinanceFileError,
    parse_file_name,
    read_klines,
    read_trades,
)
from candleflow.domain import InstrumentKind, Side
from devstack.sample_data import COINM_DAY

from .common import KLINE_ZIPS

SPOT_TRADES_US = (
    "51175358,17.80180000,5.69000000,101.29224200,1735689600010866,True,True\n"
    "51175359,17.80190000,0.10000000,1.78019000,1735689600512000,False,True\n"
)
AGG_HEADER = (
    "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n"
)


def write(tmp_path: Path, name: str, text: str, *, zipped: bool = False) -> Path:
    if not zipped:
        path = tmp_path / name
        path.write_text(text)
        return path
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(name.replace(".zip", ".csv"), text)
    return path


def test_real_coinm_day_values() -> None:
    trades = list(read_trades(COINM_DAY))
    assert len(trades) == 105_280
    first = trades[0]
    # 480537903,79972.8,542.0,1123474160,1123474164,1778198400020,false
    assert (first.exchange, first.symbol, first.native_symbol) == (
        "binance",
        "BTC-USD-PERP",
        "BTCUSD_PERP",
    )
    assert first.trade_id == 480537903
    assert str(first.price) == "79972.8" and str(first.quantity) == "542.0"
    assert (first.first_trade_id, first.last_trade_id) == (1123474160, 1123474164)
    assert first.event_time_us == 1_778_198_400_020_000
    assert first.side is Side.BUY  # is_buyer_maker=false: the taker bought
    assert first.kind is InstrumentKind.INVERSE and first.contract_size == Decimal(100)
    assert [t.trade_id for t in trades] == list(range(480537903, 480643183))
    assert sum(t.trade_count for t in trades) == 240_198
    assert all(b.first_trade_id == (a.last_trade_id or 0) + 1 for a, b in pairwise(trades))


def test_spot_trades_microseconds_no_header(tmp_path: Path) -> None:
    path = write(tmp_path, "FETUSDT-trades-2025-01-01.csv", SPOT_TRADES_US)
    a, b = read_trades(path)
    assert (a.symbol, a.native_symbol, a.kind) == ("FET-USDT", "FETUSDT", InstrumentKind.SPOT)
    assert a.trade_id == 51175358 and a.price == Decimal("17.80180000")
    assert str(a.quantity) == "5.69000000"
    assert a.event_time_us == 1735689600010866
    assert a.side is Side.SELL and b.side is Side.BUY
    assert a.trade_count == 1 and a.first_trade_id is None
    assert b.event_time_us == 1735689600512000


def test_same_rows_in_milliseconds_zipped(tmp_path: Path) -> None:
    text = "1,100.5,2,201,1577836800000,true,true\n2,100.6,1,100.6,1577836800001,false,true\n"
    path = write(tmp_path, "BTCUSDT-trades-2020-01-01.zip", text, zipped=True)
    a, b = read_trades(path)
    assert a.event_time_us == 1_577_836_800_000_000 and b.event_time_us == 1_577_836_800_001_000


def test_spot_agg_trades_with_best_match_and_header(tmp_path: Path) -> None:
    text = (
        AGG_HEADER.replace("\n", ",is_best_match\n")
        + "26129,0.01633102,4.70443515,27781,27783,1498793709153,true,true\n"
    )
    (t,) = read_trades(write(tmp_path, "LTCBTC-aggTrades-2017-06-30.csv", text))
    assert (t.symbol, t.kind, t.trade_count, t.side) == (
        "LTC-BTC",
        InstrumentKind.SPOT,
        3,
        Side.SELL,
    )


def test_usdm_futures_files_are_linear(tmp_path: Path) -> None:
    trades_text = (
        "id,price,qty,quote_qty,time,is_buyer_maker\n"
        "28457,4.00000100,12.00000000,48.00,1499865549590,true\n"
    )
    (t,) = read_trades(write(tmp_path, "BTCUSDT-trades-2017-07-12.csv", trades_text))
    assert (t.symbol, t.native_symbol, t.kind) == (
        "BTC-USDT-PERP",
        "BTCUSDT",
        InstrumentKind.LINEAR,
    )
    agg = AGG_HEADER + "26129,30000.1,0.004,27781,27781,1698793709153,false\n"
    (a,) = read_trades(write(tmp_path, "BTCUSDT-aggTrades-2023-10-31.csv", agg))
    assert a.kind is InstrumentKind.LINEAR and a.contract_size is None
    assert a.quote_quantity == Decimal("120.0004")


def test_other_coinm_contract_is_10_usd(tmp_path: Path) -> None:
    text = AGG_HEADER + "1,2000.00,3,10,10,1698793709153,false\n"
    (t,) = read_trades(write(tmp_path, "ETHUSD_PERP-aggTrades-2023-10-31.csv", text))
    assert (t.symbol, t.kind, t.contract_size) == (
        "ETH-USD-PERP",
        InstrumentKind.INVERSE,
        Decimal(10),
    )


def test_symbol_override_canonical_or_native(tmp_path: Path) -> None:
    path = write(tmp_path, "trades.csv", SPOT_TRADES_US)
    (a, _) = read_trades(path, symbol="FET-USDT", file_kind="trades")
    (b, _) = read_trades(path, symbol="FETUSDT", file_kind="trades")
    assert (a.symbol, a.native_symbol) == (b.symbol, b.native_symbol) == ("FET-USDT", "FETUSDT")
    with pytest.raises(BinanceFileError, match="symbol"):
        list(read_trades(path, file_kind="trades"))


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("3,abc,1,1,1735689600600000,True,True", "price 'abc'"),
        ("3,17.8,-1,1,1735689600600000,True,True", "quantity '-1'"),
        ("3,17.8,1,1,1735689600600,True,True", "does not match the file's unit"),
        ("3,17.8,1,1,1735689600600000,maybe,True", "is_buyer_maker 'maybe'"),
        ("3,17.8,1,1,1735689600600000,True,True,x,y", "expected 6 or 7 columns, got 9"),
    ],
)
def test_malformed_row_names_file_and_line(tmp_path: Path, row: str, reason: str) -> None:
    path = write(tmp_path, "FETUSDT-trades-2025-01-01.csv", SPOT_TRADES_US + row + "\n")
    with pytest.raises(BinanceFileError) as info:
        list(read_trades(path))
    assert "FETUSDT-trades-2025-01-01.csv:3: " in str(info.value)
    assert reason in str(info.value)
    errors: list[BinanceFileError] = []
    good = list(read_trades(path, errors=errors))
    assert [t.trade_id for t in good] == [51175358, 51175359]
    assert [e.line for e in errors] == [3]


def test_file_names() -> None:
    name = parse_file_name("/x/BTCUSD_PERP-aggTrades-2026-05-08.zip")
    assert name is not None
    assert (name.native_symbol, name.kind, name.day) == (
        "BTCUSD_PERP",
        "aggTrades",
        date(2026, 5, 8),
    )
    kl = parse_file_name("BTCUSDT-1m-2020-08.zip")
    assert kl is not None and (kl.kind, kl.interval, kl.month) == ("klines", "1m", "2020-08")
    assert parse_file_name("candles.csv") is None


def test_official_klines() -> None:
    klines = [k for path in KLINE_ZIPS for k in read_klines(path)]
    assert len(klines) == 4320
    first = klines[0]
    # 1577836800000,7195.24000000,7196.25000000,7183.14000000,7186.68000000,51.64281200,
    # 1577836859999,371233.51835535,493,19.59823000,140888.41428273,0
    assert first.open_time_us == 1_577_836_800_000_000
    assert first.close_time_us == 1_577_836_859_999_000
    assert (str(first.open), str(first.close)) == ("7195.24000000", "7186.68000000")
    assert first.quote_volume == Decimal("371233.51835535") and first.trade_count == 493
    assert first.taker_buy_quote_volume == Decimal("140888.41428273")
    assert sum(k.trade_count for k in klines) == 1_016_531
    starts = [k.open_time_us for k in klines]
    assert starts == list(range(starts[0], starts[0] + 4320 * 60_000_000, 60_000_000))


def test_klines_microseconds_with_header(tmp_path: Path) -> None:
    text = (
        "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
        "taker_buy_volume,taker_buy_quote_volume,ignore\n"
        "1735689600000000,1.5,1.6,1.4,1.55,10,1735689659999999,15.5,3,4,6.2,0\n"
    )
    (k,) = read_klines(write(tmp_path, "FETUSDT-1m-2025-01-01.csv", text))
    assert k.open_time_us == 1735689600000000 and k.close_time_us == 1735689659999999


def test_a_broken_first_row_is_not_taken_for_a_header(tmp_path: Path) -> None:
    path = write(tmp_path, "FETUSDT-trades-2025-01-01.csv", "x51175357," + SPOT_TRADES_US[9:])
    with pytest.raises(BinanceFileError, match=r"FETUSDT-trades-2025-01-01.csv:1: .*x51175357"):
        list(read_trades(path))


@pytest.mark.parametrize(
    ("native", "canonical"),
    [
        ("ETHBRL", "ETH-BRL"),
        ("BTCEURI", "BTC-EURI"),
        ("BTCEUR", "BTC-EUR"),
        ("BTCIDRT", "BTC-IDRT"),
        ("SHIBDOGE", "SHIB-DOGE"),
        ("BTCUSD1", "BTC-USD1"),
        ("ETHTUSD", "ETH-TUSD"),
        ("1000SATSFDUSD", "1000SATS-FDUSD"),
        ("PAXGUSDT", "PAXG-USDT"),
    ],
)
def test_quote_assets_beyond_the_usual_ones(tmp_path: Path, native: str, canonical: str) -> None:
    """Binance quotes in many fiat and stable assets; a file of any of them is readable."""
    path = write(tmp_path, f"{native}-trades-2025-01-01.zip", SPOT_TRADES_US, zipped=True)
    trades = list(read_trades(path))
    assert {(t.symbol, t.native_symbol) for t in trades} == {(canonical, native)}


def test_unknown_quote_is_one_file_error_naming_the_way_out(tmp_path: Path) -> None:
    """Not one error per row: the symbol belongs to the file, and the message says how to
    name it; with the symbol given as BASE-QUOTE the same file reads."""
    path = write(tmp_path, "ETHQQQ-trades-2025-01-01.csv", SPOT_TRADES_US)
    errors: list[BinanceFileError] = []
    with pytest.raises(BinanceFileError) as info:
        list(read_trades(path, errors=errors))
    assert errors == [] and info.value.line is None
    assert "cannot split symbol 'ETHQQQ'" in str(info.value) and "BASE-QUOTE" in str(info.value)
    assert [t.symbol for t in read_trades(path, symbol="ETH-QQQ")] == ["ETH-QQQ", "ETH-QQQ"]
