"""The whole local pipeline as the chaos run drives it: real processes, real commands.

stack (Kafka, registry, Flink session cluster, Iceberg catalog) -> the Flink jobs of
`JOBS` -> `candleflow serve --local` -> `candleflow explainer run` (the real SDK against
the fake Messages API) -> N gRPC subscribers -> `candleflow ingest replay`. Each piece can
be killed with SIGKILL (its whole process group, as a container kill would) and brought
back the way a user would: `stack up`, `jobs run ... --from-savepoint <latest retained
checkpoint>`, `ingest replay --resume`, the services started again.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from candleflow.config import StackSettings
from devstack.procs import alive
from devstack.stack import Stack

ROOT = Path(__file__).resolve().parents[2]
_SUBMITTED = re.compile(r"job ([0-9a-f]{32}) submitted")
_DROPPED = "Unable to commit transaction"  # KafkaCommitter: fenced or invalid state


@dataclass(frozen=True)
class JobSpec:
    """A Flink job of the pipeline: the `candleflow jobs run` arguments that submit it."""

    name: str  # Flink's job name (pipeline.name)
    run: tuple[str, ...]


# The pipeline's Flink jobs, in submission order.
JOBS: tuple[JobSpec, ...] = (
    JobSpec("candles", ("jobs", "run", "candles")),
    JobSpec("bronze", ("jobs", "run", "bronze")),
    JobSpec("anomalies", ("jobs", "run", "anomalies")),
)


class PipelineError(RuntimeError):
    pass


def stack_env(settings: StackSettings) -> dict[str, str]:
    """CANDLEFLOW_* for a stack on `settings`' ports and data dir."""
    s = settings
    return {
        "CANDLEFLOW_DATA_DIR": str(s.data_dir),
        "CANDLEFLOW_KAFKA_PORT": str(s.kafka_port),
        "CANDLEFLOW_KAFKA_CONTROLLER_PORT": str(s.kafka_controller_port),
        "CANDLEFLOW_KAFKA_SASL_PORT": str(s.kafka_sasl_port),
        "CANDLEFLOW_KAFKA_SASL_SSL_PORT": str(s.kafka_sasl_ssl_port),
        "CANDLEFLOW_REGISTRY_PORT": str(s.registry_port),
        "CANDLEFLOW_FLINK_REST_PORT": str(s.flink_rest_port),
        "CANDLEFLOW_GRPC_PORT": str(s.grpc_port),
        "CANDLEFLOW_KAFKA_BOOTSTRAP": "",
        "CANDLEFLOW_REGISTRY": "",
    }


