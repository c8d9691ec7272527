"""`candleflow jobs run candles | list | savepoint | cancel` against the test stack's Flink
session cluster: the job is submitted by the real command (a subprocess, as a user runs it),
computes the right candles, is listed, savepointed, cancelled (its checkpoints retained) and
stopped with a savepoint; bad input gives one clear line and a non-zero exit."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from confluent_kafka import Consumer
from typer.testing import CliRunner

from adapters import avro
from candleflow import binance_files, reference
from candleflow.cli import app
from candleflow.config import StackSettings
from devstack.sample_data import COINM_DAY
from devstack.stack import Stack
from jobs.candles import PTF_UID
from tests.jobs.test_kafka_iceberg import produce

pytestmark = [pytest.mark.integration, pytest.mark.flink]

ROOT = Path(__file__).resolve().parents[2]
T0_US = 1_778_198_400_000_000  # 2026-05-08 00:00 UTC


def stack_env(s: StackSettings) -> dict[str, str]:
    """CANDLEFLOW_* for a `candleflow` process that must use the test stack."""
    return {
        "CANDLEFLOW_DATA_DIR": str(s.data_dir),
        "CANDLEFLOW_CACHE": str(s.cache_dir),
        "CANDLEFLOW_HOST": s.host,
        "CANDLEFLOW_KAFKA_PORT": str(s.kafka_port),
        "CANDLEFLOW_REGISTRY_PORT": str(s.registry_port),
        "CANDLEFLOW_FLINK_REST_PORT": str(s.flink_rest_port),
        "CANDLEFLOW_KAFKA_BOOTSTRAP": "",
        "CANDLEFLOW_REGISTRY": "",
    }


def flink(s: StackSettings, path: str) -> dict:
    with urllib.request.urlopen(f"{s.flink_rest_url}{path}", timeout=10) as resp:
        return json.loads(resp.read())


def wait_tasks_running(s: StackSettings, job_id: str, timeout: float = 240) -> None:
    """Job RUNNING and every task RUNNING (a savepoint needs all of them)."""
    deadline = time.monotonic() + timeout
    job: dict = {}
    while time.monotonic() < deadline:
        job = flink(s, f"/jobs/{job_id}")
        assert job["state"] not in ("FAILED", "CANCELED", "FINISHED"), job["state"]
        if job["state"] == "RUNNING" and all(v["status"] == "RUNNING" for v in job["vertices"]):
            return
        time.sleep(1)
    raise AssertionError(f"job {job_id} not running after {timeout}s: {job.get('state')}")


def wait_state(s: StackSettings, job_id: str, want: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    state = "?"
    while time.monotonic() < deadline:
        state = flink(s, f"/jobs/{job_id}")["state"]
        if state == want:
            return
        time.sleep(1)
    raise AssertionError(f"job {job_id} is {state}, not {want}")


def operator_id(uid: str) -> bytes:
    """Flink's OperatorID of a user-set uid (StreamGraphHasherV2: murmur3_128, seed 0), as
    the 16 bytes a savepoint's _metadata holds."""
    import mmh3

    return mmh3.hash_bytes(uid.encode(), 0, x64arch=True)


def local_path(location: str) -> Path:
    return Path(urlparse(location).path)


def stop_with_savepoint(
    cli: Cli, s: StackSettings, job_id: str, directory: Path, *uids: str
) -> str:
    """`candleflow jobs savepoint JOB --stop --directory DIR`, as the upgrade tests run it:
    it succeeds, the job FINISHES, and the savepoint holds state under each of `uids` (the
    stateful operators, by their stable uid). Returns the savepoint's location."""
    stopped = cli("jobs", "savepoint", job_id, "--stop", "--directory", directory.as_uri())
    assert stopped.exit_code == 0, stopped.output
    savepoint = stopped.stdout.strip().splitlines()[-1]
    wait_state(s, job_id, "FINISHED")
    metadata = (local_path(savepoint) / "_metadata").read_bytes()
    for uid in uids:
        assert operator_id(uid) in metadata, f"no state under {uid!r}"
    return str(savepoint)


