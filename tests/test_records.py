"""Domain <-> Avro round trips are exact: every Decimal digit and every microsecond survive."""

from __future__ import annotations

import csv
import io
import zipfile
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters import avro
from candleflow import records
from candleflow.domain import Anomaly, Candle, Explanation, InstrumentKind, LateTrade, Side, Trade
from devstack.sample_data import COINM_DAY

# Every value DECIMAL(38,18) can hold: up to 20 integer and 18 fractional digits.
decimals_38_18 = st.decimals(
    min_value=Decimal("-99999999999999999999.999999999999999999"),
    max_value=Decimal("99999999999999999999.999999999999999999"),
    places=18,
    allow_nan=False,
    allow_infinity=False,
)
micros = st.integers(min_value=records.MIN_MICROS, max_value=records.MAX_MICROS - 60_000_000)


def _trade(**kw: object) -> Trade:
    base: dict[str, object] = dict(
        exchange="binance",
        symbol="BTC-USD-PERP",
        native_symbol="BTCUSD_PERP",
        trade_id=480537903,
        price=Decimal("79972.8"),
        quantity=Decimal("542.0"),
        side=Side.BUY,
        event_time_us=1778198400020000,
        ingest_time_us=1778198400123456,
        first_trade_id=1123474160,
        last_trade_id=1123474164,
        kind=InstrumentKind.INVERSE,
        contract_size=Decimal("100"),
    )
    base.update(kw)
    return Trade(**base)  # type: ignore[arg-type]


def _real_agg_trades(n: int) -> list[Trade]:
    """The first n aggregate trades of the recorded COIN-M day, as the ingest maps them."""
    with zipfile.ZipFile(COINM_DAY) as zf:
        name = zf.namelist()[0]
        rows = list(csv.DictReader(io.TextIOWrapper(zf.open(name), "ascii")))[:n]
    return [
        _trade(
            trade_id=int(r["agg_trade_id"]),
            price=Decimal(r["price"]),
            quantity=Decimal(r["quantity"]),
            side=Side.SELL if r["is_buyer_maker"] == "true" else Side.BUY,
            event_time_us=int(r["transact_time"]) * 1000,
            first_trade_id=int(r["first_trade_id"]),
            last_trade_id=int(r["last_trade_id"]),
        )
        for r in rows
    ]


def test_real_trades_round_trip_exactly() -> None:
    trades = _real_agg_trades(500)
    assert trades[0].price == Decimal("79972.8") and trades[0].trade_count == 5
    for t in trades:
        back = avro.decode("trade", avro.encode(t))
        assert back == t
        assert str(back.price.normalize()) == str(t.price.normalize())


@given(price=decimals_38_18, qty=decimals_38_18, t=micros, t2=micros)
def test_trade_round_trip_any_decimal_and_time(
    price: Decimal, qty: Decimal, t: int, t2: int
) -> None:
    trade = _trade(price=price, quantity=qty, event_time_us=t, ingest_time_us=t2)
    assert avro.decode("trade", avro.encode(trade)) == trade


@pytest.mark.parametrize(
    "text",
    [
        "0.00000001",
        "0.000000000000000001",
        "0",
        "99999999999999999999.999999999999999999",
        "-99999999999999999999.999999999999999999",
        "1E+19",
        "7195.24",
    ],
)
def test_edge_decimals(text: str) -> None:
    v = Decimal(text)
    back = avro.decode(
        "trade", avro.encode(_trade(price=v, contract_size=None, kind=InstrumentKind.SPOT))
    )
    assert back.price == v and back.contract_size is None and back.kind is InstrumentKind.SPOT


@pytest.mark.parametrize(
    "text,why",
    [
        ("0.0000000000000000001", "decimal places"),
        ("100000000000000000000", "does not fit"),
        ("-123456789012345678901.5", "does not fit"),
        ("NaN", "not a finite"),
        ("Infinity", "not a finite"),
    ],
)
def test_out_of_range_decimals_are_refused(text: str, why: str) -> None:
    with pytest.raises(records.DecimalRangeError, match=why):
        avro.encode(_trade(price=Decimal(text)))


