"""The anomalies job: candles.v1 -> keyed detectors -> anomalies.v1 + gold.anomalies.

Why a keyed DataStream step inside a Table API job (and not an SQL OVER window):
- corrections: a corrected candle (revision > 0) must *replace* its window's row in the
  baseline and re-evaluate that window and the later ones, retracting an anomaly that no
  longer holds. An `OVER (PARTITION BY .. ORDER BY rowtime ROWS 60 PRECEDING)` window
  treats a correction as one more row (the baseline counts the window twice) and, being
  ordered by the watermark, drops a correction that arrives after the watermark passed
  its window — so it can neither replace nor retract.
- determinism: the statistics must follow event time (window_start), not arrival order;
  the detector keeps the last N + horizon windows per key, sorted by window_start.
- idempotent replay: a candle whose revision was already seen is a no-op, so the same
  candles read twice emit nothing the second time.
PyFlink 2.1 has no Python process table functions, and a Python UDTF has no keyed,
checkpointed state; a `KeyedProcessFunction` has both. It runs per candle, not per trade,
so Python is fast enough here (ARCHITECTURE.md). The pure logic is candleflow/anomaly_rules.py.

`build(t_env, config)` wires source -> detectors -> sinks and returns the StatementSet;
`main()` / `run_anomalies()` configure checkpointing and execute (no `.wait()`).
"""

from __future__ import annotations

import calendar
import logging
import os
import pickle
import sys
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pyflink.common import Row
from pyflink.common.typeinfo import Types
from pyflink.datastream import KeyedProcessFunction, RuntimeContext, StreamExecutionEnvironment
from pyflink.datastream.state import ValueStateDescriptor
from pyflink.table import StatementSet, StreamTableEnvironment

from candleflow.anomaly_rules import DetectorConfig, DivergenceDetector, SeriesDetector
from candleflow.candle_map import candle_from_row
from candleflow.config import StackSettings, Topics
from candleflow.domain import Anomaly, Candle
from jobs.anomaly_tables import (
    ANOMALY_SELECT,
    FileAnomalies,
    FileCandles,
    IcebergAnomalies,
    KafkaAnomalies,
    KafkaCandles,
    iceberg_catalog_ddl,
)
from jobs.candle_tables import CANDLE_COLUMNS
from jobs.flink_env import RestartSettings, cluster_parallelism, hadoop_on_gateway_classpath
from jobs.operator_uids import execute

log = logging.getLogger(__name__)

# Stable operator ids: savepoints map state by these. Change only with a migration plan.
SERIES_UID = "anomalies-series-detector-v1"
DIVERGENCE_UID = "anomalies-divergence-detector-v1"

EVENT_TYPE = Types.ROW_NAMED(
    [
        "anomaly_id",
        "rule",
        "severity",
        "exchange",
        "symbol",
        "ivl",
        "window_start_ms",
        "window_end_ms",
        "value",
        "threshold",
        "status",
        "candle_revision",
        "details",
    ],
    [
        Types.STRING(),
        Types.STRING(),
        Types.STRING(),
        Types.STRING(),
        Types.STRING(),
        Types.STRING(),
        Types.LONG(),
        Types.LONG(),
        Types.DOUBLE(),
        Types.DOUBLE(),
        Types.STRING(),
        Types.INT(),
        Types.MAP(Types.STRING(), Types.STRING()),
    ],
)


@dataclass
class AnomalyJobConfig:
    source: KafkaCandles | FileCandles
    sinks: list[KafkaAnomalies | FileAnomalies | IcebergAnomalies] = field(default_factory=list)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    catalog_ddl: list[str] = field(default_factory=list)


# --- the keyed detectors -----------------------------------------------------------------


# PyFlink's Table -> DataStream conversion cannot carry DECIMAL(38, 18) (it maps to a legacy
# DECIMAL without precision and fails) and TIMESTAMP(6) would go through datetime: both
# cross as text and are parsed back exactly.
CANDLE_TEXT_SELECT = ", ".join(
    f"CAST(`{name}` AS STRING) AS `{name}`"
    if ("DECIMAL" in typ or "TIMESTAMP" in typ)
    else f"`{name}`"
    for name, typ in CANDLE_COLUMNS
)