class Cli:
    """`candleflow ...` in this process (REST commands) with the test stack's settings."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def __call__(self, *args: str):
        result = CliRunner().invoke(app, list(args), env=self.env)
        # Never a traceback: either success or typer's clean exit.
        assert result.exception is None or isinstance(result.exception, SystemExit), result.output
        return result


@pytest.fixture
def cancel_leftovers(flink_cluster: Stack) -> Iterator[list[str]]:
    ids: list[str] = []
    yield ids
    s = flink_cluster.settings
    for job_id in ids:
        try:
            if flink(s, f"/jobs/{job_id}")["state"] not in ("FINISHED", "CANCELED", "FAILED"):
                req = urllib.request.Request(
                    f"{s.flink_rest_url}/jobs/{job_id}?mode=cancel", method="PATCH"
                )
                urllib.request.urlopen(req, timeout=10).close()
        except OSError:
            pass


def submit(env: dict[str, str], *options: str, job: str = "candles") -> str:
    """`candleflow jobs run <job> ...` as a user runs it; returns the job id it prints."""
    proc = subprocess.run(
        [sys.executable, "-m", "candleflow.cli", "jobs", "run", job, *options],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    found = re.search(rf"{job} job ([0-9a-f]{{32}}) submitted", proc.stdout)
    assert proc.returncode == 0 and found, proc.stdout + proc.stderr[-3000:]
    return found.group(1)


def committed_candles(s: StackSettings, topic: str, want: int, timeout: float = 180) -> list:
    de = avro.deserializer(avro.registry_client(s), "candle")
    consumer = Consumer(
        {
            "bootstrap.servers": s.bootstrap_servers,
            "group.id": f"{topic}-reader",
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    out: list = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < want and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is not None:
                assert msg.error() is None, msg.error()
                out.append(de(msg.value(), avro.value_context(topic)))
    finally:
        consumer.close()
    return out


@pytest.mark.skipif(not COINM_DAY.exists(), reason="shared data not present")
def test_jobs_cli_lifecycle(
    flink_cluster: Stack,
    unique_topic: Callable[..., str],
    tmp_path: Path,
    cancel_leftovers: list[str],
) -> None:
    s = flink_cluster.settings
    topics = {"trades": unique_topic("cli-trades"), "candles": unique_topic("cli-candles")}
    topics["late_trades"] = unique_topic("cli-late")
    checkpoints = tmp_path / "checkpoints"
    env = {
        **os.environ,
        **stack_env(s),
        **{f"CANDLEFLOW_TOPIC_{k.upper()}": v for k, v in topics.items()},
        "CANDLEFLOW_JOB_GROUP_ID": topics["trades"],
        "CANDLEFLOW_JOB_TRANSACTIONAL_ID_PREFIX": topics["candles"],
        "CANDLEFLOW_JOB_CHECKPOINT_INTERVAL_S": "2",
        "CANDLEFLOW_JOB_CHECKPOINT_DIR": checkpoints.as_uri(),
        "PYTHONPATH": str(ROOT),
    }
    cli = Cli(stack_env(s))
    options = ("--no-iceberg", "--intervals", "1m", "--startup-mode", "earliest-offset")

    # 1. Submit (RocksDB state), list, and check the job computes the right candles.
    job1 = submit(env, *options, "--parallelism", "1", "--state-backend", "rocksdb")
    cancel_leftovers.append(job1)
    wait_tasks_running(s, job1)
    listed = cli("jobs", "list")
    assert listed.exit_code == 0 and re.search(rf"^{job1}  RUNNING\s+candles$", listed.stdout, re.M)

    day = [t for t in binance_files.read_trades(COINM_DAY) if t.event_time_us < T0_US + 270_000_000]
    # Phase 1: 2.5 minutes, windows 00:00 and 00:01 close (1m grace 10 s).
    phase1 = [t for t in day if t.event_time_us < T0_US + 150_000_000]
    produce(s, topics["trades"], phase1)
    want = reference.batch_candles(day, "1m")  # 00:00 .. 00:04, the last one still open
    assert len(want) == 5
    got = committed_candles(s, topics["candles"], 2)
    assert got == want[:2]

    config = flink(s, f"/jobs/{job1}/checkpoints/config")
    assert (config["interval"], config["timeout"]) == (2000, 120_000)
    assert config["externalization"] == {"enabled": True, "delete_on_cancellation": False}
    assert "RocksDB" in config["state_backend"], config

    # 2. A savepoint; the job keeps running. The PTF's state is filed under its stable uid.
    saved = cli("jobs", "savepoint", job1, "--directory", (tmp_path / "sp1").as_uri())
    assert saved.exit_code == 0, saved.output
    sp1 = saved.stdout.strip().splitlines()[-1]
    metadata = (local_path(sp1) / "_metadata").read_bytes()
    assert operator_id(PTF_UID) in metadata, "the PTF's state is not under its uid"
    assert flink(s, f"/jobs/{job1}")["state"] == "RUNNING"

    # 3. Cancel: the job's checkpoints are retained for a restart.
    cancelled = cli("jobs", "cancel", job1)
    assert cancelled.exit_code == 0 and f"cancelled {job1}" in cancelled.stdout
    wait_state(s, job1, "CANCELED")
    assert list((checkpoints / job1).glob("chk-*/_metadata")), "no checkpoint retained"
    again = cli("jobs", "cancel", job1)
    assert again.exit_code == 1 and "already CANCELED" in again.output
    late = cli("jobs", "savepoint", job1)
    assert late.exit_code == 1 and "only a RUNNING job" in late.output

    # 4. Restore from the savepoint (hashmap state now: canonical savepoints switch backends)
    # with a different allowed lateness (only a change of intervals must be refused), and go
    # on: phase 2 closes 00:02 and 00:03; each candle exactly once over both jobs.
    env2 = {**env, "CANDLEFLOW_CANDLES_ALLOWED_LATENESS_SECONDS": "200"}
    job2 = submit(env2, *options, "--parallelism", "1", "--from-savepoint", sp1)
    cancel_leftovers.append(job2)
    wait_tasks_running(s, job2)
    produce(s, topics["trades"], [t for t in day if t.event_time_us >= T0_US + 150_000_000])
    got = committed_candles(s, topics["candles"], 4)
    assert got == want[:4]

    # 5. Stop with a savepoint: the job finishes (sinks committed).
    stop_with_savepoint(cli, s, job2, tmp_path / "sp2")
    assert not re.search(job2, cli("jobs", "list").stdout)
    assert re.search(rf"^{job2}  FINISHED", cli("jobs", "list", "--all").stdout, re.M)
    # Nothing more after the stop (the open window 00:04 is not flushed by a stop), and no
    # candle twice.
    assert committed_candles(s, topics["candles"], 5, timeout=10) == want[:4]


def test_jobs_cli_bad_input(flink_cluster: Stack) -> None:
    s = flink_cluster.settings
    cli = Cli(stack_env(s))
    unknown = "0123456789abcdef0123456789abcdef"
    for args in (("jobs", "cancel", unknown), ("jobs", "savepoint", unknown)):
        res = cli(*args)
        assert res.exit_code == 1 and f"no job {unknown} on the Flink cluster" in res.output
        assert "Traceback" not in res.output
    res = cli("jobs", "savepoint", "not-a-job")
    assert res.exit_code == 2 and "is not a Flink job id" in res.output
    res = cli("jobs", "cancel")
    assert res.exit_code == 2 and "give a job id or --all" in res.output


def test_jobs_cli_unreachable_rest(tmp_path: Path) -> None:
    env = {"CANDLEFLOW_HOST": "127.0.0.1", "CANDLEFLOW_FLINK_REST_PORT": "9"}  # discard: closed
    cli = Cli(env)
    for args in (
        ("jobs", "list"),
        ("jobs", "cancel", "--all"),
        ("jobs", "savepoint", "0123456789abcdef0123456789abcdef"),
        ("jobs", "run", "candles", "--no-iceberg"),
    ):
        res = cli(*args)
        assert res.exit_code == 1, (args, res.output)
        assert "http://127.0.0.1:9" in res.output and "unreachable" in res.output, res.output
