"""Real recorded trades per exchange, our candles of them (candleflow.reference), and an
in-memory `OurCandles` for reconciler tests that need no Kafka."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from candleflow import binance_files, reference
from candleflow.domain import Candle, Trade
from devstack.sample_data import BINANCE_FILES, CAPTURES, COINM_DAY
from ingest import coinbase, kraken
from verify.exchange_candles import Market

SPOT_MINUTE = BINANCE_FILES / "BTCUSDT-trades-2025-01-01-0000.csv"
SPOT_KLINE = BINANCE_FILES / "BTCUSDT-1m-2025-01-01-0000.csv"


@cache
def trades(exchange: str) -> tuple[Trade, ...]:
    if exchange == "binance":
        return tuple(binance_files.read_trades(SPOT_MINUTE, symbol="BTCUSDT"))
    if exchange == "binance-coinm":  # the first 2 hours of the COIN-M day
        end = 1778198400_000000 + 2 * 3_600_000_000
        day = binance_files.read_trades(COINM_DAY)
        return tuple(itertools.takewhile(lambda t: t.event_time_us < end, day))
    name, parse = {
        "coinbase": ("coinbase_advanced_market_trades_2026-08-09.jsonl", coinbase.parse),
        "kraken": ("kraken_v1_trade_frames_2021-04-17.jsonl", kraken.parse),
    }[exchange]
    out: list[Trade] = []
    for line in (CAPTURES / name).read_text().splitlines():
        got = parse(line, 0)
        if isinstance(got, list):
            out += got
    return tuple(out)


def candles(exchange: str, intervals: str = "1m,5m") -> list[Candle]:
    return reference.batch_candles(trades(exchange), intervals)


@dataclass
class DictCandles:
    """Our candles from a list: the last one per window wins (as in candles.v1 order)."""

    candles: list[Candle]
    reach_us: int | None = None  # how far our candles reach (default: the last window end)

    def until_us(self, market: Market, interval: str) -> int | None:
        if self.reach_us is not None:
            return self.reach_us
        ends = [c.window_end_us for c in self._of(market, interval)]
        return max(ends, default=None)

    def _of(self, market: Market, interval: str) -> list[Candle]:
        return [
            c
            for c in self.candles
            if (c.exchange, c.symbol, c.interval) == (market.exchange, market.symbol, interval)
        ]

    def windows(
        self, market: Market, interval: str, start_us: int, end_us: int
    ) -> Mapping[int, Candle]:
        return {
            c.window_start_us: c
            for c in self._of(market, interval)
            if start_us <= c.window_start_us < end_us
        }
