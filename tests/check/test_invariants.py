"""The invariants as pure functions: each catches its violation, none fires on the batch
reference's candles of real trades (and of any slice of them, hypothesis)."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from candleflow import binance_files, reference
from candleflow.domain import Candle, Side, Trade
from candleflow.intervals import parse_intervals
from devstack.sample_data import COINM_DAY
from serving.check.invariants import (
    WindowTrades,
    check_all,
    check_candle,
    missing_windows,
    revision_gaps,
    volume_mismatches,
)
from serving.check.lake import spans

INTERVALS = {iv.name: iv for iv in parse_intervals("1m,5m")}
pytestmark = pytest.mark.skipif(not COINM_DAY.exists(), reason="shared data not present")


@cache
def real_trades() -> tuple[Trade, ...]:
    """The first 20 minutes of the real COIN-M day (aggregate trades, gap-free raw ids)."""
    out = []
    for t in binance_files.read_trades(COINM_DAY):
        if t.event_time_us >= 1_778_198_400_000_000 + 20 * 60_000_000:
            break
        out.append(t)
    return tuple(out)


def window_sums(trades: list[Trade] | tuple[Trade, ...]) -> list[WindowTrades]:
    """What bronze.trades sums to per window, computed independently of the lake readers."""
    sums: dict[tuple, list] = {}
    for t in trades:
        for iv in INTERVALS.values():
            key = (t.exchange, t.symbol, iv.name, iv.window_start(t.event_time_us))
            acc = sums.setdefault(key, [Decimal(0), Decimal(0), 0])
            acc[0] += t.quantity
            acc[1] += t.quantity if t.side is Side.BUY else 0
            acc[2] += t.trade_count
    return [WindowTrades(*k, *v) for k, v in sums.items()]


def candles_of(trades) -> list[Candle]:
    return reference.batch_candles(list(trades), list(INTERVALS))


def test_real_candles_hold_every_invariant() -> None:
    trades = real_trades()
    candles = candles_of(trades)
    assert len(candles) == 20 + 4
    revs = {(c.exchange, c.symbol, c.interval, c.window_start_us): {0, 1} for c in candles}
    assert check_all(candles, window_sums(trades), INTERVALS, revs) == []


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_slice_of_real_trades_holds_every_invariant(data: st.DataObject) -> None:
    trades = real_trades()
    lo = data.draw(st.integers(0, len(trades) - 1))
    hi = data.draw(st.integers(lo + 1, min(len(trades), lo + 3000)))
    part = trades[lo:hi]
    assert check_all(candles_of(part), window_sums(part), INTERVALS) == []


def _one() -> Candle:
    return next(c for c in candles_of(real_trades()[:2000]) if c.trade_count > 3)


@pytest.mark.parametrize(
    ("change", "invariant"),
    [
        ({"open": "high+1"}, "ohlc"),
        ({"close": "low-1"}, "ohlc"),
        ({"low": "high+1"}, "ohlc+vwap"),  # the vwap falls below the new low too
        ({"vwap": "high+1"}, "vwap"),
        ({"vwap": "low-1"}, "vwap"),
        ({"last_trade_id": "last_trade_id+1"}, "trade_count"),
        ({"trade_count": "trade_count-1"}, "trade_count"),
    ],
)
def test_each_candle_invariant_catches_its_violation(change: dict, invariant: str) -> None:
    c = _one()
    assert check_candle(c) == []
    ((name, expr),) = change.items()
    base, op, n = expr[:-2], expr[-2], int(expr[-1])
    value = getattr(c, base) + (n if op == "+" else -n)
    bad = dataclasses.replace(c, **{name: value})
    got = check_candle(bad)
    assert got and {v.invariant for v in got} == set(invariant.split("+"))
    assert (got[0].exchange, got[0].symbol, got[0].interval, got[0].window_start_us) == (
        c.exchange,
        c.symbol,
        c.interval,
        c.window_start_us,
    )


def test_trade_count_only_for_gap_free_exchanges() -> None:
    bad = dataclasses.replace(_one(), last_trade_id=_one().last_trade_id + 5)
    assert check_candle(bad, gap_free=("coinbase",)) == []
    assert [v.invariant for v in check_candle(bad, gap_free=("binance",))] == ["trade_count"]


def test_vwap_slack_is_relative_and_tiny() -> None:
    c = _one()
    assert check_candle(dataclasses.replace(c, vwap=c.high * (1 + Decimal("1e-13")))) == []
    assert check_candle(dataclasses.replace(c, vwap=c.high * (1 + Decimal("1e-11"))))


def test_missing_window_between_and_where_trades_are() -> None:
    trades = real_trades()
    candles = candles_of(trades)
    ones = sorted((c for c in candles if c.interval == "1m"), key=lambda c: c.window_start_us)
    gone = ones[7]
    kept = [c for c in candles if c is not gone]
    sums = window_sums(trades)
    got = missing_windows(kept, sums, INTERVALS)
    assert [(v.interval, v.window_start_us) for v in got] == [("1m", gone.window_start_us)]
    assert "bronze.trades has trades" in got[0].detail
    # Without the bronze side, the hole between two candles is still one.
    got = missing_windows(kept, [], INTERVALS)
    assert [(v.interval, v.window_start_us) for v in got] == [("1m", gone.window_start_us)]
    assert "between" in got[0].detail
    # An idle window's empty candle fills the hole.
    empty = dataclasses.replace(gone, is_empty=True, trade_count=0)
    assert missing_windows([*kept, empty], [], INTERVALS) == []


def test_volume_mismatch_names_the_field_and_both_values() -> None:
    trades = list(real_trades())
    dropped = trades.pop(500)
    candles = candles_of(real_trades())
    got = volume_mismatches(candles, window_sums(trades))
    assert sorted(v.interval for v in got) == ["1m", "5m"]
    for v in got:
        size = INTERVALS[v.interval].micros
        assert v.window_start_us == dropped.event_time_us - dropped.event_time_us % size
        assert "volume" in v.detail and "bronze.trades" in v.detail


def test_revision_gaps() -> None:
    key = ("binance", "BTC-USD-PERP", "1m", 0)
    assert revision_gaps({key: {0}}) == []
    assert revision_gaps({key: {0, 1, 2}}) == []
    got = revision_gaps({key: {0, 2, 5}})
    assert [v.detail for v in got] == [
        "revision 2 without revision 1",
        "revision 5 without revision 4",
    ]
    assert [v.detail for v in revision_gaps({key: {1}})] == ["revision 1 without revision 0"]


@settings(max_examples=300, deadline=None)
@given(
    start=st.integers(0, 10**13),
    length=st.integers(0, 10**10),
)
def test_spans_hold_exactly_the_whole_windows(start: int, length: int) -> None:
    end = start + length
    for s in spans(start, end, list(INTERVALS.values())):
        size = s.interval.micros
        assert s.start_us % size == 0 and s.end_us % size == 0
        assert start <= s.start_us < s.end_us <= end
        assert s.start_us - size < start  # no whole window left out before
        assert s.end_us + size > end  # nor after


def test_settle_delay_covers_grace_lateness_and_idle_flush() -> None:
    from candleflow.config import CandleSettings
    from serving.check.runner import settle_us

    # 60 s grace (15m, 1h) + 300 s allowed lateness + 60 s idle flush + 120 s commit margin
    assert settle_us(CandleSettings()) == 540_000_000
    assert settle_us(CandleSettings(allowed_lateness_seconds=0)) == 240_000_000
