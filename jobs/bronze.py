"""The bronze job: trades.v1 -> Iceberg bronze.trades, every trade once, exactly once.

Landing the raw trades is its own job, apart from the candles job (jobs/candles.py): each
scales, restarts and upgrades on its own, and the candles job's rate is no longer bounded by
the Parquet encoding of every trade (docs/benchmarks.md, "Bronze").

`build(t_env, config)` only wires tables: source -> dedup by (exchange, symbol, trade_id)
-> sink. Dedup is Flink SQL's keep-first-row deduplication on processing time (append-only
output, so the Iceberg table stays a plain append table); its state is checkpointed with the
Kafka offsets and the Iceberg sink commits its files on the same checkpoints, so a restore
neither loses nor repeats a trade. How long an id is remembered is `dedup_ttl_s` (docs/
semantics.md, "Bronze"). `main()` reads settings, configures checkpointing and executes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from pydantic_settings import SettingsConfigDict
from pyflink.table import StatementSet, TableEnvironment

from adapters import catalog as shared_catalog
from candleflow.config import CandleSettings, StackSettings, Topics
from jobs.candle_tables import (
    TRADE_COLUMNS,
    FileSink,
    FileSource,
    IcebergSink,
    KafkaSource,
    trade_columns,
)
from jobs.flink_env import JobSettings, job_table_env
from jobs.operator_uids import SubmittedJob, execute

log = logging.getLogger(__name__)

KEY = ("exchange", "symbol", "trade_id")
_TIMES = {n for n, t in TRADE_COLUMNS if t.startswith("TIMESTAMP")}


@dataclass
class BronzeJobConfig:
    source: KafkaSource | FileSource
    sink: IcebergSink | FileSink
    # How long (processing time) a trade id is remembered: a copy arriving later is written
    # again. Default: the candles job's dedup horizon.
    dedup_ttl_s: float = field(default_factory=lambda: CandleSettings().dedup_ttl_seconds)
    catalog_ddl: list[str] = field(default_factory=list)  # Iceberg catalog DDL
    # Iceberg writers: the Parquet encoding of every trade in a task of its own.
    write_parallelism: int | None = 1


def micros_to_timestamp(column: str) -> str:
    """SQL for BIGINT epoch µs (UTC, >= 0) -> TIMESTAMP(6), exact. Flink 2.1 converts numbers
    to timestamps at ms precision at most (TO_TIMESTAMP_LTZ takes precision 0 or 3), while a
    string cast keeps µs; needs table.local-time-zone UTC (set by build)."""
    return (
        f"CAST(CONCAT(FROM_UNIXTIME(`{column}` / 1000000), '.', "
        f"LPAD(CAST(MOD(`{column}`, 1000000) AS STRING), 6, '0')) AS TIMESTAMP(6))"
    )


def source_columns(source: KafkaSource | FileSource) -> list[tuple[str, str]]:
    """The Trade columns the source has: Kafka at its contract version, the CSV at v1."""
    if isinstance(source, KafkaSource):
        return trade_columns(source.contract_version)
    return TRADE_COLUMNS


def trade_select(source: KafkaSource | FileSource) -> str:
    """source_columns from the source: Kafka carries the times as µs BIGINT (the avro format
    rejects TIMESTAMP(6), see jobs/candle_tables.py), the file source as TIMESTAMP(6)."""
    micros = isinstance(source, KafkaSource)
    return ", ".join(
        f"{micros_to_timestamp(n)} AS `{n}`" if micros and n in _TIMES else f"`{n}`"
        for n, _ in source_columns(source)
    )


def dedup_sql(source_table: str, columns: list[tuple[str, str]] = TRADE_COLUMNS) -> str:
    """Keep the first copy of each trade id by processing time: Flink's Deduplicate operator,
    insert-only (keeping the first by event time would retract rows from an append table)."""
    cols = ", ".join(f"`{n}`" for n, _ in columns)
    key = ", ".join(f"`{k}`" for k in KEY)
    return (
        f"SELECT {cols} FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY {key} "
        f"ORDER BY proc_time ASC) AS rn FROM (SELECT *, PROCTIME() AS proc_time "
        f"FROM {source_table})) WHERE rn = 1"
    )


def build(t_env: TableEnvironment, config: BronzeJobConfig) -> StatementSet:
    """Wire source -> dedup -> sink; returns the one INSERT to execute."""
    conf = t_env.get_config()
    conf.set("table.local-time-zone", "UTC")
    # The job's only state is the dedup memory: its retention is the dedup horizon.
    conf.set("table.exec.state.ttl", f"{int(config.dedup_ttl_s * 1000)} ms")
    t_env.execute_sql(config.source.ddl("trades_src"))
    for statement in config.catalog_ddl:
        t_env.execute_sql(statement)
    t_env.create_temporary_view(
        "trades_in", t_env.sql_query(f"SELECT {trade_select(config.source)} FROM trades_src")
    )
    sink, columns = config.sink, source_columns(config.source)
    if isinstance(sink, IcebergSink):
        target = sink.qualified
        if config.write_parallelism:
            target += f" /*+ OPTIONS('write-parallelism'='{int(config.write_parallelism)}') */"
        # Named columns: a table evolved by a newer version takes this version's rows too.
        target += f" ({', '.join(f'`{n}`' for n, _ in columns)})"
    else:
        t_env.execute_sql(sink.ddl("bronze_sink", columns))
        target = "`bronze_sink`"
    stmts = t_env.create_statement_set()
    stmts.add_insert_sql(f"INSERT INTO {target} {dedup_sql('trades_in', columns)}")
    return stmts


def run(t_env: TableEnvironment, config: BronzeJobConfig) -> SubmittedJob:
    """Build and submit, every operator under a stable uid (jobs/operator_uids.py)."""
    return execute(t_env, build(t_env, config))


class BronzeJobSettings(JobSettings):
    """How the bronze job runs (CANDLEFLOW_BRONZE_*). Every id of the dedup horizon is in
    state: state_backend=rocksdb when that outgrows the heap."""

    model_config = SettingsConfigDict(env_prefix="CANDLEFLOW_BRONZE_", extra="ignore")

    group_id: str = "candleflow-bronze"
    namespace: str = "bronze"  # <namespace>.trades
    dedup_ttl_s: float = 86400
    write_parallelism: int = 1
    # The Trade contract version read and landed (None: the newest this build knows).
    contract_version: int | None = None


def production_config(
    stack: StackSettings,
    topics: Topics,
    job: BronzeJobSettings,
    *,
    namespace: str | None = None,
    bounded: bool = False,
) -> BronzeJobConfig:
    """Kafka trades.v1 -> Iceberg `<namespace>.trades` (created if missing). `bounded` stops
    at the offsets the topic has at start (tests, benchmarks, the demo)."""
    from jobs.candle_iceberg import ensure_bronze_table

    namespace = namespace or job.namespace
    ensure_bronze_table(stack, namespace, job.contract_version)
    source = KafkaSource(
        topics.trades,
        stack.bootstrap_servers,
        stack.registry_url,
        group_id=job.group_id,
        startup_mode=job.startup_mode,
        bounded=bounded,
        contract_version=job.contract_version,
    )
    return BronzeJobConfig(
        source=source,
        sink=IcebergSink(stack.catalog_name, namespace, "trades"),
        dedup_ttl_s=job.dedup_ttl_s,
        catalog_ddl=[shared_catalog.flink_catalog_ddl(stack)],
        write_parallelism=job.write_parallelism,
    )


def table_env(stack: StackSettings, job: BronzeJobSettings) -> TableEnvironment:
    return job_table_env(stack, job, "bronze")


def submit(
    stack: StackSettings | None = None,
    topics: Topics | None = None,
    job: BronzeJobSettings | None = None,
    *,
    savepoint: str | None = None,
) -> SubmittedJob:
    """Build and execute (restored from `savepoint` if given); returns the submitted job."""
    stack, topics, job = stack or StackSettings(), topics or Topics(), job or BronzeJobSettings()
    t_env = table_env(stack, job)
    if savepoint:
        conf = t_env.get_config()
        conf.set("execution.savepoint.path", savepoint)
        # Every state in the savepoint must find its operator (stable uids): never drop state.
        conf.set("execution.savepoint.ignore-unclaimed-state", "false")
    result = run(t_env, production_config(stack, topics, job))
    client = result.get_job_client()
    log.info("bronze job submitted: %s", client.get_job_id() if client else "?")
    return result


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    submit()


if __name__ == "__main__":
    main()
