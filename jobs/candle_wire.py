"""Candles and DLQ rows -> the Avro contracts in the Confluent wire format, for Kafka.

Flink 2.1's avro-confluent encoder cannot write the contracts' timestamp-micros fields
(it maps TIMESTAMP to timestamp-millis and rejects the explicit contract schema for BIGINT
columns), so the Kafka sinks use the `raw` format and these Python scalar functions encode
each record with adapters.avro (byte-equal to what Python producers write). They run per
candle / per late trade, never per trade, so the per-trade path stays in the JVM.
"""

from __future__ import annotations

from decimal import Decimal

from pyflink.table import DataTypes, TableEnvironment
from pyflink.table.udf import udf

from candleflow.candle_map import DERIVED_COLUMNS, Column
from jobs.candle_tables import derived_function

# Argument order = micros_select(CANDLE_SELECT) / micros_select(LATE_SELECT) + schema id +
# contract version (0: the newest).


def _header(schema_id: int) -> bytes:
    return b"\x00" + int(schema_id).to_bytes(4, "big")


def _dec(v) -> Decimal | None:
    return None if v is None else Decimal(v)


@udf(result_type=DataTypes.BYTES())
def candle_avro(*args):
    """The candle's stored columns in contract order (candle_map.CANDLE_COLUMN_NAMES), the
    schema id and the contract version (0: the newest): the Confluent-framed Avro record,
    its derived fields computed from the candle (candleflow.records)."""
    from adapters import avro
    from candleflow.candle_map import candle_from_values

    *values, schema_id, version = args
    candle = candle_from_values(values, decimal=_dec)
    return _header(schema_id) + avro.encode(candle, "candle", version or None)


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
    from adapters import avro
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


_RESULT_TYPES = {
    "string": DataTypes.STRING(),
    "decimal": DataTypes.DECIMAL(38, 18),
    "long": DataTypes.BIGINT(),
    "int": DataTypes.INT(),
    "boolean": DataTypes.BOOLEAN(),
}


def _derived(column: Column):  # a PyFlink UserDefinedFunctionWrapper
    """The Python function of a derived candle column: the Candle property of the stored
    columns' values (candle_tables.candle_select passes them), the same figure the Kafka
    encoder writes (the domain's one definition, exact Decimal arithmetic)."""

    def derive(*values):
        from candleflow.candle_map import candle_from_values

        return getattr(candle_from_values(values, decimal=_dec), column.attr)

    return udf(derive, result_type=_RESULT_TYPES[column.kind])


ENCODERS = {"candle": "candle_avro", "late_trade": "late_avro"}


def register(t_env: TableEnvironment) -> None:
    import sys

    t_env.get_config().set("python.executable", sys.executable)
    t_env.get_config().set("python.client.executable", sys.executable)
    existing = set(t_env.list_user_defined_functions())
    functions = {"candle_avro": candle_avro, "late_avro": late_avro}
    for column in DERIVED_COLUMNS:
        functions[derived_function(column.name)] = _derived(column)
    for name, fn in functions.items():
        if name not in existing:
            t_env.create_temporary_function(name, fn)
