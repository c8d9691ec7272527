"""A corpus of bad frames made by corrupting real recorded trade frames: each one gives
exactly one Reject with the right reason, and nothing raises. Plus hypothesis invariants."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from candleflow.domain import Side
from devstack.sample_data import CAPTURES
from ingest import ADAPTERS, binance, coinbase, kraken
from ingest.captures import read_frames
from ingest.common import ParseOptions, Reject, RejectReason, TradeBatch

R = RejectReason


def _trade_frames() -> list[tuple[str, str]]:
    """(exchange, raw frame) of every recorded trade frame (one per distinct frame)."""
    out: dict[str, str] = {}
    for name in (
        "binance_spot_ws_frames_2021-10-12.jsonl",
        "coinbase_advanced_market_trades_2026-08-09.jsonl",
        "coinbase_exchange_matches_2021-04-17.jsonl",
        "kraken_v1_trade_frames_2021-04-17.jsonl",
    ):
        for frame in read_frames(CAPTURES / name):
            result = ADAPTERS[frame.exchange].parse(frame.data, 0)
            if isinstance(result, TradeBatch) and result:
                out[frame.data] = frame.exchange
    return [(ex, data) for data, ex in out.items()]


def _trade_obj(exchange: str, obj: Any) -> Any:
    """The (first) trade object inside a frame, to corrupt in place."""
    if exchange == "binance":
        return obj["data"]
    if exchange == "coinbase":
        return obj["events"][0]["trades"][0] if "channel" in obj else obj
    return obj[1][0]  # kraken v1 array row


# field names per exchange: price, quantity, symbol, time (kraken v1 rows are positional)
FIELDS = {
    "binance": ("p", "q", "s", "T"),
    "coinbase": ("price", "size", "product_id", "time"),
    "kraken": (0, 1, None, 2),
}

Mutation = Callable[[str, Any], None]


def _set(field: int) -> Callable[[Any], Mutation]:
    def make(value: Any) -> Mutation:
        def mutate(exchange: str, obj: Any) -> None:
            _trade_obj(exchange, obj)[FIELDS[exchange][field]] = value

        return mutate

    return make


def _drop(field: int) -> Mutation:
    def mutate(exchange: str, obj: Any) -> None:
        trade, key = _trade_obj(exchange, obj), FIELDS[exchange][field]
        if isinstance(trade, list):
            del trade[key:]
        else:
            del trade[key]

    return mutate


def _unknown_symbol(exchange: str, obj: Any) -> None:
    if exchange == "binance":
        obj["data"]["s"] = "NOTAPAIR"
    elif exchange == "coinbase":
        _trade_obj(exchange, obj)["product_id"] = "not a product"
    else:
        obj[-1] = "XBTUSD"  # no slash: not a Kraken pair name


def _unexpected(exchange: str, obj: Any) -> None:
    if exchange == "binance":
        obj["data"]["e"] = "depthUpdate"
    elif exchange == "coinbase":
        if "channel" in obj:
            obj["channel"] = "level2"
        else:
            obj["type"] = "open"
    else:
        obj[-2] = "spread"


def _far_future(exchange: str, obj: Any) -> None:
    trade = _trade_obj(exchange, obj)
    if exchange == "binance":
        trade["T"] = 4_000_000_000_000
    elif exchange == "coinbase":
        trade["time"] = "2096-01-01T00:00:00.000001Z"
    else:
        trade[2] = "4000000000.000001"


price, qty, symbol_field, when = _set(0), _set(1), _set(2), _set(3)

# (name, mutation, expected reason)
CORRUPTIONS: list[tuple[str, Mutation, RejectReason]] = [
    ("price_missing", _drop(0), R.MISSING_FIELD),
    ("price_null", price(None), R.MISSING_FIELD),
    ("price_list", price([1]), R.BAD_TYPE),
    ("price_float", price(1.5), R.BAD_TYPE),
    ("price_text", price("abc"), R.BAD_TYPE),
    ("price_zero", price("0"), R.NON_POSITIVE),
    ("price_negative", price("-1.5"), R.NON_POSITIVE),
    ("qty_negative", qty("-0.001"), R.NON_POSITIVE),
    ("price_nan", price("NaN"), R.NON_FINITE),
    ("qty_inf", qty("Infinity"), R.NON_FINITE),
    ("time_text", when("yesterday"), R.BAD_TYPE),
    ("unknown_symbol", _unknown_symbol, R.UNKNOWN_SYMBOL),
    ("unexpected_type", _unexpected, R.UNEXPECTED_MESSAGE),
    ("clock_skew", _far_future, R.CLOCK_SKEW),
]
LIVE = ParseOptions(max_skew_us=300_000_000)
NOW_US = 1_800_000_000_000_000  # any clock: the skew check is off unless asked for


def _corpus() -> list[tuple[str, str, str, RejectReason]]:
    corpus = []
    for exchange, raw in _trade_frames():
        for name, mutate, reason in CORRUPTIONS:
            obj = json.loads(raw)
            mutate(exchange, obj)
            # compact, as exchanges send them
            corpus.append((exchange, name, json.dumps(obj, separators=(",", ":")), reason))
        # truncated JSON: the frame cut in half
        corpus.append((exchange, "truncated", raw[: len(raw) // 2], R.MALFORMED_JSON))
        corpus.append((exchange, "not_utf8", "\udcff" + raw, R.MALFORMED_JSON))
    return corpus


CORPUS = _corpus()


def test_corpus_is_large_and_covers_every_reason() -> None:
    assert len(CORPUS) >= 100
    assert {reason for *_, reason in CORPUS} == set(RejectReason)
    assert {exchange for exchange, *_ in CORPUS} == {"binance", "coinbase", "kraken"}


@pytest.mark.parametrize(
    ("exchange", "name", "frame", "reason"),
    CORPUS,
    ids=[f"{e}-{n}-{i}" for i, (e, n, _, _) in enumerate(CORPUS)],
)
def test_each_bad_frame_is_one_reject_with_its_reason(
    exchange: str, name: str, frame: str, reason: RejectReason
) -> None:
    # the clock-skew case runs with the live check on, at a clock the recording never saw
    is_skew = reason is R.CLOCK_SKEW
    result = ADAPTERS[exchange].parse(
        frame, NOW_US if not is_skew else 1_700_000_000_000_000, LIVE if is_skew else ParseOptions()
    )
    assert isinstance(result, Reject), name
    assert result.reason is reason, (name, result.detail)
    assert result.exchange == exchange and result.raw == frame
    record = json.loads(result.to_json())
    assert record["reason"] == reason.value and record["exchange"] == exchange


@pytest.mark.parametrize("adapter", [binance, coinbase, kraken])
@given(blob=st.one_of(st.text(max_size=200), st.binary(max_size=200)))
@settings(max_examples=150, deadline=None)
def test_arbitrary_input_never_raises(adapter: Any, blob: str | bytes) -> None:
    result = adapter.parse(blob, 0)
    assert isinstance(result, Reject | TradeBatch)


_decimal_text = st.decimals(
    min_value=Decimal("1e-8"),
    max_value=Decimal("1e9"),
    allow_nan=False,
    allow_infinity=False,
    places=8,
).map(str)


@given(
    price_text=_decimal_text,
    qty_text=_decimal_text,
    maker=st.booleans(),
    ms=st.integers(min_value=1_500_000_000_000, max_value=4_000_000_000_000),
    trade_id=st.integers(min_value=0, max_value=2**62),
)
def test_binance_round_trip_is_exact(
    price_text: str, qty_text: str, maker: bool, ms: int, trade_id: int
) -> None:
    frame = json.dumps(
        {
            "stream": "btcusdt@trade",
            "data": {
                "e": "trade",
                "E": ms,
                "s": "BTCUSDT",
                "t": trade_id,
                "p": price_text,
                "q": qty_text,
                "T": ms,
                "m": maker,
                "M": True,
            },
        },
        separators=(",", ":"),
    )
    result = binance.parse(frame, 0)
    assert isinstance(result, TradeBatch)
    assert result == binance.parse(frame.encode(), 0)  # str and bytes frames agree
    (t,) = result
    assert str(t.price) == price_text and str(t.quantity) == qty_text  # exact, digit for digit
    assert t.price > 0 and t.quantity > 0
    assert t.side in (Side.BUY, Side.SELL, Side.UNKNOWN)
    assert t.side is (Side.SELL if maker else Side.BUY)
    assert t.event_time_us == ms * 1000 and t.trade_id == trade_id


@given(
    price=st.decimals(allow_nan=True, allow_infinity=True),
    size=st.decimals(allow_nan=True, allow_infinity=True),
    side=st.sampled_from(["buy", "sell", "BUY", "SELL", "b", "x", ""]),
)
def test_coinbase_never_yields_a_non_positive_size(
    price: Decimal, size: Decimal, side: str
) -> None:
    frame = json.dumps(
        {
            "type": "match",
            "trade_id": 1,
            "product_id": "BTC-USD",
            "price": str(price),
            "size": str(size),
            "side": side,
            "time": "2021-04-17T16:43:30.244075Z",
        }
    )
    result = coinbase.parse(frame, 0)
    if isinstance(result, TradeBatch):
        (t,) = result
        assert t.quantity > 0 and t.price > 0 and t.quantity.is_finite()
        assert t.quantity == size and t.price == price
        assert t.side in (Side.BUY, Side.SELL)
    else:
        assert result.reason in {R.NON_POSITIVE, R.NON_FINITE, R.BAD_TYPE}
