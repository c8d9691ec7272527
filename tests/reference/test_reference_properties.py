"""Properties of the reference itself: arrival-order invariance without lateness,
conservation, and the late decision against a brute-force restatement of the rule."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from candleflow.config import CandleSettings
from candleflow.domain import Candle, InstrumentKind, Side, Trade
from candleflow.intervals import Interval
from candleflow.reference import batch_candles, dedup, stream_reference

from .common import T0

INTERVALS = ["1m", "5m"]
PRICES = [Decimal(p) for p in ("99.5", "100", "100.25", "101", "0.00012345")]
QTYS = [Decimal(q) for q in ("0.001", "1", "2.5", "7")]


@st.composite
def trade_lists(draw: st.DrawFn) -> list[Trade]:
    """Trades of 1-2 markets over ~12 minutes, then shuffled, some sent twice. The
    COIN-M market has aggregate trades (several raw trades each) in contracts."""
    trades = []
    markets = draw(
        st.sampled_from(
            [["BTC-USDT"], ["BTC-USDT", "ETH-USDT"], ["BTC-USD-PERP"], ["BTC-USD-PERP", "ETH-USDT"]]
        )
    )
    for symbol in markets:
        inverse = symbol.endswith("-PERP")
        n = draw(st.integers(1, 25))
        raw = 1000
        for tid in range(1, n + 1):
            at = T0 + draw(st.integers(0, 720_000)) * 1000  # ms steps, ties possible
            size = draw(st.integers(1, 3)) if inverse else 1
            trades.append(
                Trade(
                    "binance",
                    symbol,
                    symbol.replace("-", ""),
                    tid,
                    draw(st.sampled_from(PRICES)),
                    Decimal(draw(st.integers(1, 500))) if inverse else draw(st.sampled_from(QTYS)),
                    draw(st.sampled_from([Side.BUY, Side.SELL])),
                    at,
                    at,
                    raw if inverse else None,
                    raw + size - 1 if inverse else None,
                    InstrumentKind.INVERSE if inverse else InstrumentKind.SPOT,
                    Decimal(100) if inverse else None,
                )
            )
            raw += size
    arrival = draw(st.permutations(trades))
    dupes = draw(
        st.lists(
            st.tuples(
                st.integers(0, len(trades) - 1),
                st.integers(0, len(trades)),
                st.sampled_from(PRICES),
            ),
            max_size=4,
        )
    )
    for src, pos, price in dupes:  # a redelivery, possibly with different content
        arrival.insert(pos, replace(trades[src], price=price))
    return arrival


def candle_settings(lateness_s: float) -> CandleSettings:
    # The dedup horizon must outlive every correction (CandleSettings checks it).
    return CandleSettings(
        grace_seconds={"1m": 10, "5m": 30},
        allowed_lateness_seconds=lateness_s,
        dedup_ttl_seconds=max(86_400, lateness_s + 2 * 3600),
    )


def unrevised(candles: list[Candle]) -> list[Candle]:
    return [replace(c, revision=0) for c in candles]


@settings(max_examples=100, deadline=None)
@given(trade_lists())
def test_without_lateness_arrival_order_does_not_matter(arrival: list[Trade]) -> None:
    result = stream_reference(arrival, INTERVALS, candle_settings(10**7))
    assert result.late == []
    assert unrevised(result.final_candles()) == batch_candles(arrival, INTERVALS)
    # and the batch itself is order-independent once duplicates are settled
    assert batch_candles(arrival, INTERVALS) == batch_candles(
        sorted(dedup(arrival), key=lambda t: (t.event_time_us, t.symbol, t.trade_id)), INTERVALS
    )


def brute_force_late(
    accepted: list[Trade], lateness_us: int, s: CandleSettings
) -> set[tuple[str, int, str]]:
    """docs/semantics.md step 2, restated: late iff the market's highest earlier event
    time >= window end + grace + allowed lateness."""
    late = set()
    for i, t in enumerate(accepted):
        earlier = [u.event_time_us for u in accepted[:i] if u.symbol == t.symbol]
        if not earlier:
            continue
        for name in INTERVALS:
            iv = Interval.parse(name)
            if max(earlier) >= iv.window_end(t.event_time_us) + s.grace_us(name) + lateness_us:
                late.add((t.symbol, t.trade_id, name))
    return late


@settings(max_examples=150, deadline=None)
@given(trade_lists(), st.sampled_from([0, 20, 90, 300]))
def test_conservation_and_the_late_decision(arrival: list[Trade], lateness_s: int) -> None:
    s = candle_settings(lateness_s)
    result = stream_reference(arrival, INTERVALS, s)
    assert result.accepted == dedup(arrival)
    late = {(lt.trade.symbol, lt.trade.trade_id, lt.interval) for lt in result.late}
    assert len(late) == len(result.late)
    assert late == brute_force_late(result.accepted, s.allowed_lateness_us, s)
    final = result.final_candles()
    for name in INTERVALS:
        kept = [t for t in result.accepted if (t.symbol, t.trade_id, name) not in late]
        # every accepted trade is in exactly one candle or in the DLQ: the candles are
        # exactly the batch over the non-late trades, and counts add up
        assert unrevised([c for c in final if c.interval == name]) == batch_candles(kept, [name])
        in_candles = sum(c.trade_count for c in final if c.interval == name)
        in_dlq = sum(lt.trade.trade_count for lt in result.late if lt.interval == name)
        assert in_candles + in_dlq == sum(t.trade_count for t in result.accepted)


@settings(max_examples=100, deadline=None)
@given(trade_lists(), st.sampled_from([0, 90, 300]))
def test_revisions_count_up_from_zero(arrival: list[Trade], lateness_s: int) -> None:
    result = stream_reference(arrival, INTERVALS, candle_settings(lateness_s))
    seen: dict[tuple[str, str, int], list[int]] = defaultdict(list)
    for c in result.emissions:
        seen[(c.symbol, c.interval, c.window_start_us)].append(c.revision)
    assert all(revs == list(range(len(revs))) for revs in seen.values())


def test_real_day_in_file_order_has_no_late_trades_and_equals_batch() -> None:
    from candleflow.binance_files import read_trades
    from devstack.sample_data import COINM_DAY

    trades = list(read_trades(COINM_DAY))
    batch = batch_candles(trades, ["1m", "1h"])
    result = stream_reference(trades, ["1m", "1h"])
    assert result.late == [] and result.duplicates == []
    assert result.final_candles() == batch  # in order: no corrections, all revision 0
    assert len([c for c in batch if c.interval == "1m"]) == 1440
    assert sum(c.trade_count for c in batch if c.interval == "1h") == 240_198
