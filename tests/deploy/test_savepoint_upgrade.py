"""The local counterpart of `helm upgrade` with upgradeMode savepoint.

The candles job is submitted to the stack's Flink session cluster with exactly the entry
class, jar and arguments the chart renders for its FlinkDeployment (parsed out of `helm
template`), with the chart's flinkConfiguration as -D options. Only what needs Kubernetes
or object storage is replaced: HA (kubernetes) and the Prometheus reporter are left out,
gs:// state directories become local directories, the image's interpreter becomes this
venv's, and the checkpoint interval is shortened so the test is quick.

Then: real Binance trades go in; the job reaches RUNNING and emits candles; it is stopped
with a savepoint (what the operator does on a spec change); the "upgraded" spec (a
different parallelism, as `--set flink.jobs.candles.parallelism=1` renders it) starts from
that savepoint; the rest of the trades go in. Every closed window must come out exactly
once and equal to the batch reference over all trades: nothing lost, nothing counted twice
across the upgrade.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from adapters import avro
from candleflow.binance_files import read_trades
from candleflow.config import CandleSettings
from candleflow.domain import Candle, Trade
from candleflow.reference import batch_candles, candle_key
from devstack import jvm
from devstack.sample_data import COINM_DAY
from tests.deploy.tools import ROOT, find, render

PHASE_US = 10 * 60 * 1_000_000  # each phase: ten minutes of trades
# flinkConfiguration keys that only make sense on Kubernetes (or need plugins we do not run).
K8S_ONLY = ("high-availability.", "kubernetes.", "metrics.reporter.prom.")


def _has_main(module: str) -> bool:
    import importlib.util

    spec = importlib.util.find_spec(module)
    if not spec or not spec.origin:
        return False
    tree = ast.parse(Path(spec.origin).read_text())
    return any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in tree.body)


def _chart_module() -> str:
    import yaml

    values = yaml.safe_load((ROOT / "helm" / "candleflow" / "values.yaml").read_text())
    return values["flink"]["jobs"]["candles"]["module"]


MODULE = _chart_module()
pytestmark = [pytest.mark.integration, pytest.mark.flink, pytest.mark.slow]
# Checked before the session's Flink cluster is started for nothing.
needs_candles_main = pytest.mark.skipif(
    not _has_main(MODULE),
    reason=f"{MODULE} has no main() yet (the candles workstream's entry point): the chart's "
    "args cannot be run",
)


def chart_candles_job(*set_values: str) -> dict:
    (fd,) = [
        o
        for o in find(render(None, *set_values), "FlinkDeployment")
        if o["metadata"]["labels"]["candleflow.io/job"] == "candles"
    ]
    return fd["spec"]


def local_submit_command(spec: dict, state_dir: Path, *, savepoint: str | None = None) -> list[str]:
    """`flink run` with the spec's entry class, jar and args; flinkConfiguration as -D."""
    import pyflink

    home = Path(pyflink.__file__).parent
    job = spec["job"]
    jar_uri = job["jarURI"]
    assert jar_uri.startswith("local:///opt/flink/")
    jar = home / jar_uri.removeprefix("local:///opt/flink/")
    assert jar.exists(), f"{jar_uri} has no counterpart in PyFlink's distribution ({jar})"
    conf = {k: v for k, v in spec["flinkConfiguration"].items() if not k.startswith(K8S_ONLY)}
    local = {
        "execution.checkpointing.dir": (state_dir / "checkpoints").as_uri(),
        "state.checkpoints.dir": (state_dir / "checkpoints").as_uri(),
        "execution.checkpointing.savepoint-dir": (state_dir / "savepoints").as_uri(),
        "state.savepoints.dir": (state_dir / "savepoints").as_uri(),
        "python.client.executable": sys.executable,
        "python.executable": sys.executable,
        "execution.checkpointing.interval": "2 s",
        "execution.checkpointing.min-pause": "500 ms",
        # The operator turns spec.job.parallelism into this option.
        "parallelism.default": str(job["parallelism"]),
    }
    for key in local:
        if key != "parallelism.default":
            assert key in conf, f"the chart no longer sets {key}"
    conf.update(local)
    cmd = [str(home / "bin" / "flink"), "run", "-d"]
    if savepoint:
        cmd += ["-s", savepoint]
    cmd += [f"-D{k}={v}" for k, v in sorted(conf.items())]
    return [*cmd, "-c", job["entryClass"], str(jar), *job["args"]]