def _micros(value: Any) -> int:
    """Epoch micros (BIGINT, Kafka) or TIMESTAMP(6) text (files, UTC) -> epoch micros."""
    if isinstance(value, datetime):
        return calendar.timegm(value.timetuple()) * 1_000_000 + value.microsecond
    if isinstance(value, int) or str(value).lstrip("-").isdigit():
        return int(value)
    whole, _, frac = str(value).replace("T", " ").partition(".")
    base = datetime.strptime(whole, "%Y-%m-%d %H:%M:%S")  # noqa: DTZ007 (UTC by contract)
    return calendar.timegm(base.timetuple()) * 1_000_000 + int((frac + "000000")[:6])


def row_to_candle(row: Row) -> Candle:
    return candle_from_row(row.as_dict(), timestamp=_micros)


def anomaly_row(a: Anomaly) -> Row:
    return Row(
        a.anomaly_id,
        a.rule,
        a.severity,
        a.exchange,
        a.symbol,
        a.interval,
        a.window_start_us // 1000,
        a.window_end_us // 1000,
        float(a.value),
        float(a.threshold),
        a.status,
        a.candle_revision,
        dict(a.details),
    )


def row_to_anomaly(row: Row) -> Anomaly:
    (
        aid,
        rule,
        severity,
        exchange,
        symbol,
        interval,
        ws_ms,
        we_ms,
        value,
        threshold,
        status,
        revision,
        details,
    ) = tuple(row)
    return Anomaly(
        aid,
        rule,
        severity,
        exchange,
        symbol,
        interval,
        ws_ms * 1000,
        we_ms * 1000,
        value,
        threshold,
        status,
        revision,
        dict(details or {}),
    )


WIRE_TYPE = Types.ROW_NAMED(
    ["k", "v"], [Types.PRIMITIVE_ARRAY(Types.BYTE()), Types.PRIMITIVE_ARRAY(Types.BYTE())]
)


def wire_encoder(schema_id: int):
    """Anomaly row -> (key, Confluent wire-format Avro value) for the raw Kafka sink."""
    header = b"\x00" + schema_id.to_bytes(4, "big")

    def encode(row: Row) -> Row:
        from adapters import avro  # on the Python worker

        a = row_to_anomaly(row)
        return Row(a.anomaly_id.encode(), header + avro.encode(a, "anomaly"))

    return encode


class _Detect(KeyedProcessFunction):
    """Holds one pure detector per key in keyed state (pickled), checkpointed by Flink."""

    def __init__(self, config: DetectorConfig, cross: bool) -> None:
        self.config = config
        self.cross = cross
        self.state: Any = None

    def open(self, runtime_context: RuntimeContext) -> None:
        self.state = runtime_context.get_state(
            ValueStateDescriptor("detector", Types.PICKLED_BYTE_ARRAY())
        )

    def process_element(self, value: Row, ctx: KeyedProcessFunction.Context):
        candle = row_to_candle(value)
        raw = self.state.value()
        det = pickle.loads(raw) if raw is not None else None
        if det is not None:
            det.config = self.config  # not part of the state (see anomaly_rules)
        else:
            det = (
                DivergenceDetector(candle.symbol, candle.interval, self.config)
                if self.cross
                else SeriesDetector(candle.exchange, candle.symbol, candle.interval, self.config)
            )
        out = det.update(candle)
        self.state.update(pickle.dumps(det, protocol=pickle.HIGHEST_PROTOCOL))
        for a in out:
            yield anomaly_row(a)


