"""The candles job: trades -> one Java Process Table Function -> candles and DLQ.

`build(t_env, config)` only wires tables: it registers the PTF (udfs/, see
docs/semantics.md for why the per-trade path is Java), creates the source and sink tables
from the builders in jobs/candle_tables.py and returns a StatementSet with one INSERT per
sink. `main()` reads settings, configures checkpointing and executes. The raw trades are
landed in Iceberg bronze.trades by a job of their own (jobs/bronze.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from pydantic_settings import SettingsConfigDict
from pyflink.table import StatementSet, TableEnvironment

from adapters import catalog as shared_catalog
from candleflow.config import CandleSettings, StackSettings, Topics
from candleflow.intervals import parse_intervals
from jobs import flink_env
from jobs.candle_tables import (
    CANDLE_COLUMNS,
    CANDLE_SELECT,
    LATE_COLUMNS,
    LATE_SELECT,
    BinanceFilesSource,
    FileSource,
    IcebergSink,
    KafkaSink,
    KafkaSource,
    Sinks,
    candle_columns,
    candle_select,
    micros_select,
)
from jobs.operator_uids import SubmittedJob, execute

log = logging.getLogger(__name__)

FUNCTION_CLASS = "io.candleflow.udfs.CandleFunction"
FUNCTION_NAME = "CandleFunction"
# Stable operator id of the PTF's state: change it only with a state migration plan.
# v2: the market state is packed (MarketClock); v1 savepoints are refused, start v2 afresh.
PTF_UID = "candles-ptf-v2"


@dataclass
class CandleJobConfig:
    source: KafkaSource | FileSource | BinanceFilesSource
    sinks: Sinks
    candles: CandleSettings = field(default_factory=CandleSettings)
    emit_trades: bool = False  # the PTF's TRADE rows (deduplicated trades); no sink reads them
    catalog_ddl: list[str] = field(default_factory=list)  # Iceberg catalog/table DDL
    uid: str = PTF_UID
    # The Candle version written to every sink (None: the newest); docs/operations.md
    # "Evolving a contract" says when to hold it back.
    contract_version: int | None = None


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
    spec = spec_string(config.candles, emit_trades=config.emit_trades)
    return f"""SELECT * FROM {FUNCTION_NAME}(
  trades => TABLE {source_table} PARTITION BY (exchange, symbol),
  spec => '{spec}',
  uid => '{config.uid}')"""


def _insert(
    stmts: StatementSet,
    t_env: TableEnvironment,
    sink,
    name: str,
    columns: list[tuple[str, str]],
    select: str,
    kind: str,
    derived: bool = False,
) -> None:
    """`derived`: the select computes derived candle columns (Python functions)."""
    if isinstance(sink, IcebergSink):
        # Named columns: a table evolved by a newer version (more columns) still takes
        # this version's rows, NULL in the columns it does not know.
        target = f"{sink.qualified} ({', '.join(f'`{n}`' for n, _ in columns)})"
    else:
        t_env.execute_sql(sink.ddl(name, columns))
        target = f"`{name}`"
    if isinstance(sink, KafkaSink) or derived:
        from jobs import candle_wire

        candle_wire.register(t_env)  # the Kafka encoders and the derived columns' functions
    if isinstance(sink, KafkaSink):
        # The encoder writes the contract version's fields from the stored columns,
        # deriving the others itself (candleflow.records).
        encoder = candle_wire.ENCODERS[sink.contract]
        select = (
            f"CONCAT(exchange, ':', symbol), {encoder}({micros_select(select)}, "
            f"{sink.schema_id()}, {sink.contract_version or 0})"
        )
    stmts.add_insert_sql(
        f"INSERT INTO {target} SELECT {select} FROM candle_events WHERE kind = '{kind}'"
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
    v = config.contract_version
    for n, sink in enumerate(config.sinks.candles):
        # Derived columns (Candle v2's volatility) are columns of silver; Kafka's encoder and
        # the files' readers derive them from the candle (candleflow.candle_map), so the
        # files (tests, backfill) keep the stored columns and run no Python.
        if isinstance(sink, IcebergSink):
            cols, select = candle_columns(v), candle_select(v)
            derived = len(cols) > len(CANDLE_COLUMNS)
        else:
            cols, select, derived = CANDLE_COLUMNS, CANDLE_SELECT, False
        _insert(stmts, t_env, sink, f"candles_sink_{n}", cols, select, "CANDLE", derived)
    for n, sink in enumerate(config.sinks.late):
        _insert(stmts, t_env, sink, f"late_sink_{n}", LATE_COLUMNS, LATE_SELECT, "LATE")
    return stmts


def run(t_env: TableEnvironment, config: CandleJobConfig) -> SubmittedJob:
    """Build and submit, every operator under a stable uid (jobs/operator_uids.py): a
    savepoint restores into a job whose graph changed (an output added, a filter changed)."""
    return execute(t_env, build(t_env, config))


class CandleJobSettings(flink_env.JobSettings):
    """How the job runs (CANDLEFLOW_JOB_*); the candle semantics are CandleSettings."""

    model_config = SettingsConfigDict(env_prefix="CANDLEFLOW_JOB_", extra="ignore")

    group_id: str = "candleflow-candles"
    transactional_id_prefix: str = "candleflow-candles"
    transaction_timeout_ms: int = 900_000  # <= broker transaction.max.timeout.ms (1 h)
    iceberg: bool = True
    silver_namespace: str = "silver"  # <namespace>.candles
    # The Candle contract version written (None: the newest this build knows). Hold it at
    # the old version until every reader of candles.v1 is upgraded (docs/operations.md).
    contract_version: int | None = None


def production_config(
    stack: StackSettings,
    topics: Topics,
    candles: CandleSettings,
    job: CandleJobSettings,
    *,
    silver: str | None = None,
    bounded: bool = False,
) -> CandleJobConfig:
    """Kafka trades.v1 -> candles.v1 + trades.late.v1 (exactly-once) + Iceberg table
    `<silver>.candles`. `bounded` stops at the offsets the topic has at start (tests,
    benchmarks); the production job runs unbounded. The namespace defaults to the job
    settings'."""
    silver = silver or job.silver_namespace

    def kafka_sink(topic: str, contract: str, suffix: str) -> KafkaSink:
        return KafkaSink(
            topic,
            contract,
            stack.bootstrap_servers,
            stack.registry_url,
            f"{job.transactional_id_prefix}-{suffix}",
            job.transaction_timeout_ms,
            contract_version=job.contract_version if contract == "candle" else None,
        )

    sinks = Sinks(
        candles=[kafka_sink(topics.candles, "candle", "candles")],
        late=[kafka_sink(topics.late_trades, "late_trade", "late")],
    )
    ddl: list[str] = []
    if job.iceberg:
        from jobs.candle_iceberg import ensure_silver_table

        ensure_silver_table(stack, silver, job.contract_version)
        ddl.append(shared_catalog.flink_catalog_ddl(stack))
        sinks.candles.append(IcebergSink(stack.catalog_name, silver, "candles"))
    source = KafkaSource(
        topics.trades,
        stack.bootstrap_servers,
        stack.registry_url,
        group_id=job.group_id,
        startup_mode=job.startup_mode,
        bounded=bounded,
    )
    return CandleJobConfig(
        source=source,
        sinks=sinks,
        candles=candles,
        catalog_ddl=ddl,
        contract_version=job.contract_version,
    )


def job_table_env(stack: StackSettings, job: CandleJobSettings) -> TableEnvironment:
    return flink_env.job_table_env(stack, job, "candles")


def submit(
    stack: StackSettings | None = None,
    topics: Topics | None = None,
    candles: CandleSettings | None = None,
    job: CandleJobSettings | None = None,
):
    """Build and execute; returns the submitted job (its job client has the job id)."""
    stack, topics = stack or StackSettings(), topics or Topics()
    candles, job = candles or CandleSettings(), job or CandleJobSettings()
    t_env = job_table_env(stack, job)
    result = run(t_env, production_config(stack, topics, candles, job))
    client = result.get_job_client()
    log.info("candles job submitted: %s", client.get_job_id() if client else "?")
    return result


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    submit()


if __name__ == "__main__":
    main()
