"""Hypothesis strategies: several markets' trades in an adversarial arrival order.

Each market gets trades over ~20 minutes with gaps (empty windows), equal timestamps,
aggregate trades, INVERSE contracts, then an arrival order where some trades are delayed
(some within, some beyond the allowed lateness) and some are sent twice.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import strategies as st

from candleflow.domain import InstrumentKind, Side, Trade

T0 = 1_778_198_400_000_000  # 2026-05-08T00:00:00Z, aligned to every interval
PRICES = [Decimal(p) for p in ("99.5", "100", "100.25", "101", "98.75", "100.125")]
QTYS = [Decimal(q) for q in ("0.001", "0.5", "1", "2.25", "10", "0.00012345")]


@st.composite
def market_trades(draw, exchange: str, symbol: str) -> list[Trade]:
    inverse = draw(st.booleans()) and draw(st.booleans())
    n = draw(st.integers(min_value=1, max_value=30))
    # Offsets in seconds over ~20 minutes; duplicates of a time give equal timestamps.
    offsets = sorted(draw(st.lists(st.integers(0, 1200), min_size=n, max_size=n)))
    quiet_after = draw(st.integers(0, 1200))  # an idle market stops early
    offsets = [o for o in offsets if o <= quiet_after] or offsets[:1]
    trades = []
    raw_id = 1000
    # Ids in the first dedup bitmap, across a bitmap boundary (4,096 ids each), and large.
    id_base = draw(st.sampled_from([0, 4_090, 1_234_567_890_123]))
    for i, off in enumerate(offsets):
        span = draw(st.integers(1, 3)) if draw(st.booleans()) else None
        first = raw_id if span else None
        last = raw_id + span - 1 if span else None
        raw_id += span or 1
        us = T0 + off * 1_000_000 + draw(st.sampled_from([0, 0, 1, 999_999]))
        trades.append(
            Trade(
                exchange=exchange,
                symbol=symbol,
                native_symbol=symbol.replace("-", ""),
                trade_id=id_base + i + 1,
                price=draw(st.sampled_from(PRICES)),
                quantity=draw(st.sampled_from(QTYS)),
                side=draw(st.sampled_from([Side.BUY, Side.SELL, Side.UNKNOWN])),
                event_time_us=us,
                ingest_time_us=us,
                first_trade_id=first,
                last_trade_id=last,
                kind=InstrumentKind.INVERSE if inverse else InstrumentKind.SPOT,
                contract_size=Decimal(100) if inverse else None,
            )
        )
    return trades


@st.composite
def arrival_order(draw, trades: list[Trade]) -> list[Trade]:
    """Event-time order, then some trades delayed by up to 8 minutes, some duplicated."""
    keyed = [(t.event_time_us, n, t) for n, t in enumerate(trades)]
    out = []
    for arrival, n, t in keyed:
        if draw(st.integers(0, 9)) == 0:
            arrival += draw(st.integers(1, 480)) * 1_000_000  # late by up to 8 min
        out.append((arrival, n, t))
        if draw(st.integers(0, 14)) == 0:
            out.append((arrival + draw(st.integers(0, 300)) * 1_000_000, n, t))  # duplicate
    out.sort(key=lambda x: (x[0], x[1]))
    return [t for _, _, t in out]


@st.composite
def interleave(draw, sequences: list[list[Trade]]) -> list[Trade]:
    """Merge per-market arrival sequences, keeping each market's own order."""
    queues = [list(s) for s in sequences if s]
    out = []
    while queues:
        i = draw(st.integers(0, len(queues) - 1))
        out.append(queues[i].pop(0))
        if not queues[i]:
            queues.pop(i)
    return out


@st.composite
def scenario(draw, markets: int = 8) -> list[Trade]:
    sequences = []
    for m in range(markets):
        exchange = ["binance", "coinbase", "kraken"][m % 3]
        trades = draw(market_trades(exchange, f"S{m}-USD"))
        sequences.append(draw(arrival_order(trades)))
    return draw(interleave(sequences))
