"""One candle mapper (candleflow/candle_map.py): the column list is the candle contract,
every path builds the same Candle from it, and the Flink DDL is generated from it. A
derived column (Candle v2's volatility) is a Candle property: rows may carry it, and one
that carries another figure is refused.

Pure Python, no stack: ~2 s (300 hypothesis cases per property).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from candleflow import candle_map, records
from candleflow.contracts import schema
from candleflow.domain import Candle

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

decimals = st.decimals(
    min_value=Decimal("-1e19"), max_value=Decimal("1e19"), places=18, allow_nan=False
)
candles = st.builds(
    Candle,
    exchange=st.sampled_from(["binance", "coinbase", "kraken"]),
    symbol=st.sampled_from(["BTC-USDT", "ETH-USD"]),
    interval=st.sampled_from(["1m", "5m", "1h"]),
    window_start_us=st.integers(0, 2**52),
    window_end_us=st.integers(0, 2**52),
    open=decimals,
    high=decimals,
    low=decimals,
    close=decimals,
    volume=decimals,
    quote_volume=decimals,
    trade_count=st.integers(0, 2**40),
    taker_buy_volume=decimals,
    taker_buy_quote_volume=decimals,
    vwap=st.none() | decimals,
    first_trade_id=st.none() | st.integers(0, 2**62),
    last_trade_id=st.none() | st.integers(0, 2**62),
    revision=st.integers(0, 1000),
    is_empty=st.booleans(),
)


def _row(c: Candle) -> dict[str, object]:
    return {col.name: getattr(c, col.attr) for col in candle_map.CANDLE_COLUMNS}


def test_columns_are_the_contract_and_the_dataclass() -> None:
    names = tuple(f["name"] for f in schema("candle")["fields"])
    assert tuple(c.name for c in candle_map.columns()) == names
    assert [c.attr for c in candle_map.CANDLE_COLUMNS] == [
        f.name for f in dataclasses.fields(Candle)
    ]
    assert [(c.name, c.kind, c.nullable) for c in candle_map.DERIVED_COLUMNS] == [
        ("volatility", "decimal", True)
    ]
    assert tuple(n for n in names if n != "volatility") == candle_map.CANDLE_COLUMN_NAMES
    # v1 has no derived column: its stored columns are today's.
    assert candle_map.columns(1) == candle_map.CANDLE_COLUMNS
    with pytest.raises(ValueError, match="version 99"):
        candle_map.columns(99)


@settings(max_examples=300)
@given(c=candles)
def test_every_path_builds_the_same_candle(c: Candle) -> None:
    from jobs.candle_files import to_candle
    from serving.history import candle_from_row

    row = _row(c)
    assert candle_map.candle_from_row(row) == c
    # a v2 row (silver after the upgrade) carries the derived figure: the same candle
    assert candle_map.candle_from_row({**row, "volatility": c.volatility}) == c
    assert candle_from_row(row) == c
    assert candle_map.candle_from_values(list(row.values())) == c
    # Avro: timestamps as aware datetimes, decimals as Decimals (fastavro's reader).
    avro_row = records.candle_to_avro(c)
    assert avro_row["volatility"] == c.volatility
    assert records.candle_from_avro(avro_row) == c
    # Job output files: timestamps as ISO text, decimals as text.
    text_row = {
        **row,
        **{
            k: (_EPOCH + timedelta(microseconds=row[k])).strftime("%Y-%m-%d %H:%M:%S.%f")  # type: ignore[arg-type]
            for k in ("window_start", "window_end")
        },
    }
    text_row.update({k: str(v) for k, v in row.items() if isinstance(v, Decimal)})
    assert to_candle(text_row) == c


def test_a_null_required_column_is_named() -> None:
    row = _row(
        Candle(
            "binance",
            "BTC-USDT",
            "1m",
            0,
            60_000_000,
            *[Decimal(1)] * 6,
            1,
            Decimal(1),
            Decimal(1),
            None,
            None,
            None,
        )
    )
    row["high"] = None
    with pytest.raises(ValueError, match="'high'"):
        candle_map.candle_from_row(row)
    with pytest.raises(ValueError, match="19 columns"):
        candle_map.candle_from_values([1, 2])


def test_flink_ddl_columns_follow_the_contract() -> None:
    from jobs.candle_tables import CANDLE_COLUMNS, CANDLE_SELECT

    assert [n for n, _ in CANDLE_COLUMNS] == list(candle_map.CANDLE_COLUMN_NAMES)
    types = dict(CANDLE_COLUMNS)
    assert types["open"] == "DECIMAL(38, 18) NOT NULL"
    assert types["vwap"] == "DECIMAL(38, 18)"
    assert types["trade_count"] == "BIGINT NOT NULL"
    assert types["revision"] == "INT NOT NULL"
    assert types["window_start"] == "TIMESTAMP(6) NOT NULL"
    assert CANDLE_SELECT.split(", ")[:6] == [
        "exchange",
        "symbol",
        "ivl",
        "window_start",
        "window_end",
        "`open`",
    ]


def test_a_derived_figure_that_is_not_the_candles_own_is_refused() -> None:
    c = Candle("binance", "BTC-USDT", "1m", 0, 60_000_000, *[Decimal(2)] * 6, 1,
               Decimal(1), Decimal(1), None, None, None)  # fmt: skip
    wide = dataclasses.replace(c, high=Decimal(3))  # (3 - 2) / 2
    row = _row(wide)
    assert candle_map.candle_from_row({**row, "volatility": Decimal("0.5")}) == wide
    with pytest.raises(ValueError, match="volatility 0.4 written"):
        candle_map.candle_from_row({**row, "volatility": Decimal("0.4")})


def test_flink_columns_per_contract_version() -> None:
    from jobs.candle_tables import (
        CANDLE_COLUMNS,
        TRADE_COLUMNS,
        candle_columns,
        candle_select,
        trade_columns,
    )

    assert candle_columns(1) == CANDLE_COLUMNS
    assert candle_columns() == [*CANDLE_COLUMNS, ("volatility", "DECIMAL(38, 18)")]
    assert trade_columns(1) == TRADE_COLUMNS and TRADE_COLUMNS[-1] == (
        "contract_size",
        "DECIMAL(38, 18)",
    )
    assert trade_columns() == [*TRADE_COLUMNS, ("sequence", "BIGINT")]
    # silver's select: the stored columns, then the derived one computed from them
    v1 = candle_select(1)
    assert candle_select().startswith(v1 + ", candle_volatility(exchange, symbol, ivl, ")
    assert candle_select().endswith(", revision, is_empty)")


def _derived_function():
    from jobs import candle_wire

    (column,) = candle_map.DERIVED_COLUMNS
    return candle_wire._derived(column)._func


# No deadline: the first example imports PyFlink (half a second, more on a loaded machine).
@settings(max_examples=300, deadline=None)
@given(c=candles)
def test_the_sinks_python_function_is_the_candles_own_figure(c: Candle) -> None:
    """What silver's derived column gets (jobs/candle_wire.py, called with the stored
    columns as Flink passes them: µs timestamps) and the Kafka encoder writes."""
    derive = _derived_function()
    values = [str(v) if isinstance(v, Decimal) else v for v in _row(c).values()]
    assert derive(*values) == c.volatility
