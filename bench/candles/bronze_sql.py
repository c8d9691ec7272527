"""The bronze job as it was before BronzeFunction (commit 4fe6f63), kept as the bench's baseline.

Flink SQL's keep-first-row deduplication on processing time (one state row per
(exchange, symbol, trade_id), state TTL = the dedup horizon), times converted from epoch µs to
TIMESTAMP(6) through strings. Only the bench uses it: the bronze job is jobs/bronze.py.
"""

from __future__ import annotations

from pyflink.table import StatementSet, TableEnvironment

from jobs.bronze import KEY, BronzeJobConfig
from jobs.candle_tables import TRADE_COLUMNS, IcebergSink

_TIMES = {n for n, t in TRADE_COLUMNS if t.startswith("TIMESTAMP")}


def _micros_to_timestamp(column: str) -> str:
    return (
        f"CAST(CONCAT(FROM_UNIXTIME(`{column}` / 1000000), '.', "
        f"LPAD(CAST(MOD(`{column}`, 1000000) AS STRING), 6, '0')) AS TIMESTAMP(6))"
    )


def build(t_env: TableEnvironment, config: BronzeJobConfig) -> StatementSet:
    """Kafka source (µs BIGINT times) -> Deduplicate -> Iceberg, as the job was wired."""
    if not isinstance(config.sink, IcebergSink):
        raise ValueError("the baseline writes Iceberg only")
    conf = t_env.get_config()
    conf.set("table.local-time-zone", "UTC")
    conf.set("table.exec.state.ttl", f"{int(config.dedup_ttl_s * 1000)} ms")
    t_env.execute_sql(config.source.ddl("trades_src"))
    for statement in config.catalog_ddl:
        t_env.execute_sql(statement)
    select = ", ".join(
        f"{_micros_to_timestamp(n)} AS `{n}`" if n in _TIMES else f"`{n}`" for n, _ in TRADE_COLUMNS
    )
    t_env.create_temporary_view("trades_in", t_env.sql_query(f"SELECT {select} FROM trades_src"))
    cols = ", ".join(f"`{n}`" for n, _ in TRADE_COLUMNS)
    key = ", ".join(f"`{k}`" for k in KEY)
    dedup = (
        f"SELECT {cols} FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY {key} "
        f"ORDER BY proc_time ASC) AS rn FROM (SELECT *, PROCTIME() AS proc_time "
        f"FROM trades_in)) WHERE rn = 1"
    )
    target = config.sink.qualified
    if config.write_parallelism:
        target += f" /*+ OPTIONS('write-parallelism'='{int(config.write_parallelism)}') */"
    stmts = t_env.create_statement_set()
    stmts.add_insert_sql(f"INSERT INTO {target} {dedup}")
    return stmts