def _rest(url: str, method: str = "GET", body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read() or b"{}")


def _wait_state(rest: str, job_id: str, want: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    state = "?"
    while time.monotonic() < deadline:
        state = _rest(f"{rest}/jobs/{job_id}")["state"]
        if state == want:
            return
        assert state not in ("FAILED", "CANCELED") or want in ("FAILED", "CANCELED"), state
        time.sleep(1)
    raise AssertionError(f"job {job_id} is {state}, not {want}, after {timeout}s")


def _stop_with_savepoint(rest: str, job_id: str, target: Path) -> str:
    trigger = _rest(
        f"{rest}/jobs/{job_id}/stop", "POST", {"targetDirectory": target.as_uri(), "drain": False}
    )["request-id"]
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        status = _rest(f"{rest}/jobs/{job_id}/savepoints/{trigger}")
        if status["status"]["id"] == "COMPLETED":
            op = status["operation"]
            assert "location" in op, op
            return op["location"]
        time.sleep(1)
    raise AssertionError("stop-with-savepoint did not complete")


class CandleReader:
    """All candles committed to a topic so far (read_committed), decoded to domain objects."""

    def __init__(self, bootstrap: str, topic: str, registry) -> None:
        from confluent_kafka import Consumer

        self.topic = topic
        self.des = avro.deserializer(registry, "candle")
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"{topic}-reader",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
            }
        )
        self.consumer.subscribe([topic])
        self.candles: list[Candle] = []

    def poll(self, seconds: float) -> list[Candle]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            msg = self.consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            self.candles.append(self.des(msg.value(), avro.value_context(self.topic)))
        return self.candles

    def close(self) -> None:
        self.consumer.close()


def _produce(bootstrap: str, topic: str, registry, trades: list[Trade]) -> None:
    from confluent_kafka import Producer

    ser = avro.serializer(registry, "trade")
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for t in trades:
        producer.produce(
            topic, key=f"{t.exchange}:{t.symbol}".encode(), value=ser(t, avro.value_context(topic))
        )
        producer.poll(0)
    assert producer.flush(30) == 0


@pytest.fixture
def submitted() -> Iterator[Callable[[str], None]]:
    """Remember job ids; cancel whatever is still running at the end."""
    jobs: list[tuple[str, str]] = []
    yield lambda rest, job_id: jobs.append((rest, job_id))
    for rest, job_id in jobs:
        try:
            if _rest(f"{rest}/jobs/{job_id}")["state"] not in ("FINISHED", "CANCELED", "FAILED"):
                _rest(f"{rest}/jobs/{job_id}?mode=cancel", "PATCH")
        except OSError:
            pass


