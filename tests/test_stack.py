"""The local stack is real: a transactional Kafka broker, topics with explicit policies, a
lifecycle that fails fast on a taken port and leaves no Java process behind."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import ConfigResource, ResourceType

from adapters import avro, catalog, topics
from candleflow.config import StackSettings
from candleflow.contracts import TOPIC_CONTRACTS
from devstack.procs import Proc, StackError, alive, pids_with_marker, port_in_use
from devstack.stack import Stack
from devstack.testing import Lease, unique_name

REPO = Path(__file__).resolve().parents[1]


def _consume_all(
    bootstrap: str, topic: str, isolation: str, expect_at_least: int, timeout: float = 30.0
) -> list[str]:
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique_name("g"),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": isolation,
        }
    )
    c.subscribe([topic])
    out: list[str] = []
    deadline = time.monotonic() + timeout
    idle_after_enough = 0
    try:
        while time.monotonic() < deadline:
            msg = c.poll(0.5)
            if msg is None:
                if len(out) >= expect_at_least:
                    idle_after_enough += 1
                    if idle_after_enough >= 4:  # 2 s with nothing more: done
                        break
                continue
            assert msg.error() is None, msg.error()
            out.append(msg.value().decode())
    finally:
        c.close()
    return out


@pytest.mark.integration
def test_broker_is_transactional(stack: Stack, unique_topic: Callable[..., str]) -> None:
    topic = unique_topic("txn", partitions=1)
    bootstrap = stack.settings.bootstrap_servers
    p = Producer(
        {
            "bootstrap.servers": bootstrap,
            "transactional.id": unique_name("txn"),
            "enable.idempotence": True,
            "transaction.timeout.ms": 60_000,
        }
    )
    p.init_transactions(30)
    p.begin_transaction()
    for i in range(3):
        p.produce(topic, key=b"k", value=f"aborted-{i}".encode())
    p.flush(30)
    p.abort_transaction(30)
    p.begin_transaction()
    for i in range(2):
        p.produce(topic, key=b"k", value=f"committed-{i}".encode())
    p.commit_transaction(30)

    committed = _consume_all(bootstrap, topic, "read_committed", expect_at_least=2)
    uncommitted = _consume_all(bootstrap, topic, "read_uncommitted", expect_at_least=5)
    assert committed == ["committed-0", "committed-1"]
    assert uncommitted == ["aborted-0", "aborted-1", "aborted-2", "committed-0", "committed-1"]


@pytest.mark.integration
def test_pipeline_topics_have_explicit_policies(stack: Stack) -> None:
    admin = topics.admin(stack.settings.bootstrap_servers)
    md = admin.list_topics(timeout=10)
    specs = topics.default_topics(stack.topics)
    resources = [ConfigResource(ResourceType.TOPIC, s.name) for s in specs]
    described = {r.name: f.result(10) for r, f in admin.describe_configs(resources).items()}
    for spec in specs:
        assert len(md.topics[spec.name].partitions) == spec.partitions, spec.name
        cfg = described[spec.name]
        assert cfg["cleanup.policy"].value == spec.cleanup_policy, spec.name
        assert cfg["retention.ms"].value == str(spec.retention_ms), spec.name
    by_name = {s.name: s for s in specs}
    assert by_name["candles.v1"].cleanup_policy == "delete"  # docs/semantics.md
    assert by_name["anomalies.v1"].cleanup_policy == "delete"
    assert by_name["explanations.v1"].cleanup_policy == "compact,delete"
    assert by_name["trades.v1"].cleanup_policy == "delete"


@pytest.mark.integration
def test_catalog_namespaces_and_flink_ddl(stack: Stack) -> None:
    names = {ns[0] for ns in catalog.catalog(stack.settings).list_namespaces()}
    assert {"bronze", "silver", "gold"} <= names
    ddl = catalog.flink_catalog_ddl(stack.settings)
    assert f"'uri' = 'jdbc:sqlite:{stack.settings.catalog_db}'" in ddl
    assert "'jdbc.schema-version' = 'V1'" in ddl


def _subject_ids(settings: StackSettings) -> dict[str, int]:
    client = avro.registry_client(settings)
    return {subj: client.get_latest_version(subj).schema_id for subj in client.get_subjects()}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scratch_env(tmp_path: Path, kafka_port: int) -> dict[str, str]:
    env = dict(os.environ)
    for key in ("CANDLEFLOW_KAFKA_BOOTSTRAP", "CANDLEFLOW_REGISTRY"):
        env.pop(key, None)
    env.update(
        CANDLEFLOW_DATA_DIR=str(tmp_path / "stack"),
        CANDLEFLOW_KAFKA_PORT=str(kafka_port),
        CANDLEFLOW_KAFKA_CONTROLLER_PORT=str(_free_port()),
        CANDLEFLOW_KAFKA_SASL_PORT=str(_free_port()),
        CANDLEFLOW_KAFKA_SASL_SSL_PORT=str(_free_port()),
        CANDLEFLOW_REGISTRY_PORT=str(_free_port()),
        CANDLEFLOW_FLINK_REST_PORT=str(_free_port()),
    )
    return env


def test_stack_up_fails_fast_naming_a_taken_kafka_port(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        env = _scratch_env(tmp_path, port)
        t0 = time.monotonic()
        res = subprocess.run(
            [sys.executable, "-m", "candleflow.cli", "stack", "up"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO,
        )
        took = time.monotonic() - t0
    out = res.stdout + res.stderr
    assert res.returncode == 1, out
    assert f"port {port} (Kafka)" in " ".join(out.split()), out
    assert took < 30, f"took {took:.1f} s to fail"
    assert pids_with_marker(Path(env["CANDLEFLOW_DATA_DIR"])) == []


@pytest.mark.integration
@pytest.mark.slow
def test_up_is_idempotent_and_down_leaves_no_java_of_ours(tmp_path: Path) -> None:
    env = _scratch_env(tmp_path, _free_port())
    settings = StackSettings(
        data_dir=Path(env["CANDLEFLOW_DATA_DIR"]),
        kafka_port=int(env["CANDLEFLOW_KAFKA_PORT"]),
        kafka_controller_port=int(env["CANDLEFLOW_KAFKA_CONTROLLER_PORT"]),
        kafka_sasl_port=int(env["CANDLEFLOW_KAFKA_SASL_PORT"]),
        kafka_sasl_ssl_port=int(env["CANDLEFLOW_KAFKA_SASL_SSL_PORT"]),
        registry_port=int(env["CANDLEFLOW_REGISTRY_PORT"]),
        flink_rest_port=int(env["CANDLEFLOW_FLINK_REST_PORT"]),
        kafka_bootstrap="",
        registry="",
    )
    stack = Stack(settings)
    try:
        stack.up(flink=True)
        pids = {st.name: st.pid for st in stack.status()}
        assert all(st.healthy for st in stack.status()), stack.status()
        ours = pids_with_marker(settings.data_dir)
        assert len(ours) >= 4, ours  # broker, registry, job manager, task manager JVMs
        t0 = time.monotonic()
        stack.up(flink=True)  # already running: no new process, quick
        assert time.monotonic() - t0 < 30
        assert {st.name: st.pid for st in stack.status()} == pids
        # Schema ids survive a registry restart (records in Kafka carry them).
        ids = _subject_ids(settings)
        assert len(ids) == len(TOPIC_CONTRACTS), ids  # one subject per contract topic
        stack.procs["registry"].stop()
        stack.up(flink=True)  # restarts only the registry
        assert {st.name: st.pid for st in stack.status()}["kafka"] == pids["kafka"]
        assert _subject_ids(settings) == ids
        # A second Stack on the same ports but another data dir must refuse, naming a port.
        other = Stack(settings.model_copy(update={"data_dir": tmp_path / "other"}))
        other.procs = {n: p for n, p in other.procs.items()}
        with pytest.raises(StackError, match=r"port \d+"):
            other._check_ports(["kafka"])
    finally:
        stopped = stack.down()
    assert set(stopped) >= {"kafka", "registry", "flink-jobmanager", "flink-taskmanager"}
    # The broker's log really is written (a wrong slf4j once made it log nothing).
    assert "Kafka Server started" in (settings.logs_dir / "kafka.log").read_text()
    assert pids_with_marker(settings.data_dir) == []
    java_left = [p for p in ours if alive(p)]
    assert java_left == []
    ports = (settings.kafka_port, settings.kafka_sasl_port, settings.registry_port)
    for port in (*ports, settings.flink_rest_port):
        assert not port_in_use(settings.host, port), port
    assert all(st.pid is None and not st.healthy for st in stack.status())


def test_leases_keep_a_shared_stack_for_other_sessions(tmp_path: Path) -> None:
    settings = StackSettings(data_dir=tmp_path)
    mine, my_flink = Lease(settings, "stack"), Lease(settings, "flink")
    mine.take()
    my_flink.take()
    assert my_flink.others() == [mine.path]
    other_live = tmp_path / "leases" / f"{os.getppid()}.flink"  # a live process: kept
    other_live.touch()
    dead = tmp_path / "leases" / "999999999.stack"  # no such process: stale, removed
    dead.touch()
    assert sorted(mine.others()) == sorted([my_flink.path, other_live])
    assert not dead.exists()
    my_flink.release()
    other_live.unlink()
    assert mine.others() == []


def test_stack_up_says_when_java_is_missing(tmp_path: Path) -> None:
    env = {
        **_scratch_env(tmp_path, _free_port()),
        "JAVA_HOME": str(tmp_path / "no-jdk"),
        "PATH": str(tmp_path),
    }
    res = subprocess.run(
        [sys.executable, "-m", "candleflow.cli", "stack", "up", "--no-flink"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    out = " ".join((res.stdout + res.stderr).split())
    assert res.returncode == 1, out
    assert "java not found" in out and "JDK 17" in out, out


def test_a_process_dying_at_start_is_reported_with_its_log(tmp_path: Path) -> None:
    proc = Proc("broken", tmp_path / "broken.pid", tmp_path / "logs" / "broken.log")
    proc.start(["bash", "-c", "echo 'ERROR boom: cannot bind'; exit 3"])
    with pytest.raises(StackError, match=r"(?s)broken died while starting.*ERROR boom"):
        proc.wait_healthy(lambda: False, timeout=30, what="never healthy")
    assert proc.pid() is None


def test_flink_processes_do_not_inherit_a_loopback_jobs_client_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An in-process PyFlink job leaves its loopback worker's address in os.environ; a session
    cluster started afterwards (the flink_cluster fixture, after such a test) must not pass it
    to its TaskManager, or every Python UDF of later jobs dials that dead server for ever."""
    monkeypatch.setenv("PYTHON_LOOPBACK_SERVER_ADDRESS", "localhost:1")
    monkeypatch.setenv("PYFLINK_GATEWAY_DISABLED", "true")
    monkeypatch.setenv("_PYFLINK_CONN_INFO_PATH", "/nonexistent")
    monkeypatch.setenv("_PYTHON_WORKER_MEMORY_LIMIT", "67108864")
    monkeypatch.setenv("CANDLEFLOW_SOMETHING_OURS", "kept")
    env = Stack(StackSettings(data_dir=tmp_path))._flink_env()
    leaked = {"PYTHON_LOOPBACK_SERVER_ADDRESS", "PYFLINK_GATEWAY_DISABLED"}
    leaked |= {"_PYFLINK_CONN_INFO_PATH", "_PYTHON_WORKER_MEMORY_LIMIT"}
    assert leaked.isdisjoint(env)
    assert env["CANDLEFLOW_SOMETHING_OURS"] == "kept"
    assert env["FLINK_CONF_DIR"].startswith(str(tmp_path))
