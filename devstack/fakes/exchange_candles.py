"""A local exchange serving its own candles over REST, in each exchange's exact format:

  Binance spot   GET /api/v3/klines       [[openTime ms, "o","h","l","c","v", closeTime ms,
  Binance COIN-M GET /dapi/v1/klines        "quoteVolume", count, "takerBase", "takerQuote", "0"]]
  Coinbase       GET /api/v3/brokerage/market/products/{id}/candles
                   {"candles": [{"start": "<unix s>", "low", "high", "open", "close", "volume"}]}
                   newest first, trailing zeros dropped, windows without trades left out
  Kraken         GET /0/public/OHLC  {"error": [], "result": {"XXBTZUSD": [[time, "o", "h",
                   "l", "c", "vwap", "volume", count]], "last": time}}, the 720 most recent only

(the response examples of ../shared/reference/binance/binance-rest-api.md, Coinbase's
Advanced Trade and Kraken's REST documentation). The candles are the exchange's view of
real recorded trades (candleflow.reference), printed at the exchange's decimals. Faults:
  override[(symbol, interval, window_start_us, field)] = text   a planted wrong value
  missing = {(symbol, interval, window_start_us)}                a window the exchange lacks
  rate_limited = n   the next n calls answer "slow down" (429 + Retry-After; Kraken
                     EAPI:Rate limit exceeded in a 200); status_ban=418 for Binance's ban
  down = True        every call answers 503 (stop() the server for refused connections)
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from aiohttp import web

from candleflow.domain import Candle
from candleflow.symbols import from_binance
from devstack.fakes.server import LocalServer, free_port

_GRANULARITY_US = {
    "ONE_MINUTE": 60_000_000,
    "FIVE_MINUTE": 300_000_000,
    "FIFTEEN_MINUTE": 900_000_000,
    "ONE_HOUR": 3_600_000_000,
}
_KRAKEN_KEYS = {"XBTUSD": "XXBTZUSD", "ETHUSD": "XETHZUSD", "XMRUSD": "XXMRZUSD"}


def fixed(value: Decimal | None, decimals: int) -> str:
    """Printed with exactly `decimals` decimals, rounded half up (Binance, Kraken)."""
    return str((value or Decimal(0)).quantize(Decimal(1).scaleb(-decimals), ROUND_HALF_UP))


def plain(value: Decimal) -> str:
    """Coinbase's printing: no trailing zeros, never an exponent."""
    text = format(value.normalize(), "f")
    return text


