"""Reconciler configuration from the environment (CANDLEFLOW_VERIFY_*)."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from candleflow.env_settings import EnvSettings, PortOrOff
from candleflow.intervals import Interval, parse_intervals
from verify.exchange_candles import (
    BINANCE_COINM_URL,
    BINANCE_SPOT_URL,
    COINBASE_URL,
    KRAKEN_URL,
    BaseUrls,
    Market,
)


class VerifySettings(EnvSettings):
    model_config = SettingsConfigDict(env_prefix="CANDLEFLOW_VERIFY_", extra="ignore")

    # The markets to reconcile, EXCHANGE:SYMBOL, comma separated.
    markets: str = "binance:BTC-USDT"
    intervals: str = "1m,5m,15m,1h"
    # A window is checked once it closed this long ago: the allowed lateness (300 s by
    # default, CANDLEFLOW_CANDLES_ALLOWED_LATENESS_SECONDS) + the largest grace (60 s) + a
    # margin, so the candle compared is the one no late trade can still correct.
    settle_seconds: float = Field(default=420.0, ge=0)
    # At start, windows this far back are checked (candles.v1 is replayed from there).
    lookback_seconds: float = Field(default=3600.0, gt=0)
    cycle_seconds: float = Field(default=30.0, gt=0)
    # Share of each exchange's documented rate limit the reconciler may spend (per IP).
    budget_fraction: float = Field(default=0.5, gt=0, le=1)
    max_pages_per_cycle: int = Field(default=5, ge=1)
    binance_spot_url: str = BINANCE_SPOT_URL
    binance_coinm_url: str = BINANCE_COINM_URL
    coinbase_url: str = COINBASE_URL
    kraken_url: str = KRAKEN_URL
    metrics_port: PortOrOff = 9466
    log_level: str = "INFO"

    @field_validator("markets")
    @classmethod
    def _markets(cls, value: str) -> str:
        for text in value.split(","):
            Market.parse(text)
        return value

    @field_validator("intervals")
    @classmethod
    def _intervals(cls, value: str) -> str:
        parse_intervals(value)
        return value

    def market_list(self) -> list[Market]:
        return [Market.parse(t) for t in self.markets.split(",") if t.strip()]

    def interval_list(self) -> list[Interval]:
        return parse_intervals(self.intervals)

    def urls(self) -> BaseUrls:
        return BaseUrls(
            self.binance_spot_url, self.binance_coinm_url, self.coinbase_url, self.kraken_url
        )