class ChartJobRunner:
    """Submits the chart's candles FlinkDeployment spec to the session cluster, as the
    operator would, with the rendered ConfigMap/env pointed at the test stack."""

    def __init__(
        self, cluster, topics: dict[str, str], state_dir: Path, submitted, *set_values: str
    ) -> None:
        self.settings = cluster.settings
        self.rest = self.settings.flink_rest_url
        self.state_dir = state_dir
        self.submitted = submitted
        self.set_values = set_values
        spec = chart_candles_job(*set_values)
        (cm,) = [
            o
            for o in find(render(None, *set_values), "ConfigMap")
            if o["metadata"]["name"].endswith("-config")
        ]
        container = spec["podTemplate"]["spec"]["containers"][0]
        self.env = {
            **os.environ,
            **cm["data"],
            **{e["name"]: e["value"] for e in container["env"] if "value" in e},
        }
        self.env.update(
            CANDLEFLOW_KAFKA_BOOTSTRAP=self.settings.bootstrap_servers,
            CANDLEFLOW_REGISTRY=self.settings.registry_url,
            CANDLEFLOW_DATA_DIR=str(self.settings.data_dir),
            CANDLEFLOW_CACHE=str(self.settings.cache_dir),
            FLINK_CONF_DIR=str(cluster.flink_conf_dir()),
            PYTHONPATH=str(ROOT),
            # The session cluster has the connector jars; the client needs them to plan.
            **jvm.client_classpath_env(self.settings),
            **{f"CANDLEFLOW_TOPIC_{k.upper()}": v for k, v in topics.items()},
        )
        for key in ("CANDLEFLOW_CATALOG_PASSWORD", "POD_NAME"):
            self.env.pop(key, None)

    def spec(self, *more: str) -> dict:
        return chart_candles_job(*self.set_values, *more)

    def submit(self, spec: dict, savepoint: str | None = None) -> str:
        cmd = local_submit_command(spec, self.state_dir, savepoint=savepoint)
        proc = subprocess.run(
            cmd, env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=300
        )
        found = re.search(r"JobID ([0-9a-f]{32})", proc.stdout + proc.stderr)
        assert proc.returncode == 0 and found, f"{' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}"
        self.submitted(self.rest, found.group(1))
        _wait_state(self.rest, found.group(1), "RUNNING")
        return found.group(1)

    def upgrade(self, job_id: str, new_spec: dict) -> str:
        """What the operator does on a spec change with upgradeMode savepoint."""
        assert new_spec["job"]["upgradeMode"] == "savepoint"
        savepoint = _stop_with_savepoint(self.rest, job_id, self.state_dir / "upgrade-savepoints")
        _wait_state(self.rest, job_id, "FINISHED")
        return self.submit(new_spec, savepoint)


def _consume_json_ids(bootstrap: str, topic: str, want: int, timeout: float) -> list[int]:
    from confluent_kafka import Consumer

    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{topic}-check",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    c.subscribe([topic])
    out: list[int] = []
    deadline = time.monotonic() + timeout
    quiet = 0
    try:
        while time.monotonic() < deadline and quiet < 6:
            msg = c.poll(0.5)
            if msg is None:
                quiet = quiet + 1 if len(out) >= want else 0
                continue
            assert msg.error() is None, msg.error()
            out.append(json.loads(msg.value())["id"])
    finally:
        c.close()
    return out


def test_savepoint_machinery_with_probe_job(flink_cluster, unique_topic, tmp_path, submitted):
    """The chart's PythonDriver args (module swapped for a probe job) through submit,
    stop-with-savepoint and restart at another parallelism: ids 1..200 exactly once."""
    from confluent_kafka import Producer

    src, dst = unique_topic("probe-in", partitions=2), unique_topic("probe-out", partitions=2)
    runner = ChartJobRunner(
        flink_cluster,
        {"trades": src, "candles": dst},
        tmp_path,
        submitted,
        "--set",
        "flink.jobs.candles.module=tests.deploy.savepoint_probe_job",
    )
    spec1 = runner.spec()
    assert spec1["job"]["args"] == ["-pym", "tests.deploy.savepoint_probe_job"]
    producer = Producer({"bootstrap.servers": runner.settings.bootstrap_servers})

    def produce(ids: range) -> None:
        for i in ids:
            producer.produce(src, key=str(i % 7).encode(), value=json.dumps({"id": i}).encode())
        assert producer.flush(30) == 0

    job1 = runner.submit(spec1)
    produce(range(1, 101))
    first = _consume_json_ids(runner.settings.bootstrap_servers, dst, 100, timeout=120)
    assert sorted(first) == list(range(1, 101))
    job2 = runner.upgrade(job1, runner.spec("--set", "flink.jobs.candles.parallelism=1"))
    assert job2 != job1
    produce(range(101, 201))
    ids = _consume_json_ids(runner.settings.bootstrap_servers, dst, 200, timeout=120)
    assert sorted(ids) == list(range(1, 201)), "lost or duplicated across the savepoint upgrade"


