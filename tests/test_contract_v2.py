"""Trade v2 (`sequence`) and Candle v2 (`volatility`) at the record level: the figure is
exact to its stated scale, v1 and v2 records read back the same domain objects, and a v2
record whose volatility disagrees with its own high/low/open is refused. Pure, < 2 s."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters import avro
from candleflow import records
from candleflow.domain import VOLATILITY_SCALE, Candle, Side, Trade, volatility

# The official 2025-01-01 00:00 BTCUSDT 1m kline (shared/data/binance, Binance public data).
KLINE = Candle(
    "binance",
    "BTC-USDT",
    "1m",
    1735689600000000,
    1735689660000000,
    Decimal("93576.00000000"),
    Decimal("93610.93000000"),
    Decimal("93537.50000000"),
    Decimal("93610.93000000"),
    Decimal("8.21827000"),
    Decimal("769056.5532408"),
    2631,
    Decimal("3.95440000"),
    Decimal("370048.4014232"),
    None,
    4359935386,
    4359938016,
)

# A real Coinbase Exchange match (shared/data/captures/coinbase_exchange_matches_2021-04-17).
MATCH = Trade(
    "coinbase",
    "BAND-GBP",
    "BAND-GBP",
    881613,
    Decimal("14.7775"),
    Decimal("0.04"),
    Side.BUY,
    1618677810244075,
    1618677810244075,
    sequence=333938798,
)

prices = st.decimals(Decimal("1E-8"), Decimal("1E9"), places=8)


@settings(max_examples=500, deadline=None)
@given(prices, prices, prices)
def test_volatility_is_the_range_over_the_open_rounded_half_up(
    a: Decimal, b: Decimal, o: Decimal
) -> None:
    high, low = max(a, b, o), min(a, b, o)
    v = volatility(high, low, o, False)
    assert v is not None and v.as_tuple().exponent == -VOLATILITY_SCALE
    exact = Fraction(high - low) / Fraction(o)
    # half up: within half a unit of the last place, and ties go away from zero
    err = Fraction(v) - exact
    unit = Fraction(1, 10**VOLATILITY_SCALE)
    assert -unit / 2 < err <= unit / 2


def test_volatility_of_a_real_kline_and_of_an_empty_window() -> None:
    # (93610.93 - 93537.5) / 93576 = 73.43 / 93576
    assert KLINE.volatility == Decimal("0.000784709754637941")
    empty = dataclasses.replace(KLINE, is_empty=True, high=KLINE.open, low=KLINE.open)
    assert empty.volatility is None
    assert volatility(Decimal(1), Decimal(1), Decimal(0), False) is None


def test_candle_v1_and_v2_records_read_back_the_same_candle() -> None:
    v2 = records.candle_to_avro(KLINE)
    assert v2["volatility"] == Decimal("0.000784709754637941")
    assert avro.decode("candle", avro.encode(KLINE, "candle", 1), 1) == KLINE
    assert avro.decode("candle", avro.encode(KLINE)) == KLINE
    with pytest.raises(ValueError, match="volatility"):
        records.candle_from_avro({**v2, "volatility": Decimal("0.5")})


def test_trade_sequence_round_trips_and_v1_drops_it() -> None:
    t = MATCH
    assert avro.decode("trade", avro.encode(t)) == t
    v1 = avro.decode("trade", avro.encode(t, "trade", 1), 1)
    assert v1 == dataclasses.replace(t, sequence=None) != t


def test_ingest_encoder_writes_the_sequence_as_fastavro_does() -> None:
    from ingest.avro_trade import encode_body

    t = MATCH
    for seq in (333938798, 0, 2**63 - 1, None):
        u = dataclasses.replace(t, sequence=seq)
        assert encode_body(u) == avro.encode(u)
