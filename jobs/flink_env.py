"""A configured TableEnvironment for the Flink jobs: jars, checkpointing, state backend.

Shared by the jobs' main(), backfill and tests, so all of them run the same way.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict
from pyflink.table import EnvironmentSettings, TableEnvironment

from candleflow.config import StackSettings
from candleflow.env_settings import EnvSettings
from devstack import jvm

ROOT = Path(__file__).resolve().parent.parent
UDF_JAR = ROOT / "udfs" / "target" / "candleflow-udfs.jar"


def udf_jar() -> Path:
    """udfs/target's jar, or the one CANDLEFLOW_UDF_JAR names (tests/jobs/test_upgrade_layout.py
    runs an earlier build of the operator to take a savepoint in its state layout)."""
    jar = Path(os.environ.get("CANDLEFLOW_UDF_JAR") or UDF_JAR)
    if not jar.exists():
        raise FileNotFoundError(
            f"{jar} is missing: build it with scripts/build_udfs.sh (make setup-udfs)"
        )
    return jar


# Jars on the PyFlink gateway JVM's system classpath (HADOOP_CLASSPATH), one copy per JVM:
# - Hadoop: Iceberg's catalog is created in the client JVM and needs org.apache.hadoop there
#   (`pipeline.jars` alone is not enough);
# - the SQLite JDBC driver: java.sql.DriverManager hands a registered driver only to a caller
#   whose class loader resolves that very class. With a copy in `pipeline.jars`, every
#   TableEnvironment and every in-process job loads its own org.sqlite.JDBC; the first
#   connection from a new loader then found "No suitable driver" (the new copy registers
#   itself only while DriverManager is already scanning) and the Iceberg catalog failed at
#   CREATE CATALOG or in the committer, now and then, depending on what ran before.
GATEWAY_SYSTEM_JARS = ("hadoop-client-*.jar", "commons-logging-*.jar", "sqlite-jdbc-*.jar")
JDBC_DRIVER_JARS = ("sqlite-jdbc-*.jar",)


def _on_gateway_classpath(jar: Path) -> bool:
    """Whether the gateway JVM has `jar` on its system classpath (or will have, if it has not
    been launched yet: it reads HADOOP_CLASSPATH then)."""
    from pyflink import java_gateway

    if java_gateway._gateway is None:
        listed = os.environ.get("HADOOP_CLASSPATH", "")
    else:
        listed = java_gateway._gateway.jvm.System.getProperty("java.class.path")
    return str(jar) in listed.split(os.pathsep)


def connector_jars(stack: StackSettings | None = None) -> list[Path]:
    """Kafka, Avro-registry, Iceberg and Hadoop jars from scripts/setup_jars.sh, to ship as
    `pipeline.jars`: without a JDBC driver already on the gateway's system classpath (a second
    copy in a user class loader is a second, unusable driver: GATEWAY_SYSTEM_JARS)."""
    jar_dir = (stack or StackSettings()).jars_dir / "flink"
    found = sorted(jar_dir.glob("*.jar")) if jar_dir.exists() else []
    drivers = {p for pattern in JDBC_DRIVER_JARS for p in jar_dir.glob(pattern)}
    return [p for p in found if not (p in drivers and _on_gateway_classpath(p))]


def hadoop_on_gateway_classpath(stack: StackSettings | None = None) -> None:
    """GATEWAY_SYSTEM_JARS on the PyFlink JVM's system classpath (HADOOP_CLASSPATH).

    PyFlink reads HADOOP_CLASSPATH when it launches its JVM, so this must run before the
    process's first environment. Jars already listed there stay; missing ones are added.
    """
    jar_dir = (stack or StackSettings()).jars_dir / "flink"
    wanted = [str(p) for pattern in GATEWAY_SYSTEM_JARS for p in sorted(jar_dir.glob(pattern))]
    current = [p for p in os.environ.get("HADOOP_CLASSPATH", "").split(os.pathsep) if p]
    missing = [j for j in wanted if j not in current]
    if missing:
        os.environ["HADOOP_CLASSPATH"] = os.pathsep.join([*current, *missing])


class RestartSettings(EnvSettings):
    """How often a failing job is restarted before it stays FAILED (Flink's failure-rate
    restart strategy). Transient faults (a TaskManager lost, the broker away for a while)
    restart the job from its latest checkpoint; a fault that repeats on every attempt, such
    as a record on trades.v1 that fails the Avro contract (docs/semantics.md "Bad input"),
    exhausts the budget and the job ends FAILED with that error instead of restarting for
    ever. CANDLEFLOW_RESTART_<FIELD>."""

    model_config = SettingsConfigDict(env_prefix="CANDLEFLOW_RESTART_", extra="ignore")

    max_failures: int = Field(default=10, ge=1)  # restarts allowed within interval_s ...
    interval_s: float = Field(default=300, gt=0)  # ... a failure beyond that fails the job
    delay_s: float = Field(default=10, ge=0)  # wait before each restart

    def flink_options(self) -> dict[str, str]:
        return {
            "restart-strategy.type": "failure-rate",
            "restart-strategy.failure-rate.max-failures-per-interval": str(self.max_failures),
            "restart-strategy.failure-rate.failure-rate-interval": f"{self.interval_s:g} s",
            "restart-strategy.failure-rate.delay": f"{self.delay_s:g} s",
        }


def make_table_env(
    *,
    parallelism: int | None = None,
    checkpoint_interval_ms: int | None = 10_000,
    checkpoint_timeout_ms: int = 120_000,
    checkpoint_dir: str | None = None,
    state_backend: str = "hashmap",
    connectors: bool = False,
    stack: StackSettings | None = None,
    extra: dict[str, str] | None = None,
) -> TableEnvironment:
    """Streaming TableEnvironment with the UDF jar (and connector jars when asked)."""
    if connectors:
        hadoop_on_gateway_classpath(stack)
    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    conf = t_env.get_config()
    jars = [udf_jar(), *(connector_jars(stack) if connectors else [])]
    conf.set("pipeline.jars", ";".join(p.as_uri() for p in jars))
    conf.set("pipeline.name", "candles")
    if parallelism is not None:
        conf.set("parallelism.default", str(parallelism))
    if checkpoint_interval_ms:
        conf.set("execution.checkpointing.interval", f"{checkpoint_interval_ms} ms")
        conf.set("execution.checkpointing.timeout", f"{checkpoint_timeout_ms} ms")
        conf.set("execution.checkpointing.mode", "EXACTLY_ONCE")
        conf.set(
            "execution.checkpointing.externalized-checkpoint-retention", "RETAIN_ON_CANCELLATION"
        )
        if checkpoint_dir:
            conf.set("execution.checkpointing.dir", checkpoint_dir)
    conf.set("state.backend.type", state_backend)
    # No defensive copy per record between chained operators: the PTF's output fans out to
    # one filter per sink, and those copies were most of the per-trade cost (JFR profile in
    # docs/benchmarks.md). Flink SQL's operators copy what they buffer themselves.
    conf.set("pipeline.object-reuse", "true")
    # Source watermarks every 200 ms; the PTF's own clock does not depend on it.
    conf.set("pipeline.auto-watermark-interval", "200 ms")
    for k, v in {**RestartSettings().flink_options(), **(extra or {})}.items():
        conf.set(k, v)
    return t_env


def cluster_parallelism(stack: StackSettings) -> int:
    """The session cluster's `parallelism.default` (its REST API).

    A job submitted from PyFlink without a parallelism of its own would otherwise get the
    client JVM's local default, the number of cores of the submitting machine, whatever
    the cluster says: on this 2-core host every job took 2 slots, and the three jobs
    (candles, bronze, anomalies) did not fit the stack's 4 slots: one never ran."""
    import json
    import urllib.request

    with urllib.request.urlopen(f"{stack.flink_rest_url}/jobmanager/config", timeout=15) as r:
        entries = json.loads(r.read())
    found = [e["value"] for e in entries if e.get("key") == "parallelism.default"]
    return int(found[0]) if found else 1