@needs_candles_main
def test_savepoint_upgrade_with_chart_args(flink_cluster, unique_topic, tmp_path, submitted):
    assert chart_candles_job()["job"]["args"][:2] == ["-pym", MODULE]
    topics = {
        "trades": unique_topic("sp-trades", partitions=2),
        "candles": unique_topic("sp-candles", partitions=2),
        "late_trades": unique_topic("sp-late"),
    }
    runner = ChartJobRunner(flink_cluster, topics, tmp_path, submitted)
    assert runner.env["CANDLEFLOW_JOB_REMOTE"] == "false"  # application mode, as on Kubernetes
    runner.env.update(
        # Local-only: quick checkpoints (read_committed output appears on checkpoints), no
        # Iceberg sinks (the test stack's catalog is shared), unique Kafka ids.
        CANDLEFLOW_JOB_CHECKPOINT_INTERVAL_S="2",
        CANDLEFLOW_JOB_ICEBERG="false",
        CANDLEFLOW_JOB_STARTUP_MODE="earliest-offset",
        CANDLEFLOW_JOB_GROUP_ID=topics["trades"],
        CANDLEFLOW_JOB_TRANSACTIONAL_ID_PREFIX=topics["candles"],
    )
    settings = runner.settings
    registry = avro.registry_client(settings)
    trades = list(read_trades(COINM_DAY))
    t0 = trades[0].event_time_us
    phase1 = [t for t in trades if t.event_time_us < t0 + PHASE_US]
    phase2 = [t for t in trades if t0 + PHASE_US <= t.event_time_us < t0 + 2 * PHASE_US]
    assert len(phase1) > 200 and len(phase2) > 200

    spec1 = runner.spec()
    spec2 = runner.spec("--set", "flink.jobs.candles.parallelism=1")
    assert spec1["job"]["args"] == spec2["job"]["args"]
    assert spec1["job"]["parallelism"] == 2 and spec2["job"]["parallelism"] == 1

    reader = CandleReader(settings.bootstrap_servers, topics["candles"], registry)
    try:
        job1 = runner.submit(spec1)
        _produce(settings.bootstrap_servers, topics["trades"], registry, phase1)
        deadline = time.monotonic() + 240
        while not reader.poll(2) and time.monotonic() < deadline:
            pass
        assert reader.candles, "no candle came out of the first run"
        runner.upgrade(job1, spec2)
        _produce(settings.bootstrap_servers, topics["trades"], registry, phase2)
        grace_s = CandleSettings().grace_seconds.get("1m", 10)
        closed_end = phase2[-1].event_time_us - int((grace_s + 1) * 1_000_000)
        reference = {
            candle_key(c): c
            for c in batch_candles(phase1 + phase2, CandleSettings().intervals)
            if c.window_end_us <= closed_end
        }
        assert len([k for k in reference if k[2] == "1m"]) >= 15
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            got = {candle_key(c) for c in reader.poll(3)}
            if set(reference) <= got:
                break
        emitted = reader.poll(5)
    finally:
        reader.close()

    by_key: dict[tuple, list[Candle]] = {}
    for c in emitted:
        by_key.setdefault(candle_key(c), []).append(c)
    missing = sorted(set(reference) - set(by_key))
    assert not missing, f"{len(missing)} closed windows never came out, e.g. {missing[:3]}"
    for key, expected in reference.items():
        got = by_key[key]
        # In-order trades: one emission per window. A second one would be a duplicate
        # replayed across the savepoint restart.
        assert len(got) == 1, f"{key}: emitted {len(got)} times: {got}"
        assert got[0] == expected, f"{key}:\n got {got[0]}\nwant {expected}"
