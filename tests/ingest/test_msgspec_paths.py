"""The msgspec fast paths give exactly what the checked (orjson + hand checks) paths give.

Real recorded frames, intact and corrupted every way hypothesis finds (fields retyped,
removed, duplicated, added, huge or negative numbers, the raw text cut or spliced): the
fast `parse` and the checked path agree trade for trade, and reject for reject with the
same reason and detail — msgspec refusing a frame only ever sends it to the checked path.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from candleflow.binance_files import read_trades
from candleflow.domain import Trade
from candleflow.records import MAX_MICROS
from devstack.fakes.exchange import binance_agg_frames
from devstack.sample_data import CAPTURES, COINM_DAY
from ingest import ADAPTERS, binance, coinbase
from ingest.captures import read_frames
from ingest.common import (
    DEFAULT_OPTIONS,
    MAX_LONG,
    Bad,
    ParseOptions,
    Reject,
    TradeBatch,
    iso_to_us,
    iso_to_us_fast,
)

LIVE = ParseOptions(symbols=frozenset({"BTC-USD-PERP", "NKN-USDT"}), max_skew_us=300_000_000)


def _binance_frames() -> list[str]:
    coin_m = [
        t
        for _, t in zip(
            range(300),
            read_trades(COINM_DAY),
            strict=False,
        )
    ]
    frames = binance_agg_frames(coin_m, "BTCUSD_PERP")
    for f in read_frames(CAPTURES / "binance_spot_ws_frames_2021-10-12.jsonl"):
        if '"aggTrade"' in f.data or '"e":"trade"' in f.data:
            frames.append(f.data)
    # the raw @trade stream (spot), built from the same real values
    frames += [
        json.dumps(
            {
                "stream": "btcusdt@trade",
                "data": {
                    "e": "trade",
                    "E": t.event_time_us // 1000,
                    "s": "BTCUSDT",
                    "t": t.trade_id,
                    "p": str(t.price),
                    "q": str(t.quantity),
                    "T": t.event_time_us // 1000,
                    "m": t.side.value == "SELL",
                    "M": True,
                },
            },
            separators=(",", ":"),
        )
        for t in coin_m[:50]
    ]
    return frames


BINANCE_FRAMES = _binance_frames()

_json_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 2**63 - 1, 2**63, 2**64 - 1, 2**64, 10**13, 10**13 - 1, 10**17]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["", "0", "-1", "1e20", "NaN", "Infinity", "1.5", "12", " 1", "1_0", "٣"]),
    st.text(max_size=12),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _agree(module: Any, frame: str | bytes, ingest: int, options: ParseOptions) -> None:
    fast = module.parse(frame, ingest, options)
    checked = module._parse_checked(frame, ingest, options)
    if isinstance(checked, Reject):
        assert isinstance(fast, Reject), (frame, fast)
        assert (fast.reason, fast.detail, fast.raw) == (checked.reason, checked.detail, checked.raw)
    else:
        assert isinstance(fast, TradeBatch), (frame, fast)
        assert fast == checked and all(type(t) is Trade for t in fast)
        assert (fast.control, fast.sequence) == (checked.control, checked.sequence)


def test_binance_fast_path_takes_every_real_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    checked = {f: binance._parse_checked(f, 1, DEFAULT_OPTIONS) for f in BINANCE_FRAMES}
    monkeypatch.setattr(binance, "_parse_checked", None)  # a fallback would fail here
    for frame in BINANCE_FRAMES:
        assert binance.parse(frame, 1) == checked[frame]


@settings(max_examples=400, deadline=None)
@given(
    index=st.integers(min_value=0),
    where=st.sampled_from(["data", "wrapper"]),
    key=st.sampled_from(
        ["e", "E", "s", "a", "t", "p", "q", "f", "l", "T", "m", "M", "x", "stream", "data"]
    ),
    action=st.sampled_from(["set", "delete", "duplicate"]),
    value=_json_values,
    live=st.booleans(),
)
def test_binance_fast_and_checked_paths_agree_on_corrupted_frames(
    index: int, where: str, key: str, action: str, value: Any, live: bool
) -> None:
    frame = BINANCE_FRAMES[index % len(BINANCE_FRAMES)]
    obj = json.loads(frame)
    ingest = obj["data"]["T"] * 1000  # the live skew check passes on the intact frame
    target = obj if where == "wrapper" else obj["data"]
    if action == "set":
        target[key] = value
    elif action == "delete":
        target.pop(key, None)
    text = json.dumps(obj, separators=(",", ":"))
    if action == "duplicate":  # JSON allows a repeated key; the last one counts
        text = (
            text[:-1] + "," + json.dumps({key: value})[1:-1] + "}"
            if where == "wrapper"
            else text.replace('"data":{', '"data":{' + json.dumps({key: value})[1:-1] + ",", 1)
        )
    options = LIVE if live else DEFAULT_OPTIONS
    for f in (text, text.encode()):
        for _ in range(2):  # the second time, the caches are warm
            _agree(binance, f, ingest, options)


@settings(max_examples=300, deadline=None)
@given(
    index=st.integers(min_value=0),
    cut=st.integers(min_value=0),
    insert=st.sampled_from(["", "0", "-", '"', "\\", ",", "}", "{", " ", "\x00", "\ud800", "é"]),
    drop=st.integers(min_value=0, max_value=3),
)
def test_binance_paths_agree_on_spliced_text(index: int, cut: int, insert: str, drop: int) -> None:
    frame = BINANCE_FRAMES[index % len(BINANCE_FRAMES)]
    at = cut % (len(frame) + 1)
    text = frame[:at] + insert + frame[at + drop :]
    _agree(binance, text, 1, DEFAULT_OPTIONS)
    _agree(binance, text.encode("utf-8", "surrogatepass"), 1, DEFAULT_OPTIONS)


def test_adapters_are_registered() -> None:
    assert ADAPTERS["binance"] is binance


_INTACT = BINANCE_FRAMES[0]


def test_binance_paths_agree_where_msgspec_and_orjson_read_json_differently() -> None:
    cases = [
        # orjson reads an integer past 64 bits as a float (a BAD_TYPE id), msgspec as an int
        _INTACT.replace('"a":', '"a":123456789012345678901234567890,"x":', 1),
        _INTACT.replace(',"M":true', ',"M":true,"a":123456789012345678901234567890'),
        _INTACT.replace(',"M":true', ',"M":true,"a":9223372036854775808'),
        _INTACT.replace(',"M":true', ',"M":true,"l":18446744073709551615'),
        # orjson refuses a number that overflows a double, even in an ignored field
        _INTACT.replace('"E":', '"E":1e400,"x":', 1),
        _INTACT.replace(',"M":true', ',"M":true,"E":1e400'),
        # the event tag repeated, the wrapper's data repeated
        _INTACT.replace(',"M":true', ',"M":true,"e":"trade"'),
        _INTACT[:-1] + ',"data":{"e":"kline"}}',
    ]
    for frame in cases:
        _agree(binance, frame, 1, DEFAULT_OPTIONS)
        assert isinstance(binance.parse(frame, 1), Reject), frame
    # a repeated key: the last one counts, on both paths
    frame = _INTACT.replace("{", '{"data":null,', 1)
    _agree(binance, frame, 1, DEFAULT_OPTIONS)
    assert binance.parse(frame, 1) == binance.parse(_INTACT, 1)


COINBASE_FRAMES = [
    f.data
    for f in read_frames(CAPTURES / "coinbase_advanced_market_trades_2026-08-09.jsonl")
    if '"market_trades"' in f.data
]


def test_coinbase_fast_path_takes_every_real_market_trades_frame() -> None:
    assert len(COINBASE_FRAMES) > 40
    for frame in COINBASE_FRAMES:
        fast = coinbase._fast_market_trades(frame, 1, DEFAULT_OPTIONS)  # no fallback needed
        checked = coinbase._parse_checked(frame, 1, DEFAULT_OPTIONS)
        assert fast == checked and fast.sequence == checked.sequence  # type: ignore[union-attr]


@settings(max_examples=400, deadline=None)
@given(
    index=st.integers(min_value=0),
    row=st.integers(min_value=0),
    where=st.sampled_from(["row", "row", "event", "wrapper"]),
    key=st.sampled_from(
        [
            "product_id",
            "trade_id",
            "price",
            "size",
            "time",
            "side",
            "x",
            "type",
            "trades",
            "channel",
            "events",
            "sequence_num",
            "timestamp",
            "client_id",
        ]
    ),
    action=st.sampled_from(["set", "delete", "duplicate"]),
    value=_json_values,
    live=st.booleans(),
)
def test_coinbase_fast_and_checked_paths_agree_on_corrupted_frames(
    index: int, row: int, where: str, key: str, action: str, value: Any, live: bool
) -> None:
    frame = COINBASE_FRAMES[index % len(COINBASE_FRAMES)]
    obj = json.loads(frame)
    trades = [t for e in obj["events"] for t in e["trades"]]
    if not trades:
        return
    ingest = coinbase.parse(frame, 1)[0].event_time_us  # type: ignore[index]
    target = {"row": trades[row % len(trades)], "event": obj["events"][0], "wrapper": obj}[where]
    if action == "set":
        target[key] = value
    elif action == "delete":
        target.pop(key, None)
    text = json.dumps(obj, separators=(",", ":"))
    if action == "duplicate":  # a repeated key: the last one counts
        text = text[:-1] + "," + json.dumps({key: value})[1:-1] + "}"
    options = (
        ParseOptions(symbols=frozenset({"BTC-USD"}), max_skew_us=60_000_000)
        if live
        else DEFAULT_OPTIONS
    )
    for f in (text, text.encode()):
        _agree(coinbase, f, ingest, options)


@settings(max_examples=200, deadline=None)
@given(
    index=st.integers(min_value=0),
    cut=st.integers(min_value=0),
    insert=st.sampled_from(["", "0", "-", '"', "\\", ",", "}", "]", " ", "\ud800", "9" * 30]),
    drop=st.integers(min_value=0, max_value=3),
)
def test_coinbase_paths_agree_on_spliced_text(index: int, cut: int, insert: str, drop: int) -> None:
    frame = COINBASE_FRAMES[index % len(COINBASE_FRAMES)]
    at = cut % (len(frame) + 1)
    text = frame[:at] + insert + frame[at + drop :]
    _agree(coinbase, text, 1, DEFAULT_OPTIONS)


_iso_texts = st.one_of(
    st.datetimes(timezones=st.none()).map(lambda d: d.isoformat() + "Z"),
    st.builds(
        lambda d, digits: d.strftime("%Y-%m-%dT%H:%M:%S") + digits + "Z",
        st.datetimes(timezones=st.none()),
        st.sampled_from(["", ".", ".5", ".123456", ".123456789", ".1234567890", ".12a", ".١"]),
    ),
    st.text(alphabet="0123456789-T:.Z ", min_size=18, max_size=32),
)


@settings(max_examples=500, deadline=None)
@given(text=_iso_texts)
def test_iso_to_us_fast_equals_iso_to_us_wherever_it_returns(text: str) -> None:
    try:
        expected: int | None = iso_to_us(text, "time")
    except Bad:
        expected = None
    for _ in range(2):  # the second time, the seconds cache is warm
        try:
            got = iso_to_us_fast(text)
        except (Bad, ValueError, LookupError):
            continue  # the callers fall back to iso_to_us
        assert got == expected, text
    assert expected is None or iso_to_us_fast(text[:19] + ".5Z") == iso_to_us(
        text[:19] + ".5Z", "time"
    )


@settings(max_examples=300, deadline=None)
@given(
    index=st.integers(min_value=0),
    order=st.sampled_from(["as is", "reversed", "shuffled", "duplicate", "mixed products"]),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_coinbase_paths_agree_on_row_order(index: int, order: str, seed: int) -> None:
    """The fast path reverses a snapshot (one product, ids strictly falling) instead of
    sorting it: any other order (rising, shuffled, a repeated id, several products) must
    come out exactly as the checked path's sort by (symbol, trade_id)."""
    import random

    frame = COINBASE_FRAMES[index % len(COINBASE_FRAMES)]
    obj = json.loads(frame)
    rows = [t for e in obj["events"] for t in e["trades"]]
    if not rows:
        return
    rnd = random.Random(seed)
    if order == "reversed":
        rows.reverse()
    elif order == "shuffled":
        rnd.shuffle(rows)
    elif order == "duplicate":
        rows.insert(rnd.randrange(len(rows) + 1), dict(rnd.choice(rows)))
    elif order == "mixed products":
        for r in rnd.sample(rows, max(1, len(rows) // 3)):
            r["product_id"] = "ETH-USD" if r["product_id"] != "ETH-USD" else "BTC-USD"
    obj["events"] = [{"type": "update", "trades": rows}]
    text = json.dumps(obj, separators=(",", ":"))
    _agree(coinbase, text, 1, DEFAULT_OPTIONS)
    fast = coinbase.parse(text, 1)
    assert isinstance(fast, TradeBatch)
    keys = [(t.symbol, t.trade_id) for t in fast]
    assert keys == sorted(keys)


@pytest.mark.parametrize("field", ["a", "f", "l", "T"])
@pytest.mark.parametrize(
    "value",
    [-1, 0, 1, 10**13 - 1, 10**13, MAX_MICROS, MAX_MICROS + 1, MAX_LONG, MAX_LONG + 1, 2**64],
)
def test_binance_paths_agree_at_the_range_limits(field: str, value: int) -> None:
    """Ids (Avro longs >= 0) and the trade time (> 0, up to year 9999, ms or µs) are
    range-checked by msgspec constraints on the fast path: the same trades and rejects as
    the checked path at and around every limit."""
    for frame in BINANCE_FRAMES[:3]:
        obj = json.loads(frame)
        obj["data"][field] = value
        if field == "a":  # keep first <= last around the aggregate id
            obj["data"]["f"] = obj["data"]["l"] = min(max(value, 0), MAX_LONG)
        _agree(binance, json.dumps(obj), 1, DEFAULT_OPTIONS)


@settings(max_examples=500, deadline=None)
@given(
    first=_iso_texts,
    second=st.one_of(
        _iso_texts,
        st.sampled_from(
            [".5Z", ".12345Z", ".123456Z", ".1234567Z", ".123456789Z", ".1234567890Z", ".12a"]
        ),
    ),
)
def test_coinbase_paths_agree_on_row_times(first: str, second: str) -> None:
    """Row times through the market_trades fast path (a cache of "YYYY-MM-DDTHH:MM:SS."
    seconds, then the fraction digits): the same trades or rejects as the checked path's
    iso_to_us, cold and warm, for any text and for a second row sharing the first's second
    with another fraction."""
    if second.startswith("."):
        second = first[:19] + second
    obj = json.loads(COINBASE_FRAMES[0])
    rows = [t for e in obj["events"] for t in e["trades"]][:2]
    rows[0]["time"], rows[1]["time"] = first, second
    obj["events"] = [{"type": "update", "trades": rows}]
    text = json.dumps(obj, separators=(",", ":"))
    for _ in range(2):
        _agree(coinbase, text, 1, DEFAULT_OPTIONS)
