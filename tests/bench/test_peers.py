"""bench/peers without a stack: the plain peer's arithmetic, the shuffle and the comparison.

The plain consumer's candle arithmetic (bench/peers/plain_candles.py) runs here on the
real COIN-M day's trades, encoded as ingest writes them and decoded as the peer decodes
them, in orders hypothesis draws: with every window flushed it must equal the batch
reference on every field of every non-empty window. The comparison must find each kind
of difference it reports.
"""

from __future__ import annotations

import dataclasses
import io
import random
from decimal import Decimal
from functools import cache

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.peers import correctness as cx
from bench.peers import plain_candles as plain
from candleflow.domain import Trade
from ingest.avro_trade import encode_body


@cache
def day() -> list[Trade]:
    return cx.day_trades()


@cache
def decoded() -> list[dict]:
    schema = plain.trade_schema()
    return [fastavro.schemaless_reader(io.BytesIO(encode_body(t)), schema, None) for t in day()]


def plain_windows(records: list[dict]) -> list[dict]:
    """The peer's per-trade path without Kafka, every window flushed at the end."""
    windows: dict[tuple, plain.Window] = {}
    for t in records:
        et = t["event_time"]
        key = (t["exchange"], t["symbol"], et - et % plain.WINDOW_US)
        w = windows.get(key)
        if w is None:
            windows[key] = plain.Window(t, plain.quote_amount(t))
        else:
            w.add(t, plain.quote_amount(t))
    return cx.json_candles(
        plain.json.dumps(w.candle(*k)).encode() for k, w in sorted(windows.items())
    )


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32), size=st.integers(1, 3000), offset=st.integers(0, 100_000))
def test_plain_peer_arithmetic_equals_the_reference_in_any_order(seed, size, offset):
    records = decoded()[offset : offset + size]
    trades = day()[offset : offset + size]
    random.Random(seed).shuffle(records)
    got = plain_windows(records)
    c = cx.compare([r for r in cx.reference_candles(trades) if not r.is_empty], got)
    assert (c.missing, c.extra, c.differ) == ([], [], {})


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    jitter=st.floats(0, 30),
    size=st.integers(2, 2000),
    offset=st.integers(0, 100_000),
)
def test_shuffle_keeps_every_trade_and_delays_none_beyond_the_jitter(seed, jitter, size, offset):
    trades = day()[offset : offset + size]
    out = cx.shuffled(trades, jitter, seed)
    assert sorted(out, key=lambda t: t.trade_id) == sorted(trades, key=lambda t: t.trade_id)
    # a trade arrives after a later one only if that one is at most `jitter` later
    latest = out[0].event_time_us
    for t in out:
        assert t.event_time_us >= latest - int(jitter * 1_000_000)
        latest = max(latest, t.event_time_us)


def test_full_day_plain_peer_equals_reference():
    got = plain_windows(decoded())
    ref = cx.reference_candles(day())
    c = cx.compare(ref, got)
    empties = sum(r.is_empty for r in ref)
    assert c.differ == {} and c.extra == []
    assert len(c.missing) == c.missing_empty == empties  # the plain peer writes no empty window


def test_compare_reports_each_kind_of_difference():
    ref = cx.reference_candles(day()[:5000])
    as_dicts = [dataclasses.asdict(c) for c in ref if not c.is_empty]
    assert cx.compare([c for c in ref if not c.is_empty], as_dicts).summary().startswith("equal")
    changed = [dict(d) for d in as_dicts[1:]]  # first window missing
    changed[0]["open"] = changed[0]["open"] + Decimal("0.1")
    changed[1]["trade_count"] += 1
    changed.append({**changed[2], "window_start_us": 0})  # an extra window
    c = cx.compare([r for r in ref if not r.is_empty], changed)
    assert c.missing == [as_dicts[0]["window_start_us"]]
    assert c.differ == {"open": 1, "trade_count": 1}
    assert c.extra == [0]
    # a later revision replaces an earlier one of the same window
    fixed = [{**changed[0], "open": as_dicts[1]["open"], "revision": 1}]
    assert cx.compare([r for r in ref if not r.is_empty], changed + fixed).differ == {
        "trade_count": 1
    }


@pytest.mark.parametrize("text", ["100000:0", "100000:0,500000:2"])
def test_spark_configs_parse(text):
    from bench.peers.run import spark_configs

    assert [f"{a}:{b}" for a, b in spark_configs(text)] == text.split(",")
