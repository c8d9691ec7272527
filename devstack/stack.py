"""The local stack: a Kafka broker (KRaft, combined mode), the Apicurio schema registry, an
optional Flink standalone session cluster, and the Iceberg catalog + warehouse on disk.

Real processes, started from the jars in StackSettings.jars_dir (scripts/setup_jars.sh) and
PyFlink's own distribution; configuration, data, pids and logs all live in
StackSettings.data_dir, so two stacks with different ports and data dirs can run side by side
(the tests use their own). `up` is idempotent; `down` stops every process group we started.
"""

from __future__ import annotations

import base64
import fcntl
import os
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import structlog

from adapters import catalog, topics
from candleflow.config import StackSettings, Topics
from devstack import jvm
from devstack.config import LOG4J2, flink_config, kafka_properties
from devstack.jvm import flink_process_env
from devstack.kafka_auth import SASL_USERS, KafkaCredentials
from devstack.procs import (
    Proc,
    StackError,
    http_json,
    kill_group,
    marker,
    pids_with_marker,
    port_in_use,
    tail,
)

log = structlog.get_logger("candleflow.stack")

SERVICES = ("kafka", "registry", "flink-jobmanager", "flink-taskmanager")
START_TIMEOUT_S = 120.0


@dataclass
class ServiceStatus:
    name: str
    pid: int | None
    ports: list[int]
    healthy: bool
    log_file: Path