class JobSettings(EnvSettings):
    """How a Flink job runs, common to every job (CANDLEFLOW_JOB_* for candles,
    CANDLEFLOW_BRONZE_* for bronze: each subclass sets its env_prefix and its own fields)."""

    parallelism: int | None = None  # default: the cluster's parallelism.default
    checkpoint_interval_s: float = 10
    checkpoint_timeout_s: float = 120
    checkpoint_dir: str | None = None  # default: the cluster's execution.checkpointing.dir
    state_backend: str = "hashmap"  # or rocksdb for state larger than memory
    group_id: str
    startup_mode: str = "group-offsets"
    remote: bool = True  # submit to the stack's Flink session cluster; False: in-process


def job_table_env(stack: StackSettings, job: JobSettings, name: str) -> TableEnvironment:
    """The table environment of job `name`: in-process MiniCluster (connector jars shipped)
    or a client of the session cluster (the cluster has the connector jars; only the UDF jar
    is shipped)."""
    extra = {"pipeline.name": name}
    parallelism = job.parallelism
    if job.remote:
        if parallelism is None:
            parallelism = cluster_parallelism(stack)
        # The gateway JVM needs the connector classes to plan the tables.
        os.environ.update(jvm.client_classpath_env(stack))
        extra.update(
            {
                "execution.target": "remote",
                "rest.address": stack.host,
                "rest.port": str(stack.flink_rest_port),
                "pipeline.jars": udf_jar().as_uri(),
            }
        )
    return make_table_env(
        parallelism=parallelism,
        checkpoint_interval_ms=int(job.checkpoint_interval_s * 1000),
        checkpoint_timeout_ms=int(job.checkpoint_timeout_s * 1000),
        # In-process there is no cluster default: keep checkpoints (retained on cancel,
        # the restart point) under the stack's data dir.
        checkpoint_dir=job.checkpoint_dir
        or (None if job.remote else (stack.data_dir / "checkpoints" / name).as_uri()),
        state_backend=job.state_backend,
        connectors=not job.remote,
        stack=stack,
        extra=extra,
    )
