"""The candles job: trades -> one Java Process Table Function -> candles, DLQ, bronze trades.

`build(t_env, config)` only wires tables: it registers the PTF (udfs/, see
docs/semantics.md for why the per-trade path is Java), creates the source and sink tables
from the builders in jobs/candle_tables.py and returns a StatementSet with one INSERT per
sink. `main()` reads settings, configures checkpointing and executes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from pyflink.table import StatementSet, TableEnvironment

from candleflow.config import CandleSettings
from candleflow.intervals import parse_intervals
from jobs.candle_tables import (
    CANDLE_COLUMNS,
    CANDLE_SELECT,
    LATE_COLUMNS,
    LATE_SELECT,
    TRADE_COLUMNS,
    TRADE_SELECT,
    FileSource,
    IcebergSink,
    KafkaSource,
    Sinks,
)

log = logging.getLogger(__name__)

FUNCTION_CLASS = "io.candleflow.udfs.CandleFunction"
FUNCTION_NAME = "CandleFunction"
# Stable operator id of the PTF's state: change it only with a state migration plan.
PTF_UID = "candles-ptf-v1"


@dataclass
class CandleJobConfig:
    source: KafkaSource | FileSource
    sinks: Sinks
    candles: CandleSettings = field(default_factory=CandleSettings)
    emit_trades: bool | None = None  # default: when a trades sink is configured
    catalog_ddl: list[str] = field(default_factory=list)  # Iceberg catalog/table DDL
    uid: str = PTF_UID


def spec_string(settings: CandleSettings, *, emit_trades: bool) -> str:
    """The PTF's settings argument (io.candleflow.udfs.Spec): durations in µs."""
    intervals = parse_intervals(settings.intervals)
    parts = ",".join(f"{iv.name}:{iv.micros}:{settings.grace_us(iv.name)}" for iv in intervals)
    return (
        f"intervals={parts};lateness={settings.allowed_lateness_us};"
        f"idle={int(settings.idle_flush_delay_seconds * 1_000_000)};"
        f"dedup={int(settings.dedup_ttl_seconds * 1_000_000)};"
        f"trades={int(emit_trades)};empty={int(settings.emit_empty_windows)}"
    )


def ptf_query_sql(config: CandleJobConfig, source_table: str) -> str:
    emit_trades = config.emit_trades
    if emit_trades is None:
        emit_trades = bool(config.sinks.trades)
    spec = spec_string(config.candles, emit_trades=emit_trades)
    return f"""SELECT * FROM {FUNCTION_NAME}(
  trades => TABLE {source_table} PARTITION BY (exchange, symbol),
  spec => '{spec}',
  uid => '{config.uid}')"""


def _insert(stmts: StatementSet, t_env: TableEnvironment, sink, name: str,
            columns: list[tuple[str, str]], select: str, kind: str) -> None:
    if isinstance(sink, IcebergSink):
        target = sink.qualified
    else:
        t_env.execute_sql(sink.ddl(name, columns))
        target = f"`{name}`"
    key = "CONCAT(exchange, ':', symbol), " if getattr(sink, "keyed", False) else ""
    stmts.add_insert_sql(
        f"INSERT INTO {target} SELECT {key}{select} FROM candle_events WHERE kind = '{kind}'"
    )


def build(t_env: TableEnvironment, config: CandleJobConfig) -> StatementSet:
    """Wire source -> CandleFunction -> sinks; returns the statements to execute together."""
    t_env.execute_sql(
        f"CREATE TEMPORARY FUNCTION IF NOT EXISTS {FUNCTION_NAME} AS '{FUNCTION_CLASS}' "
        "LANGUAGE JAVA"
    )
    t_env.execute_sql(config.source.ddl("trades_src"))
    for statement in config.catalog_ddl:
        t_env.execute_sql(statement)
    # A view over the PTF call (CREATE VIEW ... AS cannot parse a PTF's PARTITION BY in 2.1).
    events = t_env.sql_query(ptf_query_sql(config, "trades_src"))
    t_env.create_temporary_view("candle_events", events)
    stmts = t_env.create_statement_set()
    for n, sink in enumerate(config.sinks.candles):
        _insert(stmts, t_env, sink, f"candles_sink_{n}", CANDLE_COLUMNS, CANDLE_SELECT, "CANDLE")
    for n, sink in enumerate(config.sinks.late):
        _insert(stmts, t_env, sink, f"late_sink_{n}", LATE_COLUMNS, LATE_SELECT, "LATE")
    for n, sink in enumerate(config.sinks.trades):
        _insert(stmts, t_env, sink, f"trades_sink_{n}", TRADE_COLUMNS, TRADE_SELECT, "TRADE")
    return stmts
