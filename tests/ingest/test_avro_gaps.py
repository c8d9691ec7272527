"""The hand-written Trade encoder against fastavro, and the gap tracker's bookkeeping."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters import avro
from candleflow.binance_files import read_trades
from candleflow.domain import Side, Trade
from candleflow.records import DecimalRangeError
from devstack.sample_data import CAPTURES, COINM_DAY
from ingest import ADAPTERS
from ingest.avro_trade import TradeEncoder, encode_body
from ingest.captures import read_frames
from ingest.common import TradeBatch
from ingest.gaps import GapTracker


def _real_trades() -> list[Trade]:
    out: list[Trade] = []
    for path in sorted(CAPTURES.glob("*.jsonl")):
        for frame in read_frames(path):
            result = ADAPTERS[frame.exchange].parse(frame.data, 1_786_309_551_426_861)
            if isinstance(result, TradeBatch):
                out.extend(result)
    coin_m = read_trades(COINM_DAY)
    out.extend(t for _, t in zip(range(500), coin_m, strict=False))
    return out


def test_encoder_writes_the_same_bytes_as_fastavro_for_real_trades() -> None:
    trades = _real_trades()
    assert len(trades) > 800
    for t in trades:
        assert encode_body(t) == avro.encode(t), t
        assert avro.decode("trade", encode_body(t)) == t
    assert TradeEncoder(7)(trades[0])[:5] == b"\x00\x00\x00\x00\x07"


@given(
    price=st.decimals(min_value=Decimal("1e-18"), max_value=Decimal("1e19"), places=18),
    trade_id=st.integers(min_value=0, max_value=2**63 - 1),
    t_us=st.integers(min_value=0, max_value=253_402_300_799_999_999),
)
def test_encoder_matches_fastavro_on_generated_values(
    price: Decimal, trade_id: int, t_us: int
) -> None:
    t = Trade(
        "kraken",
        "BTC-USD",
        "BTC/USD",
        trade_id,
        price,
        price,
        Side.UNKNOWN,
        t_us,
        t_us,
        first_trade_id=trade_id,
        last_trade_id=None,
    )
    assert encode_body(t) == avro.encode(t)


def test_encoder_refuses_what_does_not_fit_instead_of_rounding() -> None:
    t = _real_trades()[0]
    with pytest.raises(DecimalRangeError):
        encode_body(replace(t, price=Decimal("1.0000000000000000001")))
    with pytest.raises(DecimalRangeError):
        encode_body(replace(t, price=Decimal("1e20")))


def _t(tid: int) -> Trade:
    return Trade("coinbase", "BTC-USD", "BTC-USD", tid, Decimal(1), Decimal(1), Side.BUY, tid, tid)


def test_gap_tracker_finds_fills_and_drops_duplicates() -> None:
    g = GapTracker()
    assert g.observe(_t(10)) == (True, None)
    assert g.observe(_t(11)) == (True, None)
    assert g.observe(_t(11)) == (False, None)  # duplicate
    new, gap = g.observe(_t(15))  # 12..14 lost
    assert new and gap is not None and (gap.first_id, gap.last_id, gap.size) == (12, 14, 3)
    assert g.missing_in("coinbase", "BTC-USD", 12, 14) == [12, 13, 14]
    assert g.observe(_t(13)) == (True, None)  # arrives late (reordered / backfilled)
    assert g.observe(_t(13)) == (False, None)
    assert g.missing_in("coinbase", "BTC-USD", 12, 14) == [12, 14]
    assert g.give_up("coinbase", "BTC-USD", 12, 14) == 2
    assert g.observe(_t(12)) == (False, None)  # given up: treated as already handled
    assert g.observe(_t(5)) == (False, None)  # snapshot replay below the high-water mark
    assert g.high_water("coinbase", "BTC-USD") == 15
