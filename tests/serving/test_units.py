"""Pure parts of serving: decimal/cursor conversion, validation, generated stubs."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from serving import convert, validate
from serving import pb as pbmod
from serving.pb import pb
from tests.serving import data


@given(
    st.decimals(
        min_value=Decimal("-1e19"),
        max_value=Decimal("1e19"),
        places=18,
        allow_nan=False,
        allow_infinity=False,
    )
)
def test_decimal_text_is_exact(d):
    text = convert.dec_str(d)
    assert "E" not in text and "e" not in text
    assert Decimal(text) == d


def test_real_candles_round_trip_through_proto():
    for c in data.spot_candles()[:50] + data.perp_candles()[:50]:
        msg = pb.Candle.FromString(convert.candle_to_pb(c).SerializeToString())
        assert convert.candle_from_pb(msg) == c


def test_cursor_token_round_trip():
    pos = {("candles.v1", 0): 5, ("candles.v1", 2): 9}
    token = convert.cursor_to_token(convert.cursor_to_pb(pos))
    assert convert.cursor_from_pb(convert.cursor_from_token(token)) == pos


@pytest.mark.parametrize("symbol", ["BTC-USDT", "BTC-USD-PERP", "ETH-EUR"])
def test_valid_symbols(symbol):
    validate.get_candles(pb.GetCandlesRequest(symbol=symbol, interval="1m"))


def test_duplicate_cursor_partition_is_rejected():
    req = pb.StreamCandlesRequest(
        symbols=["BTC-USDT"],
        cursor=pb.Cursor(
            offsets=[
                pb.PartitionOffset(topic="c", partition=0, offset=1),
                pb.PartitionOffset(topic="c", partition=0, offset=2),
            ]
        ),
    )
    with pytest.raises(validate.BadArgument) as err:
        validate.stream_candles(req, {"c"})
    assert err.value.field == "cursor.offsets[1]"


def test_stubs_are_fresh(tmp_path):
    """The checked-in stubs (module and .pyi) are what protoc makes of today's .proto: a
    changed .proto or a new grpcio-tools without `python -m serving.pb` fails here."""
    for made, checked_in in zip(pbmod.generate(tmp_path), pbmod.STUBS, strict=True):
        assert made.read_text() == checked_in.read_text(), (
            f"{checked_in.name} is stale: run `python -m serving.pb`"
        )


def test_the_stubs_import_as_a_normal_module():
    import serving.market_data_pb2 as direct

    assert pb is direct
    assert pb.CandleEvent(replay=True).replay is True
