"""Generated market scenarios for the batched property tests (tests/jobs/test_properties.py,
tests/jobs/test_backfill_properties.py).

One scenario is one market (a distinct symbol): real-looking trades (a price random walk on
a tick grid, quantities on a lot grid, exact Decimals; SPOT, LINEAR or INVERSE; plain or
aggregate trades) around an hour or a day boundary, and an adversarial arrival order: trades
out of order within the grace, late within and beyond the allowed lateness, duplicates.
Markets are independent in the job (per-market clocks), so hundreds of scenarios share one
Flink run: the run is the expensive part, a scenario costs almost nothing.

Scenarios come from a seeded `random.Random`, not from hypothesis: one run draws thousands of
them, beyond what a hypothesis example can hold. The seed is printed by the tests and taken
from CANDLEFLOW_PROPERTY_SEED when set, so a failing run is replayed exactly. The same
generator takes hypothesis' `st.randoms()` in the pure-Python tests.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, replace
from decimal import Decimal

from candleflow.domain import InstrumentKind, Side, Trade

DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
S_US = 1_000_000
DAY0 = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z
SPANS_S = (90, 600, 2_400, 9_000)  # a scenario's length: 1.5 min .. 2.5 h
INTERVAL_CHOICES = ("1m", "5m", "15m", "1h")


def seed() -> int:
    """CANDLEFLOW_PROPERTY_SEED, or a fresh random seed (printed by the tests)."""
    text = os.environ.get("CANDLEFLOW_PROPERTY_SEED")
    return int(text) if text else random.SystemRandom().randrange(2**32)


def scale() -> int:
    """CANDLEFLOW_PROPERTY_SCALE: scenarios per run are multiplied by it (the long run)."""
    return max(1, int(os.environ.get("CANDLEFLOW_PROPERTY_SCALE", "1")))


@dataclass(frozen=True)
class Market:
    exchange: str
    symbol: str
    native: str
    kind: InstrumentKind
    contract_size: Decimal | None


def real_price(rng: random.Random) -> tuple[Decimal, Decimal]:
    """A start price from 0.0001 to 100,000 and its tick (5 significant digits, >= 1e-8)."""
    exponent = rng.randint(-4, 5)
    tick = Decimal(1).scaleb(max(exponent - 4, -8))
    start = Decimal(rng.randint(10_000, 99_999)).scaleb(exponent - 4)
    return start.quantize(tick), tick


def anchor(rng: random.Random, day: int, span_us: int) -> int:
    """A start time so that the scenario crosses a day boundary or an hour boundary."""
    boundary = DAY0 + day * DAY_US + rng.choice([0, 0, rng.randint(1, 23)]) * HOUR_US
    return boundary - rng.randint(0, span_us)


def market_trades(
    rng: random.Random,
    market: Market,
    start_us: int,
    span_us: int,
    *,
    n: int,
    ms_times: bool = False,
    aggregate: bool = False,
    first_id: int = 1,
    unknown_side: bool = True,
) -> list[Trade]:
    """`n` trades in event order over [start, start + span]: bursts at one timestamp, gaps of
    empty windows, trades exactly on (and 1 µs before) hour boundaries."""
    times: list[int] = []
    for _ in range(n):
        r = rng.random()
        if times and r < 0.15:
            times.append(rng.choice(times))  # the same timestamp as another trade
        elif r < 0.22:
            # Exactly on an hour boundary inside the span, or just before it.
            hour = start_us + span_us // 2
            hour -= hour % HOUR_US
            times.append(hour - rng.choice([0, 0, 1, 1_000]))
        else:
            times.append(start_us + rng.randint(0, span_us))
    if ms_times:
        times = [t - t % 1000 for t in times]
    times.sort()
    price, tick = real_price(rng)
    lot = Decimal(1).scaleb(-rng.randint(0, 8))
    inverse = market.kind is InstrumentKind.INVERSE
    trades = []
    raw = rng.choice([1, 4_090, 1_123_474_160])
    for i, at in enumerate(times):
        price = max(tick, price + tick * rng.randint(-3, 3))
        qty = Decimal(rng.randint(1, 500)) if inverse else lot * rng.randint(1, 20_000)
        span = rng.randint(1, 4) if aggregate else 0
        trades.append(
            Trade(
                exchange=market.exchange,
                symbol=market.symbol,
                native_symbol=market.native,
                trade_id=first_id + i,
                price=price,
                quantity=qty,
                side=rng.choice([Side.BUY, Side.SELL] + ([Side.UNKNOWN] if unknown_side else [])),
                event_time_us=at,
                ingest_time_us=at,
                first_trade_id=raw if aggregate else None,
                last_trade_id=raw + span - 1 if aggregate else None,
                kind=market.kind,
                contract_size=market.contract_size,
            )
        )
        raw += span
    return trades


def arrival(
    rng: random.Random, trades: list[Trade], grace_us: int, lateness_us: int, longest_us: int
) -> list[tuple[int, Trade]]:
    """(arrival time, trade) in arrival order: most on time, some out of order within the
    grace, some late within or beyond the allowed lateness, some sent twice."""
    out = []
    for n, t in enumerate(trades):
        r = rng.random()
        if r < 0.70:
            delay = 0
        elif r < 0.80:
            delay = rng.randint(0, grace_us)  # out of order, never late
        elif r < 0.88:
            delay = rng.randint(0, longest_us + lateness_us)  # around the lateness edge
        elif r < 0.95:
            delay = lateness_us + rng.randint(longest_us, 3 * longest_us + lateness_us)
        else:
            delay = rng.randint(0, HOUR_US)
        out.append((t.event_time_us + delay, n, t))
        if rng.random() < 0.07:  # a redelivery
            out.append((t.event_time_us + delay + rng.randint(0, 2 * lateness_us), n, t))
    out.sort(key=lambda x: (x[0], x[1]))
    return [(at, t) for at, _, t in out]


@dataclass(frozen=True)
class Scenario:
    index: int
    market: Market
    trades: list[Trade]  # event order
    arrivals: list[tuple[int, Trade]]  # arrival order, duplicates included


def stream_market(rng: random.Random, index: int) -> Market:
    exchange = rng.choice(["binance", "coinbase", "kraken"])
    kind = rng.choice(list(InstrumentKind))
    symbol = f"P{index}X-USD" + ("-PERP" if kind is not InstrumentKind.SPOT else "")
    size = Decimal(rng.choice([10, 100])) if kind is InstrumentKind.INVERSE else None
    return Market(exchange, symbol, symbol.replace("-", ""), kind, size)


def stream_scenarios(
    rng: random.Random,
    count: int,
    *,
    grace_us: int,
    lateness_us: int,
    longest_us: int,
    first_index: int = 0,
) -> list[Scenario]:
    """`count` markets, mostly one after the other in time (day by day, so a market goes
    quiet for good while the next trades, and the watermark runs far ahead of it), some
    overlapping the previous one."""
    out = []
    day = 0
    for k in range(first_index, first_index + count):
        day += 0 if rng.random() < 0.3 else 1
        market = stream_market(rng, k)
        span = rng.choice(SPANS_S) * S_US
        trades = market_trades(
            rng,
            market,
            anchor(rng, day, span),
            span,
            n=rng.choice([1, 2, rng.randint(3, 12), rng.randint(10, 60)]),
            ms_times=rng.random() < 0.3,
            aggregate=rng.random() < 0.3,
            first_id=rng.choice([1, 4_090, 1_234_567_890_123]),
        )
        arrivals = arrival(rng, trades, grace_us, lateness_us, longest_us)
        out.append(Scenario(k, market, trades, arrivals))
    return out


def merged_arrival(scenarios: list[Scenario]) -> list[Trade]:
    """All markets' trades in one arrival order (each market keeps its own)."""
    keyed = [(at, s.index, n, t) for s in scenarios for n, (at, t) in enumerate(s.arrivals)]
    keyed.sort(key=lambda x: x[:3])
    return [replace(t, ingest_time_us=at) for at, _, _, t in keyed]
