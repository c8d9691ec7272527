"""The ingest hot path's shortcuts give exactly what the plain, checked routes give.

- make_trade builds real, frozen Trades equal to Trade(...);
- validated Decimals cached by text equal Decimal(text), and invalid texts are refused
  (also after a valid one was cached), with the same reject reason as without the cache;
- the encoder's per-value byte cache writes fastavro's bytes and never lets a bad value
  through;
- the Binance fast path and its checked path agree trade for trade, reject for reject;
- the connection's batched Prometheus counters end up with exact counts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from decimal import Decimal, InvalidOperation

import pytest
from aiohttp import WSMessage, WSMsgType
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from adapters import avro
from candleflow.domain import InstrumentKind, Side, Trade
from candleflow.records import DecimalRangeError
from ingest import binance, common
from ingest.avro_trade import encode_body
from ingest.common import Bad, Reject, RejectReason, dec, make_trade, new_decimal
from ingest.connection import Connection, Endpoint

ARGS = (
    "binance",
    "BTC-USD-PERP",
    "BTCUSD_PERP",
    480537903,
    Decimal("79972.8"),
    Decimal("542.0"),
    Side.SELL,
    1778198400020000,
    1778198400021000,
    1123474160,
    1123474164,
    InstrumentKind.INVERSE,
    Decimal(100),
    None,
)


def test_make_trade_builds_a_real_frozen_trade() -> None:
    t = make_trade(*ARGS)
    assert type(t) is Trade
    assert t == Trade(*ARGS)
    assert [getattr(t, f.name) for f in dataclasses.fields(Trade)] == list(ARGS)
    assert hash(t) == hash(Trade(*ARGS))
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.price = Decimal(1)  # type: ignore[misc]
    assert dataclasses.replace(t, trade_id=1).trade_id == 1


# Decimal texts as exchanges send them, and some they should never send.
_digits = st.text("0123456789", min_size=1, max_size=22)
_texts = st.one_of(
    st.builds(lambda a, b: f"{a}.{b}", _digits, _digits),
    _digits,
    st.sampled_from(
        ["0", "0.0", "-1", "-0.5", "NaN", "sNaN", "Infinity", "-Infinity", "1e20", "1E+19"]
    ),
    st.builds(lambda a, e: f"{a}e{e}", _digits, st.integers(-30, 30)),
    st.text(max_size=8),
)


def _plain(text: str) -> Decimal | None:
    """What a validated price/size text means, without any cache."""
    try:
        value = Decimal(text)
        return value if Decimal(0) < value < Decimal(10) ** 20 else None
    except InvalidOperation:
        return None


@given(text=_texts)
def test_cached_decimals_equal_the_plain_route_and_refuse_the_invalid(text: str) -> None:
    expected = _plain(text)
    for _ in range(2):  # the first call may fill the cache, the second reads it
        if expected is None:
            with pytest.raises((InvalidOperation, ValueError)):
                new_decimal(text)
            with pytest.raises(Bad):
                dec(text, "price")
            assert text not in common.decimals
        else:
            got = common.decimals.get(text) or new_decimal(text)
            assert got == expected and str(got) == str(expected)  # same value, same exponent
            assert dec(text, "price") == expected
            assert common.decimals[text] is got  # shared, not re-parsed


def test_reject_reasons_do_not_depend_on_the_cache() -> None:
    common.decimals.clear()
    assert dec("1.5", "p") == Decimal("1.5")
    for text, reason in (
        ("0", RejectReason.NON_POSITIVE),
        ("-1.5", RejectReason.NON_POSITIVE),
        ("NaN", RejectReason.NON_FINITE),
        ("1e20", RejectReason.BAD_TYPE),
        ("1.5x", RejectReason.BAD_TYPE),
    ):
        with pytest.raises(Bad) as exc:
            dec(text, "p")
        assert exc.value.reason is reason, text


def test_the_decimal_cache_is_bounded() -> None:
    common.decimals.clear()
    for i in range(common._DECIMAL_CACHE_MAX + 10):
        new_decimal(f"{i + 1}.5")
    assert len(common.decimals) <= common._DECIMAL_CACHE_MAX
    assert new_decimal("1.5") == Decimal("1.5")


def _trade(price: Decimal, quantity: Decimal) -> Trade:
    return dataclasses.replace(Trade(*ARGS), price=price, quantity=quantity)


@given(
    price=st.decimals(min_value=Decimal("1e-18"), max_value=Decimal("1e19"), places=18),
    zeros=st.integers(0, 3),
)
def test_cached_encoding_equals_fastavro_for_repeated_and_equal_values(
    price: Decimal, zeros: int
) -> None:
    # the same value twice (a cache hit), and an equal value written differently
    sign, digits, exponent = price.as_tuple()
    assert isinstance(exponent, int)
    other = Decimal((sign, digits + (0,) * zeros, exponent - zeros))
    assert other == price
    for p, q in ((price, price), (price, price), (other, price), (price, other)):
        t = _trade(p, q)
        assert encode_body(t) == avro.encode(t)


@pytest.mark.parametrize(
    "bad",
    ["1.0000000000000000001", "1e20", "-1e20", "NaN", "sNaN", "Infinity"],
)
def test_the_encoder_cache_never_passes_a_bad_value(bad: str) -> None:
    good = Decimal("1.5")
    encode_body(_trade(good, good))  # something is cached
    for _ in range(2):
        with pytest.raises(DecimalRangeError):
            encode_body(_trade(Decimal(bad), good))
        with pytest.raises(DecimalRangeError):
            encode_body(_trade(good, Decimal(bad)))


def _frame(**data: object) -> str:
    base: dict[str, object] = {
        "e": "aggTrade",
        "E": 1778198400020,
        "s": "BTCUSD_PERP",
        "a": 480537903,
        "p": "79972.8",
        "q": "542.0",
        "f": 1123474160,
        "l": 1123474164,
        "T": 1778198400020,
        "m": False,
        "M": True,
    }
    base.update(data)
    return json.dumps({"stream": "btcusd_perp@aggTrade", "data": base})


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"p": "0"},
        {"p": "-1"},
        {"q": "NaN"},
        {"q": "Infinity"},
        {"p": "1e20"},
        {"p": 79972.8},
        {"a": "480537903"},  # ids as digit strings: the checked path accepts them
        {"a": -1},
        {"l": 1},
        {"T": "1778198400020"},
        {"m": 0},
        {"s": "NOPE"},
        {"e": "kline"},
    ],
)
def test_binance_fast_path_agrees_with_the_checked_path(change: dict[str, object]) -> None:
    frame = _frame(**change)
    for _ in range(2):  # the second time, the decimal caches are warm
        fast = binance.parse(frame, 1)
        checked = binance._parse_checked(frame, 1, common.DEFAULT_OPTIONS)
        if isinstance(checked, Reject):
            assert isinstance(fast, Reject)
            assert (fast.reason, fast.detail) == (checked.reason, checked.detail)
        else:
            assert fast == checked and type(fast[0]) is Trade


class _CountingSink:
    def __init__(self) -> None:
        self.trades: list[Trade] = []
        self.polls = 0

    def produce_many(self, trades: list[Trade]) -> None:
        self.trades.extend(trades)

    def produce_reject(self, reject: Reject) -> None:
        pass

    def poll(self, timeout: float = 0) -> int:
        self.polls += 1
        return 0


def _value(metric: str, *labels: str) -> float | None:
    return REGISTRY.get_sample_value(metric, dict(zip(_LABELS[metric], labels, strict=True)))


_LABELS = {
    "candleflow_ingest_frames_total": ("exchange", "outcome"),
    "candleflow_ingest_trades_total": ("exchange", "source"),
    "candleflow_ingest_duplicates_total": ("exchange",),
}


def test_connection_metrics_are_batched_but_exact() -> None:
    sink = _CountingSink()
    conn = Connection(Endpoint("binance", "ws://unused.invalid", []), sink)
    names = list(_LABELS)
    before = [
        _value(names[0], "binance", "trades") or 0,
        _value(names[0], "binance", "control") or 0,
        _value(names[1], "binance", "stream") or 0,
        _value(names[2], "binance") or 0,
    ]
    frames = [_frame(a=i, f=i, l=i) for i in range(100, 110)]
    frames += frames[:3]  # duplicates: handled, not produced again
    frames.append(json.dumps({"result": None, "id": 1}))  # control (subscribe ack)
    for frame in frames:
        conn.receive(frame)
    conn.sync_metrics()  # also runs every METRICS_SYNC_S and when a session ends
    after = [
        _value(names[0], "binance", "trades"),
        _value(names[0], "binance", "control"),
        _value(names[1], "binance", "stream"),
        _value(names[2], "binance"),
    ]
    assert [a - b for a, b in zip(after, before, strict=True)] == [13, 1, 10, 3]
    assert [t.trade_id for t in sink.trades] == list(range(100, 110))
    assert (conn.stats.frames, conn.stats.trades, conn.stats.duplicates) == (14, 10, 3)
    conn.sync_metrics()  # nothing new: nothing counted twice
    assert _value(names[1], "binance", "stream") == after[2]


async def test_the_reader_yields_while_frames_are_queued() -> None:
    """receive() returns buffered frames without suspending; the one reader task must still let
    the watchdog and the stop signal run, and a cancel must land between frames."""

    class Flood:  # like aiohttp with frames buffered: receive() never suspends
        def __init__(self) -> None:
            self.sent = 0

        async def receive(self) -> WSMessage:
            if self.sent >= 20_000:  # a reader that never yields ends here, not in a hang
                raise RuntimeError("the reader never yielded")
            self.sent += 1
            return WSMessage(WSMsgType.TEXT, _frame(a=self.sent, f=self.sent, l=self.sent), None)

    sink = _CountingSink()
    conn = Connection(Endpoint("binance", "ws://unused.invalid", []), sink)
    ws = Flood()
    reader = asyncio.create_task(conn._read(ws))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)  # returns only if the reader yields
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert conn.stats.frames >= 64
    # every frame handed out was handled whole, in order, before the cancel landed
    assert [t.trade_id for t in sink.trades] == list(range(1, ws.sent + 1))