def test_float_is_refused_and_rounding_is_explicit() -> None:
    with pytest.raises(TypeError, match="float"):
        records.fit_decimal(0.1)  # type: ignore[arg-type]
    q = Decimal(100) / Decimal("97000")  # an INVERSE quote quantity: endless digits
    with pytest.raises(records.DecimalRangeError):
        records.fit_decimal(q)
    assert records.fit_decimal(q, rounding=ROUND_HALF_UP) == Decimal("0.001030927835051546")


@given(
    st.lists(decimals_38_18, min_size=8, max_size=8),
    micros,
    st.booleans(),
    st.one_of(st.none(), decimals_38_18),
    st.one_of(st.none(), st.integers(0, 2**62)),
)
def test_candle_round_trip(
    d: list[Decimal], start: int, empty: bool, vwap: Decimal | None, first: int | None
) -> None:
    c = Candle(
        exchange="binance",
        symbol="BTC-USDT",
        interval="1m",
        window_start_us=start,
        window_end_us=start + 60_000_000,
        open=d[0],
        high=d[1],
        low=d[2],
        close=d[3],
        volume=d[4],
        quote_volume=d[5],
        trade_count=493,
        taker_buy_volume=d[6],
        taker_buy_quote_volume=d[7],
        vwap=vwap,
        first_trade_id=first,
        last_trade_id=None if first is None else first + 492,
        revision=3,
        is_empty=empty,
    )
    assert avro.decode("candle", avro.encode(c)) == c


def test_real_kline_candle_round_trip() -> None:
    # 2020-01-01 00:00 BTCUSDT 1m kline from the official file, field by field.
    c = Candle(
        exchange="binance",
        symbol="BTC-USDT",
        interval="1m",
        window_start_us=1577836800000000,
        window_end_us=1577836860000000,
        open=Decimal("7195.24000000"),
        high=Decimal("7196.25000000"),
        low=Decimal("7183.14000000"),
        close=Decimal("7186.68000000"),
        volume=Decimal("51.64281200"),
        quote_volume=Decimal("371233.51835535"),
        trade_count=493,
        taker_buy_volume=Decimal("19.59823000"),
        taker_buy_quote_volume=Decimal("140888.41428273"),
        vwap=records.fit_decimal(
            Decimal("371233.51835535") / Decimal("51.64281200"), rounding=ROUND_HALF_UP
        ),
        first_trade_id=None,
        last_trade_id=None,
    )
    rec = records.to_avro(c)
    assert rec["window_start"] == 1577836800000000
    back = avro.decode("candle", avro.encode(c))
    assert back == c and back.close == Decimal("7186.68")


def test_late_trade_anomaly_explanation_round_trip() -> None:
    lt = LateTrade(
        trade=_real_agg_trades(1)[0],
        interval="5m",
        window_start_us=1778198400000000,
        reason="BEYOND_ALLOWED_LATENESS",
        watermark_us=1778198999999999,
    )
    assert avro.decode("late_trade", avro.encode(lt)) == lt
    a = Anomaly(
        anomaly_id="a1b2",
        rule="volume_zscore",
        severity="HIGH",
        exchange="binance",
        symbol="BTC-USD-PERP",
        interval="1m",
        window_start_us=1778198400000000,
        window_end_us=1778198460000000,
        value=7.25,
        threshold=4.0,
        candle_revision=1,
        details={"mean": "12.5", "std": "3.1"},
    )
    assert avro.decode("anomaly", avro.encode(a)) == a
    e = Explanation(
        anomaly_id="a1b2",
        summary="Volume spike",
        key_factors=["liquidations"],
        confidence=0.75,
        caveats=[],
        model="offline",
        offline=True,
        created_at_us=1778198461000001,
    )
    assert avro.decode("explanation", avro.encode(e)) == e


def test_micros_from_datetime_is_exact() -> None:
    for us in (0, 1, -1, 1778198400020001, 253402300799999999):
        assert records.micros_in(records.micros_to_datetime(us)) == us


def test_unreadable_time_is_refused() -> None:
    with pytest.raises(ValueError, match="outside years"):
        avro.encode(_trade(event_time_us=records.MAX_MICROS + 1))


def test_unknown_contract_and_type() -> None:
    with pytest.raises(TypeError):
        records.to_avro("not a record")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown contract"):
        records.from_avro("nope", {})
    with pytest.raises(ValueError, match="lacks field"):
        records.from_avro("trade", {"exchange": "x"})
