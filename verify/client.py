"""REST client of the exchanges' candle endpoints: their documented rate limits and backoff.

- Each exchange has one `Limiter` (a token bucket over its documented budget: Binance's
  request weight per minute, Coinbase's and Kraken's requests per second), shared by every
  market of that exchange, so the reconciler never causes a 429 by itself.
- A 429 or 418 (Binance's IP ban) pauses the whole exchange for `Retry-After` seconds
  (Binance: "a 429 ... to prevent a ban, a 418 ... until the ban is over"), a Kraken
  `EAPI:Rate limit exceeded` (HTTP 200) for the backoff; Binance's `X-MBX-USED-WEIGHT-1M`
  header near the limit pauses until the next minute.
- 5xx, timeouts and refused connections are retried with exponential backoff.
When the answer does not come, `fetch_candles` raises `RateLimited` or `Unavailable`: the
caller keeps those windows pending. Neither is ever a mismatch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import aiohttp

from candleflow.intervals import Interval
from verify.exchange_candles import (
    BINANCE_COINM_WEIGHT_PER_MINUTE,
    BINANCE_SPOT_WEIGHT_PER_MINUTE,
    COINBASE_REQUESTS_PER_SECOND,
    KRAKEN_REQUESTS_PER_SECOND,
    ExchangeCandle,
    Market,
    RateLimited,
    Request,
    Unavailable,
    parse,
)

Events = Callable[[str, str], None]  # (exchange, event): rate_limited, retry, unavailable


class Limiter:
    """A token bucket: `capacity` units per `period_s`, spent by `acquire(cost)`; `pause`
    stops every caller until a time (a rate-limit answer)."""

    def __init__(
        self,
        capacity: float,
        period_s: float,
        clock: Callable[[], float] | None = None,
        hard_limit: float | None = None,
    ) -> None:
        self.capacity = capacity
        self.hard_limit = hard_limit  # the exchange's own per-period limit (used-weight header)
        self.rate = capacity / period_s
        self.tokens = capacity
        self.clock = clock or time.monotonic
        self.updated = self.clock()
        self.paused_until = 0.0
        self.lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    async def acquire(self, cost: float = 1.0) -> None:
        async with self.lock:
            while True:
                now = self.clock()
                if now < self.paused_until:
                    await asyncio.sleep(self.paused_until - now)
                    continue
                self._refill()
                if self.tokens >= cost:
                    self.tokens -= cost
                    return
                await asyncio.sleep((cost - self.tokens) / self.rate)

    def pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, self.clock() + seconds)
        self.tokens = 0.0


def limiters(budget_fraction: float = 0.5) -> dict[str, Limiter]:
    """One limiter per exchange (and Binance API), at a fraction of the documented budget:
    the exchanges count per IP, and ingest's REST backfill spends from the same budget."""
    f = budget_fraction
    return {
        "binance": Limiter(
            BINANCE_SPOT_WEIGHT_PER_MINUTE * f, 60.0, hard_limit=BINANCE_SPOT_WEIGHT_PER_MINUTE
        ),
        "binance-coinm": Limiter(
            BINANCE_COINM_WEIGHT_PER_MINUTE * f, 60.0, hard_limit=BINANCE_COINM_WEIGHT_PER_MINUTE
        ),
        "coinbase": Limiter(max(1.0, COINBASE_REQUESTS_PER_SECOND * f), 1.0),
        "kraken": Limiter(1.0, 1.0 / max(KRAKEN_REQUESTS_PER_SECOND * f, 0.01)),
    }


def limiter_key(market: Market) -> str:
    return "binance-coinm" if market.coinm else market.exchange


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    backoff_s: float = 0.5  # doubled per retry
    max_backoff_s: float = 30.0
    # A longer Retry-After (a Binance ban lasts 2 minutes to 3 days) is not waited out in
    # the call: the windows stay pending and the exchange stays paused.
    max_wait_s: float = 60.0
    timeout_s: float = 10.0


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


async def fetch_candles(
    session: aiohttp.ClientSession,
    request: Request,
    market: Market,
    interval: Interval,
    limiter: Limiter,
    policy: RetryPolicy | None = None,
    events: Events | None = None,
) -> list[ExchangeCandle]:
    """The exchange's candles of one page; RateLimited or Unavailable when it will not say."""
    p = policy or RetryPolicy()
    note = events or (lambda _exchange, _event: None)
    delay = p.backoff_s
    problem: Exception = Unavailable(f"{request.url}: no attempt made")
    for attempt in range(p.attempts):
        if attempt:
            note(market.exchange, "retry")
        banned_s = limiter.paused_until - limiter.clock()
        if banned_s > p.max_wait_s:  # another market's call was told to stay away that long
            raise RateLimited(f"{market}: {market.exchange} paused for {banned_s:.0f}s", banned_s)
        await limiter.acquire(request.weight)
        try:
            async with session.get(
                request.url,
                params=request.params,
                timeout=aiohttp.ClientTimeout(total=p.timeout_s),
            ) as resp:
                body = await resp.read()
                used = resp.headers.get("X-MBX-USED-WEIGHT-1M")
                hard = limiter.hard_limit
                if used and used.isdigit() and hard and int(used) >= hard * 0.9:
                    limiter.pause(60.0 - time.time() % 60.0)  # the next minute's budget
                if resp.status == 200:
                    return parse(body, market, interval)
                if resp.status in (429, 418):
                    after = _retry_after(resp.headers)
                    problem = RateLimited(f"{market}: HTTP {resp.status}", after)
                elif resp.status >= 500:
                    problem = Unavailable(f"{market}: HTTP {resp.status}: {body[:120]!r}")
                else:  # 4xx: our request is wrong (unknown symbol...): retrying will not help
                    raise Unavailable(f"{market}: HTTP {resp.status}: {body[:200]!r}")
        except RateLimited as exc:  # Kraken: in a 200 answer
            problem = exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            problem = Unavailable(f"{market}: {type(exc).__name__}: {exc}")
        if isinstance(problem, RateLimited):
            note(market.exchange, "rate_limited")
            wait = max(delay, problem.retry_after_s or 0.0)
            limiter.pause(wait)  # every market of the exchange waits (in acquire)
            if wait > p.max_wait_s:
                raise problem
        elif attempt + 1 < p.attempts:
            await asyncio.sleep(delay)
        delay = min(delay * 2, p.max_backoff_s)
    note(market.exchange, "unavailable" if isinstance(problem, Unavailable) else "gave_up")
    raise problem