def build(t_env: StreamTableEnvironment, config: AnomalyJobConfig) -> StatementSet:
    """Wire candles -> series + divergence detectors -> sinks; returns the statements."""
    t_env.get_config().set("table.local-time-zone", "UTC")
    t_env.execute_sql(config.source.ddl("candles_src"))
    for statement in config.catalog_ddl:
        t_env.execute_sql(statement)
    candles = t_env.to_data_stream(t_env.sql_query(f"SELECT {CANDLE_TEXT_SELECT} FROM candles_src"))
    series = (
        candles.key_by(lambda r: f"{r[0]}|{r[1]}|{r[2]}", key_type=Types.STRING())
        .process(_Detect(config.detector, cross=False), output_type=EVENT_TYPE)
        .name("series-detector")
        .uid(SERIES_UID)
    )
    # Cross-exchange: keyed by (symbol, interval), so all exchanges of a symbol meet.
    cross = (
        candles.key_by(lambda r: f"{r[1]}|{r[2]}", key_type=Types.STRING())
        .process(_Detect(config.detector, cross=True), output_type=EVENT_TYPE)
        .name("divergence-detector")
        .uid(DIVERGENCE_UID)
    )
    events = series.union(cross)
    t_env.create_temporary_view("anomaly_events", t_env.from_data_stream(events))
    stmts = t_env.create_statement_set()
    for n, sink in enumerate(config.sinks):
        if isinstance(sink, IcebergAnomalies):
            for statement in sink.ddl():
                t_env.execute_sql(statement)
            stmts.add_insert_sql(
                f"INSERT INTO {sink.qualified} SELECT {ANOMALY_SELECT} FROM anomaly_events"
            )
            continue
        t_env.execute_sql(sink.ddl(f"anomalies_sink_{n}"))
        if isinstance(sink, KafkaAnomalies):
            wire = (
                events.map(wire_encoder(sink.schema_id()), output_type=WIRE_TYPE)
                .name(f"anomaly-avro-{n}")
                .uid(f"anomalies-avro-{n}-v1")
            )
            t_env.create_temporary_view(f"anomaly_wire_{n}", t_env.from_data_stream(wire))
            select = f"SELECT k, v FROM anomaly_wire_{n}"
        else:
            select = f"SELECT {ANOMALY_SELECT} FROM anomaly_events"
        stmts.add_insert_sql(f"INSERT INTO `anomalies_sink_{n}` {select}")
    return stmts


# --- environment and entry points --------------------------------------------------------


def make_stream_table_env(
    *,
    parallelism: int | None = None,
    checkpoint_interval_ms: int | None = 10_000,
    checkpoint_dir: str | None = None,
    stack: StackSettings | None = None,
    connectors: bool = True,
    extra: dict[str, str] | None = None,
) -> StreamTableEnvironment:
    """A StreamTableEnvironment (the job mixes Table API and a keyed DataStream step)."""
    if connectors:
        hadoop_on_gateway_classpath(stack)
    env = StreamExecutionEnvironment.get_execution_environment()
    jars: list[str] = []
    if connectors:
        from jobs.flink_env import connector_jars

        jars = [p.as_uri() for p in connector_jars(stack)]
        if jars:
            env.add_jars(*jars)  # before the table env exists: CREATE CATALOG needs them
    t_env = StreamTableEnvironment.create(env)
    conf = t_env.get_config()
    if jars:
        conf.set("pipeline.jars", ";".join(jars))
    conf.set("pipeline.name", "anomalies")
    # Python workers run in this interpreter's environment (the project venv).
    conf.set("python.executable", sys.executable)
    conf.set("python.client.executable", sys.executable)
    if parallelism is not None:
        conf.set("parallelism.default", str(parallelism))
    if checkpoint_interval_ms:
        conf.set("execution.checkpointing.interval", f"{checkpoint_interval_ms} ms")
        conf.set("execution.checkpointing.mode", "EXACTLY_ONCE")
        conf.set(
            "execution.checkpointing.externalized-checkpoint-retention", "RETAIN_ON_CANCELLATION"
        )
        if checkpoint_dir:
            conf.set("execution.checkpointing.dir", checkpoint_dir)
    for key, value in {**RestartSettings().flink_options(), **(extra or {})}.items():
        conf.set(key, value)
    return t_env


