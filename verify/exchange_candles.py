"""The exchanges' own candles over REST: request builders and response parsers (pure, no I/O).

- Binance spot `GET /api/v3/klines` (weight 2), COIN-M `GET /dapi/v1/klines` (weight 5 at
  limit 1000): 1000 klines a page, every kline field;
- Coinbase Advanced Trade `GET /api/v3/brokerage/market/products/{id}/candles`: 350 a
  page; open, high, low, close, volume;
- Kraken `GET /0/public/OHLC`: its 720 most recent entries only; open, high, low, close,
  vwap, volume, count.

`COMPARABLE` records, per exchange, which of our candle fields each exchange publishes and
at which precision they are compared (docs/semantics.md, "Reconciling with the exchanges'
own candles"). Base URLs are parameters, so tests point them at local fake exchanges.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from candleflow import epoch
from candleflow.domain import KLINE_FIELDS
from candleflow.intervals import Interval
from candleflow.symbols import base_quote, to_binance

BINANCE_SPOT_URL = "https://api.binance.com"
BINANCE_COINM_URL = "https://dapi.binance.com"
COINBASE_URL = "https://api.coinbase.com"
KRAKEN_URL = "https://api.kraken.com"

# Documented rate limits (what the client's limiter spends, per exchange).
# Binance: REQUEST_WEIGHT 6000/min for spot, 2400/min for COIN-M; klines weigh 2 (spot) and
# 5 (COIN-M, 500 <= limit <= 1000). Coinbase public market endpoints: 10 requests/s per IP.
# Kraken public endpoints: about 1 request/s ("a frequency of 1 per second (or less)").
BINANCE_PAGE = 1000
BINANCE_SPOT_WEIGHT, BINANCE_SPOT_WEIGHT_PER_MINUTE = 2, 6000
BINANCE_COINM_WEIGHT, BINANCE_COINM_WEIGHT_PER_MINUTE = 5, 2400
COINBASE_PAGE, COINBASE_REQUESTS_PER_SECOND = 350, 10.0
KRAKEN_PAGE, KRAKEN_REQUESTS_PER_SECOND = 720, 1.0

_BINANCE_INTERVALS = {"1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d"}
_COINBASE_GRANULARITY = {
    "1m": "ONE_MINUTE",
    "5m": "FIVE_MINUTE",
    "15m": "FIFTEEN_MINUTE",
    "30m": "THIRTY_MINUTE",
    "1h": "ONE_HOUR",
    "2h": "TWO_HOUR",
    "6h": "SIX_HOUR",
    "1d": "ONE_DAY",
}
_KRAKEN_MINUTES = {"1m": 1, "5m": 5, "15m": 15, "30m": 30, "1h": 60, "4h": 240, "1d": 1440}
_KRAKEN_ASSETS = {"BTC": "XBT", "DOGE": "XDG"}


@dataclass(frozen=True, slots=True)
class FieldRule:
    """How one published field is compared.

    exact:   numerically equal (Decimal equality ignores trailing zeros, which Coinbase drops).
    printed: ours rounded half up to the decimals the exchange printed, then equal within
             `tolerance_units` of that last decimal (for values the exchange rounds: Binance's
             8-decimal sums of price x quantity, Kraken's VWAP).
    """

    name: str
    match: str = "exact"
    tolerance_units: int = 0


COMPARABLE: dict[str, tuple[FieldRule, ...]] = {
    "binance": tuple(
        FieldRule(f, "exact" if f == "trade_count" else "printed") for f in KLINE_FIELDS
    ),
    "coinbase": tuple(FieldRule(f) for f in ("open", "high", "low", "close", "volume")),
    "kraken": (
        *(FieldRule(f) for f in ("open", "high", "low", "close", "volume", "trade_count")),
        # Kraken prints the VWAP at the pair's price decimals; its rounding mode is not
        # documented, so one unit of the last printed decimal is accepted either way.
        FieldRule("vwap", "printed", tolerance_units=1),
    ),
}


@dataclass(frozen=True, slots=True)
class Market:
    exchange: str  # binance, coinbase, kraken
    symbol: str  # canonical: BTC-USDT, BTC-USD-PERP (Binance COIN-M)

    @property
    def coinm(self) -> bool:
        return self.exchange == "binance" and self.symbol.count("-") == 2

    def __str__(self) -> str:
        return f"{self.exchange}:{self.symbol}"

    @classmethod
    def parse(cls, text: str) -> Market:
        exchange, _, symbol = text.strip().partition(":")
        if exchange not in COMPARABLE or not symbol:
            raise ValueError(
                f"market {text!r}: expected EXCHANGE:SYMBOL with EXCHANGE one of "
                f"{sorted(COMPARABLE)}, e.g. binance:BTC-USDT"
            )
        return cls(exchange, symbol.upper())


@dataclass(frozen=True, slots=True)
class Request:
    url: str
    params: dict[str, str] = field(default_factory=dict)
    weight: int = 1  # the exchange's rate-limit cost of this call
    start_us: int = 0  # the windows this page asks for: [start_us, end_us)
    end_us: int = 0


@dataclass(frozen=True, slots=True)
class ExchangeCandle:
    market: Market
    interval: str
    window_start_us: int
    values: dict[str, Decimal | int]  # only the fields the exchange publishes


class RateLimited(Exception):  # noqa: N818 (an answer, not a bug)
    """The exchange said "slow down" (HTTP 429/418, Kraken EAPI:Rate limit exceeded)."""

    def __init__(self, detail: str, retry_after_s: float | None = None) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class Unavailable(Exception):  # noqa: N818
    """No usable answer: down, 5xx, timeout, an error body. Never a mismatch."""


@dataclass(frozen=True)
class BaseUrls:
    binance_spot: str = BINANCE_SPOT_URL
    binance_coinm: str = BINANCE_COINM_URL
    coinbase: str = COINBASE_URL
    kraken: str = KRAKEN_URL


def supports(market: Market, interval: str) -> bool:
    if market.exchange == "binance":
        return interval in _BINANCE_INTERVALS
    if market.exchange == "coinbase":
        return interval in _COINBASE_GRANULARITY
    return interval in _KRAKEN_MINUTES


def kraken_pair(symbol: str) -> str:
    base, quote = base_quote(symbol)
    return _KRAKEN_ASSETS.get(base, base) + _KRAKEN_ASSETS.get(quote, quote)


def requests_for(
    market: Market, interval: Interval, start_us: int, end_us: int, urls: BaseUrls
) -> list[Request]:
    """The pages that ask for the windows starting in [start_us, end_us) (aligned)."""
    if not supports(market, interval.name):
        raise ValueError(f"{market} publishes no {interval.name} candles")
    page = {"binance": BINANCE_PAGE, "coinbase": COINBASE_PAGE, "kraken": KRAKEN_PAGE}
    step = page[market.exchange] * interval.micros
    if market.exchange == "kraken":  # pages by `since` only: one call returns up to now
        return [_kraken(market, interval, start_us, end_us, urls)]
    out = []
    for lo in range(start_us, end_us, step):
        hi = min(lo + step, end_us)
        build = _binance if market.exchange == "binance" else _coinbase
        out.append(build(market, interval, lo, hi, urls))
    return out


def _binance(market: Market, interval: Interval, lo: int, hi: int, urls: BaseUrls) -> Request:
    base, path, weight = (
        (urls.binance_coinm, "/dapi/v1/klines", BINANCE_COINM_WEIGHT)
        if market.coinm
        else (urls.binance_spot, "/api/v3/klines", BINANCE_SPOT_WEIGHT)
    )
    params = {
        "symbol": to_binance(market.symbol),
        "interval": interval.name,
        "startTime": str(lo // 1000),
        "endTime": str((hi - 1) // 1000),  # inclusive, on open times
        "limit": str(BINANCE_PAGE),
    }
    return Request(base.rstrip("/") + path, params, weight, lo, hi)


def _coinbase(market: Market, interval: Interval, lo: int, hi: int, urls: BaseUrls) -> Request:
    path = f"/api/v3/brokerage/market/products/{market.symbol}/candles"
    params = {
        "start": str(lo // 1_000_000),
        # `end` is inclusive on candle starts: the last window asked for starts at hi - 1 iv.
        "end": str((hi - interval.micros) // 1_000_000),
        "granularity": _COINBASE_GRANULARITY[interval.name],
        "limit": str(COINBASE_PAGE),
    }
    return Request(urls.coinbase.rstrip("/") + path, params, 1, lo, hi)


def _kraken(market: Market, interval: Interval, lo: int, hi: int, urls: BaseUrls) -> Request:
    params = {
        "pair": kraken_pair(market.symbol),
        "interval": str(_KRAKEN_MINUTES[interval.name]),
        # Entries after `since` (exclusive): one window earlier so the first is included.
        "since": str((lo - interval.micros) // 1_000_000),
    }
    return Request(urls.kraken.rstrip("/") + "/0/public/OHLC", params, 1, lo, hi)


# --- responses ------------------------------------------------------------------------------


def _dec(value: Any, what: str) -> Decimal:
    if not isinstance(value, str):  # the exchanges print decimals as strings; a float lost digits
        raise Unavailable(f"bad response: {what} is {type(value).__name__}, not a decimal string")
    try:
        out = Decimal(value)
    except InvalidOperation:
        raise Unavailable(f"bad response: {what} {value!r} is not a number") from None
    if not out.is_finite():
        raise Unavailable(f"bad response: {what} {value!r} is not finite")
    return out


def _json(body: bytes | str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Unavailable(f"bad response: not JSON: {body[:120]!r}") from None


def _time_us(value: Any, unit_us: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise Unavailable(f"bad response: time {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise Unavailable(f"bad response: time {value!r}") from None
    # Binance answers in ms, or in µs where asked (timeUnit=MICROSECOND): the magnitude
    # tells them apart (candleflow.epoch, as for trades)
    return epoch.to_us(number) if unit_us == 1000 else number * unit_us


def parse(body: bytes | str, market: Market, interval: Interval) -> list[ExchangeCandle]:
    """The candles of a successful (HTTP 200) answer, oldest first. Raises RateLimited for
    Kraken's in-body rate limit, Unavailable for anything that is not candles."""
    obj = _json(body)
    if market.exchange == "binance":
        rows = _binance_rows(obj)
    elif market.exchange == "coinbase":
        rows = _coinbase_rows(obj)
    else:
        rows = _kraken_rows(obj)
    out = [ExchangeCandle(market, interval.name, start, values) for start, values in rows]
    return sorted(out, key=lambda c: c.window_start_us)


Row = tuple[int, dict[str, Decimal | int]]


def _binance_rows(obj: Any) -> list[Row]:
    if isinstance(obj, dict):  # {"code": -1121, "msg": "Invalid symbol."}
        raise Unavailable(f"Binance error {obj.get('code')}: {obj.get('msg')}")
    if not isinstance(obj, list):
        raise Unavailable("bad response: Binance klines are not an array")
    out: list[Row] = []
    for row in obj:
        if not isinstance(row, list) or len(row) < 11:
            raise Unavailable(f"bad response: kline row {str(row)[:80]}")
        values: dict[str, Decimal | int] = {}
        for i, name in enumerate(KLINE_FIELDS):
            column = row[i + 1] if i < 5 else row[i + 2]  # column 6 is the close time
            if name == "trade_count":
                if isinstance(column, bool) or not isinstance(column, int):
                    raise Unavailable(f"bad response: trade count {column!r}")
                values[name] = column
            else:
                values[name] = _dec(column, name)
        out.append((_time_us(row[0], 1000), values))
    return out


def _coinbase_rows(obj: Any) -> list[Row]:
    if not isinstance(obj, dict) or not isinstance(obj.get("candles"), list):
        detail = obj.get("error") or obj.get("message") if isinstance(obj, dict) else None
        raise Unavailable(f"bad response: no candles in the Coinbase answer ({detail})")
    out: list[Row] = []
    for c in obj["candles"]:
        if not isinstance(c, dict):
            raise Unavailable(f"bad response: candle {str(c)[:80]}")
        values: dict[str, Decimal | int] = {
            f: _dec(c.get(f), f) for f in ("open", "high", "low", "close", "volume")
        }
        out.append((_time_us(c.get("start"), 1_000_000), values))
    return out


def _kraken_rows(obj: Any) -> list[Row]:
    if not isinstance(obj, dict):
        raise Unavailable("bad response: Kraken answer is not an object")
    errors = obj.get("error") or []
    if any(str(e).startswith("EAPI:Rate limit") for e in errors):
        raise RateLimited(f"Kraken: {', '.join(map(str, errors))}")
    if errors:
        raise Unavailable(f"Kraken error: {', '.join(map(str, errors))}")
    result = obj.get("result")
    series = [v for k, v in (result or {}).items() if k != "last" and isinstance(v, list)]
    if len(series) != 1:
        raise Unavailable("bad response: Kraken OHLC result without exactly one pair")
    out: list[Row] = []
    for row in series[0]:
        if not isinstance(row, list) or len(row) != 8:
            raise Unavailable(f"bad response: OHLC entry {str(row)[:80]}")
        count = row[7]
        if isinstance(count, bool) or not isinstance(count, int):
            raise Unavailable(f"bad response: OHLC count {count!r}")
        values: dict[str, Decimal | int] = {
            name: _dec(row[i], name)
            for i, name in enumerate(("open", "high", "low", "close", "vwap", "volume"), start=1)
        }
        values["trade_count"] = count
        out.append((_time_us(row[0], 1_000_000), values))
    return out