@dataclass
class Pipeline:
    settings: StackSettings
    files: list[Path]
    symbol: str
    model_url: str  # the fake Messages API
    subscribers: int = 20
    speed: float = 0.0  # replay speed (0 = as fast as it goes)
    jobs: tuple[JobSpec, ...] = JOBS
    transaction_timeout_ms: int = 60_000
    checkpoint_interval_s: float = 5.0
    job_ids: dict[str, str] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.stack = Stack(self.settings)
        self.env = {
            **os.environ,
            **stack_env(self.settings),
            "PYTHONPATH": str(ROOT),
            "CANDLEFLOW_JOB_TRANSACTION_TIMEOUT_MS": str(self.transaction_timeout_ms),
            "CANDLEFLOW_JOB_CHECKPOINT_INTERVAL_S": str(self.checkpoint_interval_s),
            "CANDLEFLOW_BRONZE_CHECKPOINT_INTERVAL_S": str(self.checkpoint_interval_s),
            "ANTHROPIC_API_KEY": "sk-ant-chaos-fake",
            "CANDLEFLOW_EXPLAINER_BASE_URL": self.model_url,
            "CANDLEFLOW_EXPLAINER_METRICS_PORT": "0",
            "CANDLEFLOW_EXPLAINER_CALLS_PER_MINUTE": "1000000",
            "CANDLEFLOW_EXPLAINER_CALLS_PER_DAY": "1000000",
            "CANDLEFLOW_EXPLAINER_USD_PER_DAY": "1000000",
            "CANDLEFLOW_EXPLAINER_BACKOFF_BASE_SECONDS": "0.2",
            "CANDLEFLOW_SERVING_METRICS_PORT": "0",
        }
        self.env.pop("PYFLINK_GATEWAY_DISABLED", None)
        self.logs = self.settings.logs_dir
        self.logs.mkdir(parents=True, exist_ok=True)

    # --- commands -------------------------------------------------------------------------

    def note(self, text: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {text}"
        self.log.append(line)
        print(line, flush=True)

    def cli(self, *args: str, timeout: float = 300) -> str:
        """One `candleflow` command in the foreground; its output, or PipelineError."""
        self.note("$ candleflow " + " ".join(args))
        done = subprocess.run(
            [sys.executable, "-m", "candleflow.cli", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        out = done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")
        if done.returncode != 0:
            raise PipelineError(
                f"candleflow {' '.join(args)} exit {done.returncode}: {out[-3000:]}"
            )
        return out

    def spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        """A long-running process in its own process group, logging to logs/chaos-<name>.log."""
        self.note(f"$ {' '.join(argv[2:] if argv[:2] == [sys.executable, '-m'] else argv)} &")
        with (self.logs / f"chaos-{name}.log").open("ab") as out:
            proc = subprocess.Popen(
                argv,
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.procs[name] = proc
        return proc

    def candleflow(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        return self.spawn(name, [sys.executable, "-m", "candleflow.cli", *args])

    # --- start ----------------------------------------------------------------------------

    def start_stack(self) -> None:
        self.stack.up(flink=True)

    def start_taskmanager(self) -> None:
        from devstack import jvm

        self.stack._start_flink_tm(jvm.java_bin())

    def submit_jobs(self, restore: bool = False, only: list[str] | None = None) -> None:
        """Submit every job (or those named in `only`); with `restore`, each from its own
        latest retained checkpoint."""
        for job in self.jobs:
            if only is not None and job.name not in only:
                continue
            args = list(job.run)
            if restore:
                chk = self.latest_checkpoint(job.name)
                if chk is None:
                    # Killed before its first checkpoint: a user can only start it afresh
                    # (a fresh anomalies job re-reads candles.v1: docs/semantics.md).
                    self.note(f"no retained checkpoint of {job.name}: submitted afresh")
                else:
                    args += ["--from-savepoint", chk.as_uri()]
            out = self.cli(*args)
            found = _SUBMITTED.search(out)
            if not found:
                raise PipelineError(f"no job id in the output of {' '.join(args)}: {out[-2000:]}")
            self.job_ids[job.name] = found.group(1)

    def start_services(self) -> None:
        self.candleflow("serve", "serve", "--local", "--metrics-port", "0")
        self.candleflow("explainer", "explainer", "run")

    def start_subscribers(self) -> None:
        self.spawn(
            "subscribers",
            [
                sys.executable,
                "-m",
                "bench.chaos.subscribers",
                f"{self.settings.host}:{self.settings.grpc_port}",
                self.symbol,
                str(self.subscribers),
                str(self.subscriber_dir),
            ],
        )

    @property
    def subscriber_dir(self) -> Path:
        return self.settings.data_dir / "subscribers"

    def start_ingest(self, resume: bool = False) -> None:
        args = ["ingest", "replay", *map(str, self.files), "--speed", str(self.speed)]
        self.candleflow("ingest", *args, *(["--resume"] if resume else []))

    def ingest_done(self) -> bool:
        """The replay ended; raises if it ended with an error (not killed by us)."""
        proc = self.procs.get("ingest")
        if proc is None or proc.poll() is None:
            return False
        if proc.returncode != 0:
            raise PipelineError(f"ingest replay exited {proc.returncode} (logs/chaos-ingest.log)")
        return True

    # --- kill and recover -------------------------------------------------------------------

    def kill_proc(self, name: str) -> None:
        """SIGKILL a process we spawned (its whole group)."""
        proc = self.procs[name]
        _kill_group(proc.pid)
        proc.wait()

    def kill_stack_service(self, service: str) -> None:
        pid = self.stack.procs[service].pid()
        if pid is None:
            raise PipelineError(f"{service} is not running")
        _kill_group(pid)
        self.stack.procs[service].pid_file.unlink(missing_ok=True)

    def latest_checkpoint(self, job: str) -> Path | None:
        """The newest complete retained checkpoint of the job's last run (chk-N/_metadata)."""
        job_id = self.job_ids[job]
        found = sorted(
            self.settings.data_dir.glob(f"**/{job_id}/chk-*/_metadata"),
            key=lambda p: int(p.parent.name[4:]),
        )
        return found[-1].parent if found else None

    def flink_jobs(self) -> dict[str, str]:
        """job id -> state, from the Flink REST API ({} when it does not answer)."""
        try:
            overview = _get_json(f"{self.settings.flink_rest_url}/jobs/overview")
        except OSError:
            return {}
        return {j["jid"]: j["state"] for j in overview.get("jobs", [])}

    def checkpoints_completed(self, job: str) -> int:
        try:
            data = _get_json(f"{self.settings.flink_rest_url}/jobs/{self.job_ids[job]}/checkpoints")
        except OSError:
            return -1
        return int(data.get("counts", {}).get("completed", 0))

    def jobs_healthy(self, since: dict[str, int] | None = None) -> bool:
        """Every job RUNNING, and (with `since`) a checkpoint completed after those counts."""
        states = self.flink_jobs()
        for job in self.jobs:
            if states.get(self.job_ids[job.name]) != "RUNNING":
                return False
            if since is not None and self.checkpoints_completed(job.name) <= since.get(job.name, 0):
                return False
        return True

    def topic_end(self, topic: str) -> int | None:
        """The sum of the topic's end offsets, or None while the broker does not answer."""
        from confluent_kafka import Consumer, KafkaException, TopicPartition

        consumer = Consumer(self.settings.kafka_config(**{"group.id": "chaos-offsets"}))
        try:
            parts = consumer.list_topics(topic, timeout=5).topics[topic].partitions
            return sum(
                consumer.get_watermark_offsets(TopicPartition(topic, n), timeout=5)[1]
                for n in parts
            )
        except KafkaException:
            return None
        finally:
            consumer.close()

    def failed_jobs(self) -> list[str]:
        states = self.flink_jobs()
        return [j.name for j in self.jobs if states.get(self.job_ids[j.name]) == "FAILED"]

    def dropped_commits(self) -> list[str]:
        """The Flink Kafka sink's committer lines for a transaction it could not commit
        (fenced, or aborted by the broker, e.g. after its transaction.timeout.ms): the
        connector logs them and goes on without that checkpoint's records, so they are
        searched for here (docs/reliability.md, "Kafka transactions that time out")."""
        out = []
        for service in ("flink-taskmanager", "flink-jobmanager"):
            log = self.stack.procs[service].log_file  # appended across restarts
            if not log.exists():
                continue
            with log.open(errors="replace") as f:
                out += [line.strip()[:300] for line in f if _DROPPED in line]
        return out

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                _kill_group(proc.pid)
        try:
            for job_id, state in self.flink_jobs().items():
                if state == "RUNNING":
                    self.cli("jobs", "cancel", job_id)
        except PipelineError as exc:
            self.note(f"cancel failed: {exc}")
        self.stack.down()


def _kill_group(pid: int) -> None:
    try:
        os.killpg(os.getpgid(pid), signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - local URL
        return json.loads(resp.read() or b"null")