def production_config(
    stack: StackSettings | None = None,
    topics: Topics | None = None,
    *,
    bounded: bool = False,
    iceberg: bool = True,
    iceberg_database: str = "gold",
    group_id: str = "candleflow-anomalies",
    transactional_id_prefix: str = "candleflow-anomalies",
    startup_mode: str = "group-offsets",
) -> AnomalyJobConfig:
    stack = stack or StackSettings()
    topics = topics or Topics()
    sinks: list[KafkaAnomalies | FileAnomalies | IcebergAnomalies] = [
        KafkaAnomalies(
            topics.anomalies,
            stack.bootstrap_servers,
            stack.registry_url,
            transactional_id_prefix=transactional_id_prefix,
        )
    ]
    ddl: list[str] = []
    if iceberg:
        ddl.append(iceberg_catalog_ddl(stack))
        sinks.append(IcebergAnomalies(stack.catalog_name, iceberg_database))
    return AnomalyJobConfig(
        source=KafkaCandles(
            topics.candles,
            stack.bootstrap_servers,
            stack.registry_url,
            group_id=group_id,
            startup_mode=startup_mode,
            bounded=bounded,
        ),
        sinks=sinks,
        catalog_ddl=ddl,
    )


def run_anomalies(
    *,
    bounded: bool = False,
    parallelism: int | None = None,
    checkpoint_interval_ms: int = 10_000,
    checkpoint_dir: str | None = None,
    iceberg: bool = True,
    remote: bool = True,
    wait: bool = False,
    group_id: str = "candleflow-anomalies",
    transactional_id_prefix: str = "candleflow-anomalies",
    startup_mode: str = "group-offsets",
    iceberg_database: str = "gold",
    savepoint_path: str | None = None,
) -> str | None:
    """`candleflow jobs run anomalies`: submit the job; returns its job id.

    remote=True (the default, as `candleflow jobs run anomalies` calls it) submits to the
    stack's Flink session cluster (which has the connector jars; the client gets them on its
    classpath only); remote=False runs a MiniCluster in this process, which lives only as
    long as the process (use wait=True), or the cluster the process was started in
    (Kubernetes: PythonDriver, see main()).
    """
    stack = StackSettings()
    if checkpoint_dir is None:
        checkpoint_dir = (stack.data_dir / "checkpoints" / "anomalies").as_uri()
    extra: dict[str, str] = {}
    if remote:
        from devstack import jvm
        from devstack.stack import Stack

        # Replace, not setdefault: a HADOOP_CLASSPATH inherited from a parent that set only the
        # Hadoop jars (flink_env.hadoop_on_gateway_classpath) hid the Iceberg catalog factory.
        os.environ.update(jvm.client_classpath_env(stack))
        extra = Stack(stack).flink_remote_options()
        if parallelism is None:  # not the client's core count (jobs/flink_env.py)
            parallelism = cluster_parallelism(stack)
    if savepoint_path:
        # Restore from a savepoint or retained checkpoint; never drop state silently.
        extra["execution.savepoint.path"] = savepoint_path
        extra["execution.savepoint.ignore-unclaimed-state"] = "false"
    t_env = make_stream_table_env(
        parallelism=parallelism,
        checkpoint_interval_ms=checkpoint_interval_ms,
        checkpoint_dir=checkpoint_dir,
        stack=stack,
        connectors=not remote,
        extra=extra,
    )
    config = production_config(
        stack,
        bounded=bounded,
        iceberg=iceberg,
        iceberg_database=iceberg_database,
        group_id=group_id,
        transactional_id_prefix=transactional_id_prefix,
        startup_mode=startup_mode,
    )
    result = execute(t_env, build(t_env, config))  # stable uids on every operator
    client = result.get_job_client()
    job_id = str(client.get_job_id()) if client else None
    log.info("anomalies job submitted: %s", job_id)
    if wait:
        result.wait()
    return job_id


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    # Under the operator's PythonDriver (or `python -m jobs.anomalies`) the process is the
    # job's driver: submit to the cluster it runs in and stay until the job ends.
    run_anomalies(remote=False, wait=True)


if __name__ == "__main__":
    main()
