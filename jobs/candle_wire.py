"""Candles and DLQ rows -> the Avro contracts in the Confluent wire format, for Kafka.

Flink 2.1's avro-confluent encoder cannot write the contracts' timestamp-micros fields
(it maps TIMESTAMP to timestamp-millis and rejects the explicit contract schema for BIGINT
columns), so the Kafka sinks use the `raw` format and these Python scalar functions encode
each record with candleflow.avro (byte-equal to what Python producers write). They run per
candle / per late trade, never per trade, so the per-trade path stays in the JVM.
"""

from __future__ import annotations

from decimal import Decimal

from pyflink.table import DataTypes, TableEnvironment
from pyflink.table.udf import udf

# Argument order = micros_select(CANDLE_SELECT) / micros_select(LATE_SELECT) + schema id +
# contract version (0: the newest).


def _header(schema_id: int) -> bytes:
    return b"\x00" + int(schema_id).to_bytes(4, "big")


def _dec(v) -> Decimal | None:
    return None if v is None else Decimal(v)


@udf(result_type=DataTypes.BYTES())
def candle_avro(
    exchange,
    symbol,
    interval,
    window_start_us,
    window_end_us,
    open_,
    high,
    low,
    close,
    volume,
    quote_volume,
    trade_count,
    taker_buy_volume,
    taker_buy_quote_volume,
    vwap,
    first_trade_id,
    last_trade_id,
    revision,
    is_empty,
    schema_id,
    version,
):
    from candleflow import avro
    from candleflow.domain import Candle

    c = Candle(
        exchange,
        symbol,
        interval,
        window_start_us,
        window_end_us,
        _dec(open_),
        _dec(high),
        _dec(low),
        _dec(close),
        _dec(volume),
        _dec(quote_volume),
        int(trade_count),
        _dec(taker_buy_volume),
        _dec(taker_buy_quote_volume),
        _dec(vwap),
        first_trade_id,
        last_trade_id,
        int(revision),
        bool(is_empty),
    )
    return _header(schema_id) + avro.encode(c, "candle", version or None)


@udf(result_type=DataTypes.BYTES())
def late_avro(
    exchange,
    symbol,
    native_symbol,
    trade_id,
    price,
    quantity,
    side,
    event_time_us,
    ingest_time_us,
    first_trade_id,
    last_trade_id,
    kind,
    contract_size,
    interval,
    window_start_us,
    reason,
    clock_us,
    schema_id,
    version,
):
    from candleflow import avro
    from candleflow.domain import InstrumentKind, LateTrade, Side, Trade

    t = Trade(
        exchange,
        symbol,
        native_symbol,
        int(trade_id),
        _dec(price),
        _dec(quantity),
        Side(side),
        int(event_time_us),
        int(ingest_time_us),
        first_trade_id,
        last_trade_id,
        InstrumentKind(kind),
        _dec(contract_size),
    )
    lt = LateTrade(t, interval, int(window_start_us), reason, int(clock_us))
    return _header(schema_id) + avro.encode(lt, "late_trade", version or None)


@udf(result_type=DataTypes.DECIMAL(38, 18))
def candle_volatility(high, low, open_, is_empty):
    """Candle v2's volatility column: Candle.volatility of these fields, the same figure the
    Kafka encoder writes (the domain's one definition, exact Decimal arithmetic)."""
    from candleflow.domain import volatility

    return volatility(_dec(high), _dec(low), _dec(open_), bool(is_empty))


ENCODERS = {"candle": "candle_avro", "late_trade": "late_avro"}


def register(t_env: TableEnvironment) -> None:
    import sys

    t_env.get_config().set("python.executable", sys.executable)
    t_env.get_config().set("python.client.executable", sys.executable)
    existing = set(t_env.list_user_defined_functions())
    for name, fn in (
        ("candle_avro", candle_avro),
        ("late_avro", late_avro),
        ("candle_volatility", candle_volatility),
    ):
        if name not in existing:
            t_env.create_temporary_function(name, fn)
