"""Real candles for the serving tests: Binance's official BTCUSDT 1m klines (spot) and the
reference candles of the COIN-M BTCUSD_PERP aggTrades day, from ../shared/data."""

from __future__ import annotations

import dataclasses
from decimal import ROUND_HALF_UP
from functools import cache

from candleflow import binance_files, reference
from candleflow.domain import Candle
from candleflow.records import fit_decimal
from devstack.sample_data import BINANCE_FILES, COINM_DAY

KLINES = BINANCE_FILES / "BTCUSDT-1m-2020-01-01.zip"
MINUTE_US = 60_000_000


@cache
def spot_candles() -> tuple[Candle, ...]:
    """1,440 one-minute BTC-USDT candles, field by field from the official kline file."""
    out = []
    for k in binance_files.read_klines(KLINES):
        vwap = fit_decimal(k.quote_volume / k.volume, rounding=ROUND_HALF_UP) if k.volume else None
        out.append(
            Candle(
                exchange="binance",
                symbol="BTC-USDT",
                interval="1m",
                window_start_us=k.open_time_us,
                window_end_us=k.open_time_us + MINUTE_US,
                open=k.open,
                high=k.high,
                low=k.low,
                close=k.close,
                volume=k.volume,
                quote_volume=k.quote_volume,
                trade_count=k.trade_count,
                taker_buy_volume=k.taker_buy_volume,
                taker_buy_quote_volume=k.taker_buy_quote_volume,
                vwap=vwap,
                first_trade_id=None,
                last_trade_id=None,
                revision=0,
                is_empty=k.trade_count == 0,
            )
        )
    return tuple(out)


@cache
def perp_candles(limit_trades: int = 20_000) -> tuple[Candle, ...]:
    """BTC-USD-PERP 1m and 5m reference candles of the first trades of the COIN-M day."""
    trades = []
    for t in binance_files.read_trades(COINM_DAY):
        trades.append(t)
        if len(trades) >= limit_trades:
            break
    candles = reference.batch_candles(trades, ["1m", "5m"])
    return tuple(
        dataclasses.replace(
            c, vwap=None if c.vwap is None else fit_decimal(c.vwap, rounding=ROUND_HALF_UP)
        )
        for c in candles
    )


def corrected(c: Candle) -> Candle:
    """The next revision of a candle, as a late trade would make it: one more trade."""
    return dataclasses.replace(
        c,
        revision=c.revision + 1,
        trade_count=c.trade_count + 1,
        volume=c.volume + 1,
        high=c.high + 1,
    )
