"""Candle series for detector tests: crafted ones and 1m candles of the real COIN-M day."""

from __future__ import annotations

import csv
import io
import zipfile
from decimal import Decimal
from typing import Any

from candleflow.domain import Candle
from devstack.sample_data import COINM_DAY

MINUTE_US = 60_000_000
T0 = 1_778_198_400_000_000  # 2026-05-08T00:00:00Z


def candle(
    i: int,
    close: str | Decimal,
    volume: str | Decimal = "10",
    *,
    high: str | None = None,
    low: str | None = None,
    empty: bool = False,
    revision: int = 0,
    exchange: str = "binance",
    symbol: str = "BTC-USDT",
    start: int = T0,
) -> Candle:
    """The i-th 1m candle from `start`; high/low default to close +- 0.05%."""
    c = Decimal(close)
    hi = Decimal(high) if high is not None else c * Decimal("1.0005")
    lo = Decimal(low) if low is not None else c * Decimal("0.9995")
    vol = Decimal(0) if empty else Decimal(volume)
    if empty:
        hi = lo = c
    return Candle(
        exchange=exchange,
        symbol=symbol,
        interval="1m",
        window_start_us=start + i * MINUTE_US,
        window_end_us=start + (i + 1) * MINUTE_US,
        open=c,
        high=hi,
        low=lo,
        close=c,
        volume=vol,
        quote_volume=vol * c,
        trade_count=0 if empty else 5,
        taker_buy_volume=vol / 2,
        taker_buy_quote_volume=vol * c / 2,
        vwap=None if empty else c,
        first_trade_id=None,
        last_trade_id=None,
        revision=revision,
        is_empty=empty,
    )


def noisy_series(
    n: int, *, exchange: str = "binance", symbol: str = "BTC-USDT", base: str = "100"
) -> list[Candle]:
    """A calm series with a fixed, small wiggle in price, volume and range (no rule fires)."""
    wiggle_p = [0, 3, -2, 4, -1, 2, -3, 1]  # in basis points x 1/10 of the base price
    wiggle_v = [10, 12, 9, 11, 13, 8, 10, 12, 9, 11]
    wiggle_r = ["0.9996", "0.9994", "0.9995", "0.9993", "0.9996"]
    out = []
    b = Decimal(base)
    for i in range(n):
        close = b * (1 + Decimal(wiggle_p[i % 8]) / Decimal(10_000))
        low = close * Decimal(wiggle_r[i % 5])
        out.append(
            candle(
                i,
                close,
                str(wiggle_v[i % 10]),
                high=str(close * Decimal("1.0004")),
                low=str(low),
                exchange=exchange,
                symbol=symbol,
            )
        )
    return out


def coinm_1m_candles() -> list[Candle]:
    """1m candles of the real Binance COIN-M BTCUSD_PERP day, aggregated here in the batch way.

    Open/close by (transact_time, agg_trade_id); volume in contracts; empty minutes flat at
    the previous close. Only the fields the detectors read need to be exact.
    """
    trades: list[tuple[int, int, Decimal, Decimal]] = []
    with zipfile.ZipFile(COINM_DAY) as zf:
        name = zf.namelist()[0]
        with zf.open(name) as raw:
            for row in csv.DictReader(io.TextIOWrapper(raw, "utf-8")):
                trades.append(
                    (
                        int(row["transact_time"]) * 1000,
                        int(row["agg_trade_id"]),
                        Decimal(row["price"]),
                        Decimal(row["quantity"]),
                    )
                )
    trades.sort()
    by_minute: dict[int, list[tuple[int, int, Decimal, Decimal]]] = {}
    for t in trades:
        by_minute.setdefault(t[0] - t[0] % MINUTE_US, []).append(t)
    out: list[Candle] = []
    first, last = min(by_minute), max(by_minute)
    prev_close: Decimal | None = None
    for ws in range(first, last + MINUTE_US, MINUTE_US):
        ts = by_minute.get(ws)
        if not ts:
            assert prev_close is not None
            out.append(
                candle((ws - T0) // MINUTE_US, prev_close, empty=True, symbol="BTC-USD-PERP")
            )
            continue
        prices = [t[2] for t in ts]
        vol = sum((t[3] for t in ts), Decimal(0))
        prev_close = ts[-1][2]
        c = candle(
            (ws - T0) // MINUTE_US,
            prev_close,
            vol,
            high=str(max(prices)),
            low=str(min(prices)),
            symbol="BTC-USD-PERP",
        )
        out.append(Candle(**{**_fields(c), "open": ts[0][2]}))
    return out


def _fields(c: Candle) -> dict[str, Any]:
    return {f: getattr(c, f) for f in c.__slots__}