class Stack(KafkaCredentials):
    """Handle on the local stack described by `settings` (ports, data dir, jars)."""

    def __init__(self, settings: StackSettings | None = None, topic_names: Topics | None = None):
        self.settings = settings or StackSettings()
        self.topics = topic_names or Topics()
        d = self.settings.data_dir
        self.conf_dir = d / "conf"
        self.pid_dir = d / "pids"
        self.procs = {
            name: Proc(name, self.pid_dir / f"{name}.pid", self.settings.logs_dir / f"{name}.log")
            for name in SERVICES
        }

    # --- health ---------------------------------------------------------------------------

    def kafka_healthy(self, timeout: float = 2.0) -> bool:
        try:
            md = topics.admin(self.settings.bootstrap_servers, quiet=True).list_topics(
                timeout=timeout
            )
        except Exception:  # noqa: BLE001 - any failure means "not reachable"
            return False
        return bool(md.brokers)

    def registry_healthy(self, timeout: float = 2.0) -> bool:
        try:
            return isinstance(http_json(f"{self.settings.registry_url}/subjects", timeout), list)
        except Exception:  # noqa: BLE001
            return False

    def flink_healthy(self, timeout: float = 2.0) -> bool:
        try:
            overview = http_json(f"{self.settings.flink_rest_url}/overview", timeout)
        except Exception:  # noqa: BLE001
            return False
        return isinstance(overview, dict) and overview.get("taskmanagers", 0) >= 1

    def healthy(self, flink: bool = False) -> bool:
        ok = self.kafka_healthy() and self.registry_healthy()
        return ok and (self.flink_healthy() if flink else True)

    # --- up -------------------------------------------------------------------------------

    def up(self, flink: bool = True, timeout: float = START_TIMEOUT_S) -> None:
        """Start what is not running, wait until healthy, then create topics, contracts and
        catalog namespaces (all idempotent). Concurrent `up`s on one data dir take turns."""
        s = self.settings
        for d in (s.data_dir, s.logs_dir, self.conf_dir, self.pid_dir):
            d.mkdir(parents=True, exist_ok=True)
        with (s.data_dir / ".up.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._up(flink, timeout)

    def _up(self, flink: bool, timeout: float) -> None:
        t0 = time.monotonic()
        s = self.settings
        wanted = ["kafka", "registry"] + (
            ["flink-jobmanager", "flink-taskmanager"] if flink else []
        )
        # A service already answering on its port (ours, or one started by hand) is reused.
        answering = {
            "kafka": self.kafka_healthy,
            "registry": self.registry_healthy,
            "flink-jobmanager": self.flink_healthy,
            "flink-taskmanager": self.flink_healthy,
        }
        to_start = [n for n in wanted if self.procs[n].pid() is None and not answering[n]()]
        if to_start:
            java = jvm.java_bin()
            self._check_ports(to_start)
            starters = {
                "kafka": self._start_kafka,
                "registry": self._start_registry,
                "flink-jobmanager": self._start_flink_jm,
                "flink-taskmanager": self._start_flink_tm,
            }
            for name in to_start:
                log.info("starting", service=name)
                starters[name](java)
        # Wait for all in parallel: the JVMs start concurrently anyway.
        checks = {
            "kafka": (self.kafka_healthy, f"broker on {s.bootstrap_servers}"),
            "registry": (self.registry_healthy, f"registry on {s.registry_url}"),
            "flink-jobmanager": (
                self.flink_healthy,
                f"Flink REST on {s.flink_rest_url} with a task manager",
            ),
        }
        # Wait on what we started now or earlier (ours and maybe still starting).
        waits = [n for n in wanted if n in checks and self.procs[n].pid() is not None]
        try:
            with ThreadPoolExecutor(max(1, len(waits))) as pool:
                futures = [
                    pool.submit(self.procs[n].wait_healthy, checks[n][0], timeout, checks[n][1])
                    for n in waits
                ]
                for name, f in zip(waits, futures, strict=True):
                    log.info("healthy", service=name, waited_s=round(f.result(), 1))
            t1 = time.monotonic()
            self._bootstrap()
            log.info("bootstrapped", seconds=round(time.monotonic() - t1, 1))
        except BaseException:
            # Leave nothing half-started behind that we started in this call.
            for name in reversed(to_start):
                self.procs[name].stop(grace=5)
            raise
        log.info("stack up", seconds=round(time.monotonic() - t0, 1), data_dir=str(s.data_dir))

    def _check_ports(self, names: list[str]) -> None:
        s = self.settings
        ports = {
            "kafka": [
                ("Kafka", s.kafka_port),
                ("Kafka controller", s.kafka_controller_port),
                ("Kafka SASL", s.kafka_sasl_port),
                ("Kafka SASL_SSL", s.kafka_sasl_ssl_port),
            ],
            "registry": [("schema registry", s.registry_port)],
            "flink-jobmanager": [
                ("Flink REST", s.flink_rest_port),
                ("Flink RPC", self.flink_rpc_port),
            ],
        }
        for name in names:
            for label, port in ports.get(name, []):
                if port_in_use(s.host, port):
                    raise StackError(
                        f"port {port} ({label}) on {s.host} is already in use by another "
                        f"process; stop it or choose another port (CANDLEFLOW_* settings)"
                    )

    def _bootstrap(self) -> None:
        """Topics, the registry's BACKWARD rule and contracts, catalog namespaces."""
        from adapters import avro  # imports the registry client only when needed

        admin = topics.admin(self.settings.bootstrap_servers)
        specs = topics.default_topics(self.topics)
        created = topics.ensure_topics(admin, specs)
        if created:
            log.info("topics created", topics=created)
        changed = topics.align_configs(admin, specs)
        if changed:
            log.info("topic settings changed", topics=changed)
        # Apicurio's default is no compatibility rule; we want every change checked.
        http_json(
            f"{self.settings.registry_url}/config", method="PUT", body={"compatibility": "BACKWARD"}
        )
        topic_contracts = {
            getattr(self.topics, attr): contract
            for attr, contract in (
                ("trades", "trade"),
                ("late_trades", "late_trade"),
                ("candles", "candle"),
                ("anomalies", "anomaly"),
                ("explanations", "explanation"),
                ("reconcile", "reconcile"),
            )
        }
        avro.register_contracts(avro.registry_client(self.settings), topic_contracts)
        self._ensure_scram_user()
        created_ns = catalog.ensure_namespaces(self.settings)
        if created_ns:
            log.info("namespaces created", namespaces=created_ns)

    # --- Kafka ----------------------------------------------------------------------------

    def _java_base(self, java: str, heap: str) -> list[str]:
        return [java, f"-Xmx{heap}", marker(self.settings.data_dir)]

    def _start_kafka(self, java: str) -> None:
        s = self.settings
        data = s.data_dir / "kafka" / "data"
        conf = self.conf_dir / "kafka"
        conf.mkdir(parents=True, exist_ok=True)
        props = conf / "server.properties"
        users = {SASL_USERS["PLAIN"]: self.sasl_passwords()["PLAIN"]}
        props.touch(mode=0o600)
        props.chmod(0o600)  # it holds the PLAIN user's password
        props.write_text(kafka_properties(s, data, users, self.tls_files().keystore))
        log4j = conf / "log4j2.properties"
        log4j.write_text(LOG4J2)
        cp = jvm.classpath(jvm.jars(s, "kafka"))
        base = [
            *self._java_base(java, "768m"),
            "-Xms256m",
            "-XX:+UseG1GC",
            f"-Dlog4j2.configurationFile={log4j}",
            "-cp",
            cp,
        ]
        if not (data / "meta.properties").exists():
            # KRaft needs its storage formatted once with a cluster id.
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            fmt = Proc(
                "kafka-format", self.pid_dir / "kafka-format.pid", s.logs_dir / "kafka-format.log"
            )
            fmt.start(
                [
                    *base,
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    cluster_id,
                    "-c",
                    str(props),
                    "--ignore-formatted",
                ]
            )
            deadline = time.monotonic() + 60
            while fmt.pid() is not None and time.monotonic() < deadline:
                time.sleep(0.2)
            fmt.stop(grace=1)
            if not (data / "meta.properties").exists():
                raise StackError(
                    f"formatting Kafka storage in {data} failed:\n{tail(fmt.log_file)}"
                )
        self.procs["kafka"].start([*base, "kafka.Kafka", str(props)])

    # --- registry -------------------------------------------------------------------------

    def _start_registry(self, java: str) -> None:
        s = self.settings
        db = s.data_dir / "registry" / "db"
        db.parent.mkdir(parents=True, exist_ok=True)
        # Persistent H2 file: schema ids must survive a restart, or records already in Kafka
        # (which carry the id) could no longer be read.
        argv = [
            *self._java_base(java, "384m"),
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            f"-Dquarkus.http.port={s.registry_port}",
            f"-Dquarkus.http.host={s.host}",
            f"-Dapicurio.datasource.url=jdbc:h2:file:{db}",
            "-Dapicurio.datasource.jdbc.initial-size=2",
            "-Dapicurio.datasource.jdbc.min-size=2",
            f"-Djava.io.tmpdir={s.data_dir / 'registry'}",
            "-jar",
            str(jvm.registry_runner(s)),
        ]
        self.procs["registry"].start(argv, cwd=s.data_dir / "registry")

    # --- Flink ----------------------------------------------------------------------------

    @property
    def flink_rpc_port(self) -> int:
        return self.settings.flink_rest_port + 1

    def flink_remote_options(self) -> dict[str, str]:
        """Flink config that makes a PyFlink TableEnvironment submit to this session cluster
        (combine with jvm.client_classpath_env() instead of pipeline.jars)."""
        return {
            "execution.target": "remote",
            "rest.address": self.settings.host,
            "rest.port": str(self.settings.flink_rest_port),
        }

    def flink_home(self) -> Path:
        import pyflink

        return Path(pyflink.__file__).parent

    def flink_conf_dir(self) -> Path:
        return self.conf_dir / "flink"

    def _flink_env(self) -> dict[str, str]:
        s = self.settings
        home = self.flink_home()
        conf = self.flink_conf_dir()
        conf.mkdir(parents=True, exist_ok=True)
        (s.data_dir / "flink" / "tmp").mkdir(parents=True, exist_ok=True)
        (conf / "config.yaml").write_text(
            flink_config(s, self.flink_rpc_port, sys.executable, marker(s.data_dir))
        )
        for name in ("log4j.properties", "log4j-console.properties", "log4j-cli.properties"):
            (conf / name).write_text((home / "conf" / name).read_text())
        env = flink_process_env(os.environ)
        # The bin scripts put HADOOP_CLASSPATH on the JVM classpath after Flink's lib/: the
        # connector jars plus flink-python (PyFlink keeps it in opt/).
        extra = [*jvm.flink_connector_jars(s), *sorted((home / "opt").glob("flink-python*.jar"))]
        env.update(
            FLINK_HOME=str(home),
            FLINK_CONF_DIR=str(conf),
            FLINK_LOG_DIR=str(s.logs_dir),
            FLINK_PID_DIR=str(self.pid_dir / "flink"),
            HADOOP_CLASSPATH=jvm.classpath(extra),
        )
        env.pop("HADOOP_CONF_DIR", None)
        if java_home := os.environ.get("JAVA_HOME"):
            env["JAVA_HOME"] = java_home
        return env

    def _start_flink_jm(self, java: str) -> None:
        home = self.flink_home()
        self.procs["flink-jobmanager"].start(
            ["bash", str(home / "bin" / "jobmanager.sh"), "start-foreground"],
            env=self._flink_env(),
            cwd=self.settings.data_dir,
        )

    def _start_flink_tm(self, java: str) -> None:
        home = self.flink_home()
        self.procs["flink-taskmanager"].start(
            ["bash", str(home / "bin" / "taskmanager.sh"), "start-foreground"],
            env=self._flink_env(),
            cwd=self.settings.data_dir,
        )

    # --- down / status --------------------------------------------------------------------

    def down(self, grace: float = 20.0) -> list[str]:
        """Stop every process we started (Flink first, Kafka last); returns what was running."""
        stopped = [name for name in reversed(SERVICES) if self.procs[name].stop(grace)]
        # Anything else still carrying our marker (a lost pid file, a crashed `up`).
        for pid in pids_with_marker(self.settings.data_dir):
            kill_group(pid, grace=5)
            stopped.append(f"stray pid {pid}")
        if stopped:
            log.info("stack down", stopped=stopped)
        return stopped

    def status(self) -> list[ServiceStatus]:
        s = self.settings
        health = {
            "kafka": self.kafka_healthy,
            "registry": self.registry_healthy,
            "flink-jobmanager": self.flink_healthy,
            "flink-taskmanager": self.flink_healthy,
        }
        ports = {
            "kafka": [
                s.kafka_port,
                s.kafka_controller_port,
                s.kafka_sasl_port,
                s.kafka_sasl_ssl_port,
            ],
            "registry": [s.registry_port],
            "flink-jobmanager": [s.flink_rest_port, self.flink_rpc_port],
            "flink-taskmanager": [],
        }
        out = []
        for name in SERVICES:
            pid = self.procs[name].pid()
            out.append(
                ServiceStatus(
                    name,
                    pid,
                    ports[name],
                    pid is not None and health[name](),
                    self.procs[name].log_file,
                )
            )
        return out
