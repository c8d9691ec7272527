"""Pure parts of serving: decimal/cursor conversion, validation, generated stubs."""

from __future__ import annotations

import subprocess
import sys
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


def test_stubs_are_fresh_and_regenerated_from_the_proto(tmp_path):
    """The generated module is what protoc makes of the current .proto, today."""
    assert pbmod.is_fresh()
    out = tmp_path / "gen"
    out.mkdir()
    from grpc_tools import protoc

    include = __import__("pathlib").Path(protoc.__file__).parent / "_proto"
    assert (
        protoc.main(
            [
                "protoc",
                f"-I{pbmod.PROTO_DIR}",
                f"-I{include}",
                f"--python_out={out}",
                str(pbmod.PROTO_DIR / pbmod.PROTO_FILE),
            ]
        )
        == 0
    )
    fresh = (out / "candleflow" / "v1" / "market_data_pb2.py").read_text()
    assert fresh == pbmod.MODULE_PATH.read_text()


def test_fresh_clone_generates_stubs_on_import(tmp_path):
    """A copy of pb.py and the .proto with no generated/ dir (a fresh clone) generates the
    stubs on first import. Done in a copy so parallel sessions never see them missing."""
    import shutil

    (tmp_path / "serving").mkdir()
    shutil.copy(pbmod.__file__, tmp_path / "serving" / "pb.py")
    (tmp_path / "serving" / "__init__.py").write_text("")
    shutil.copytree(pbmod.PROTO_DIR, tmp_path / "proto")
    code = (
        "from serving.pb import pb, MODULE_PATH, is_fresh; "
        f"assert is_fresh() and str(MODULE_PATH).startswith({str(tmp_path)!r}); "
        "print(pb.CandleEvent(replay=True).replay)"
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path)},
    )
    assert res.stdout.strip() == "True", res.stderr