@dataclass
class FakeCandleExchange(LocalServer):
    candles: list[Candle]  # the exchange's truth, per (symbol, interval, window)
    price_decimals: int = 8
    volume_decimals: int = 8
    override: dict[tuple[str, str, int, str], str] = field(default_factory=dict)
    missing: set[tuple[str, str, int]] = field(default_factory=set)
    rate_limited: int = 0
    status_ban: int = 429
    retry_after_s: int = 1
    down: bool = False
    now_us: int | None = None  # Kraken's "most recent 720": counted back from here
    calls: list[tuple[float, str, dict[str, str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.port = free_port()
        self.by_market: dict[tuple[str, str], list[Candle]] = {}
        for c in sorted(self.candles, key=lambda c: c.window_start_us):
            self.by_market.setdefault((c.symbol, c.interval), []).append(c)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/api/v3/klines", self._binance)
        app.router.add_get("/dapi/v1/klines", self._binance)
        app.router.add_get("/api/v3/brokerage/market/products/{product}/candles", self._coinbase)
        app.router.add_get("/0/public/OHLC", self._kraken)

    # --- shared ---------------------------------------------------------------------------

    def _refused(self, request: web.Request, kraken: bool = False) -> web.Response | None:
        self.calls.append((time.monotonic(), request.path, dict(request.query)))
        if self.down:
            return web.Response(status=503, text="Service Unavailable")
        if self.rate_limited > 0:
            self.rate_limited -= 1
            if kraken:
                return web.json_response({"error": ["EAPI:Rate limit exceeded"], "result": {}})
            return web.json_response(
                {"code": -1003, "msg": "Too many requests; please use the websocket."},
                status=self.status_ban,
                headers={"Retry-After": str(self.retry_after_s)},
            )
        return None

    def _windows(self, symbol: str, interval: str, lo: int, hi: int) -> Iterable[Candle]:
        for c in self.by_market.get((symbol, interval), []):
            if lo <= c.window_start_us <= hi and (symbol, interval, c.window_start_us) not in (
                self.missing
            ):
                yield c

    def _value(self, c: Candle, name: str, text: str) -> str:
        return self.override.get((c.symbol, c.interval, c.window_start_us, name), text)

    # --- Binance --------------------------------------------------------------------------

    async def _binance(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        q = request.query
        symbol, interval = from_binance(q["symbol"]), q["interval"]
        lo, hi = int(q["startTime"]) * 1000, int(q["endTime"]) * 1000
        rows = []
        p, v = self.price_decimals, self.volume_decimals
        for c in list(self._windows(symbol, interval, lo, hi))[: int(q.get("limit", "500"))]:

            def f(name: str, decimals: int, c: Candle = c) -> str:
                return self._value(c, name, fixed(getattr(c, name), decimals))

            count = self._value(c, "trade_count", str(c.trade_count))
            rows.append(
                [
                    c.window_start_us // 1000,
                    f("open", p),
                    f("high", p),
                    f("low", p),
                    f("close", p),
                    f("volume", v),
                    c.window_end_us // 1000 - 1,
                    f("quote_volume", 8),
                    int(count),
                    f("taker_buy_volume", v),
                    f("taker_buy_quote_volume", 8),
                    "0",
                ]
            )
        return web.json_response(rows, headers={"X-MBX-USED-WEIGHT-1M": str(2 * len(self.calls))})

    # --- Coinbase -------------------------------------------------------------------------

    async def _coinbase(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        q = request.query
        interval = {60_000_000: "1m", 300_000_000: "5m", 900_000_000: "15m", 3_600_000_000: "1h"}[
            _GRANULARITY_US[q["granularity"]]
        ]
        lo, hi = int(q["start"]) * 1_000_000, int(q["end"]) * 1_000_000
        out = []
        for c in self._windows(request.match_info["product"], interval, lo, hi):
            if c.is_empty:
                continue  # Coinbase has no candle for a window without trades
            out.append(
                {"start": str(c.window_start_us // 1_000_000)}
                | {
                    name: self._value(c, name, plain(getattr(c, name)))
                    for name in ("low", "high", "open", "close", "volume")
                }
            )
        out.reverse()  # newest first
        return web.json_response({"candles": out[: int(q.get("limit", "350"))]})

    # --- Kraken ---------------------------------------------------------------------------

    async def _kraken(self, request: web.Request) -> web.Response:
        refused = self._refused(request, kraken=True)
        if refused is not None:
            return refused
        q = request.query
        pair, minutes = q["pair"], int(q["interval"])
        interval = {1: "1m", 5: "5m", 15: "15m", 60: "1h"}[minutes]
        base, quote = pair[:-3], pair[-3:]
        symbol = f"{'BTC' if base == 'XBT' else base}-{quote}"
        since = int(q.get("since", "0")) * 1_000_000
        all_rows = list(self._windows(symbol, interval, 0, 2**62))
        if self.now_us is not None:  # only the 720 most recent entries are kept
            oldest = self.now_us - 720 * minutes * 60_000_000
            all_rows = [c for c in all_rows if c.window_start_us >= oldest]
        rows = []
        p, v = self.price_decimals, self.volume_decimals
        for c in all_rows:
            if c.window_start_us <= since:
                continue

            def f(name: str, decimals: int, c: Candle = c) -> str:
                return self._value(c, name, fixed(getattr(c, name), decimals))

            rows.append(
                [
                    c.window_start_us // 1_000_000,
                    f("open", p),
                    f("high", p),
                    f("low", p),
                    f("close", p),
                    f("vwap", p),
                    f("volume", v),
                    int(self._value(c, "trade_count", str(c.trade_count))),
                ]
            )
        last = rows[-1][0] if rows else since // 1_000_000
        return web.json_response(
            {"error": [], "result": {_KRAKEN_KEYS.get(pair, pair): rows, "last": last}}
        )
