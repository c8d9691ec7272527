"""The faults: a seeded schedule, and for each kind the kill and the user's recovery.

A schedule is drawn from `random.Random(seed)` only: the kinds, the moments (seconds after
the replay started) and the broker pauses. The same seed gives the same schedule; the
moments are when a fault is due, and a fault waits for the previous one to be recovered,
so faults never overlap.

Every recovery returns once the pipeline is healthy again by the kind's own measure, and
that time (from the kill) is the fault's recovery time.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.chaos.pipeline import Pipeline, PipelineError
from candleflow.config import Topics

KINDS = ("taskmanager", "jobmanager", "broker", "ingest", "serving", "explainer")
RECOVERY_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Fault:
    at_s: float  # due this many seconds after the replay started
    kind: str
    pause_s: float = 0.0  # broker: how long it stays down


@dataclass
class Outcome:
    fault: Fault
    injected_at_s: float
    recovered: bool
    recovery_s: float
    detail: str = ""


def schedule(
    seed: int,
    faults: int,
    duration_s: float,
    kinds: tuple[str, ...] = KINDS,
    transaction_timeout_s: float = 60.0,
) -> list[Fault]:
    """`faults` faults over [5 %, 85 %] of `duration_s`. Every kind appears at least once
    when there are as many faults as kinds; a broker fault, if any, includes one pause
    longer than the sink's transaction timeout."""
    rng = random.Random(seed)
    picked = list(kinds) if faults >= len(kinds) else []
    picked += [rng.choice(kinds) for _ in range(faults - len(picked))]
    rng.shuffle(picked)
    moments = sorted(rng.uniform(0.05, 0.85) * duration_s for _ in picked)
    out = []
    long_pause_done = False
    for at, kind in zip(moments, picked, strict=True):
        pause = 0.0
        if kind == "broker":
            if not long_pause_done:
                pause = transaction_timeout_s + rng.uniform(10, 30)
                long_pause_done = True
            else:
                pause = rng.uniform(1, 20)
        out.append(Fault(round(at, 1), kind, round(pause, 1)))
    return out


def _wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise PipelineError(f"not recovered within {timeout:.0f} s: {what}")


def _checkpoint_counts(p: Pipeline) -> dict[str, int]:
    return {job.name: max(0, p.checkpoints_completed(job.name)) for job in p.jobs}


def _jobs_recovered(p: Pipeline) -> str:
    """Until every job is RUNNING again and has completed a checkpoint since. A job that
    spent its restart budget (jobs/flink_env.py RestartSettings) and stays FAILED is
    resubmitted from its latest retained checkpoint, as an operator would."""
    resubmitted: list[str] = []

    def running() -> bool:
        failed = p.failed_jobs()
        if failed:
            p.note(f"jobs FAILED ({', '.join(failed)}): resubmitted from their checkpoints")
            p.submit_jobs(restore=True, only=failed)
            resubmitted.extend(failed)
        return p.jobs_healthy(since={})

    _wait(running, RECOVERY_TIMEOUT_S, "jobs RUNNING again")
    counts = _checkpoint_counts(p)
    _wait(lambda: p.jobs_healthy(since=counts), RECOVERY_TIMEOUT_S, "a checkpoint completed")
    return f"jobs FAILED and resubmitted: {', '.join(resubmitted)}" if resubmitted else ""


def taskmanager(p: Pipeline, fault: Fault) -> str:
    """kill -9 the TaskManager; start it again; Flink restarts the jobs from their latest
    checkpoint by itself (restart strategy)."""
    p.kill_stack_service("flink-taskmanager")
    # `stack up` would see the JobManager still listing the dead TaskManager (until its
    # heartbeat times out) and start nothing: start the TaskManager itself.
    p.start_taskmanager()
    return _jobs_recovered(p)


def jobmanager(p: Pipeline, fault: Fault) -> str:
    """kill -9 the JobManager; as a user would locally: restart the cluster (the orphaned
    TaskManager is stopped too) and resubmit every job from its latest retained checkpoint."""
    p.kill_stack_service("flink-jobmanager")
    p.stack.procs["flink-taskmanager"].stop(grace=5)
    p.stack.up(flink=True)
    restored = {job.name: str(p.latest_checkpoint(job.name)) for job in p.jobs}
    p.submit_jobs(restore=True)
    _jobs_recovered(p)
    return "restored " + ", ".join(f"{k} from {v.rsplit('/', 2)[-2:]}" for k, v in restored.items())


def broker(p: Pipeline, fault: Fault) -> str:
    """kill -9 the broker, keep it down `pause_s`, start it again. The jobs fail (their
    checkpoints cannot complete) and restart from their last checkpoint; the replay's
    producer retries until the broker is back."""
    p.kill_stack_service("kafka")
    time.sleep(fault.pause_s)
    p.stack.up(flink=True)
    return _jobs_recovered(p)


def ingest(p: Pipeline, fault: Fault) -> str:
    """kill -9 the replay; restart it with --resume (continues after the topic's last trade)."""
    if p.ingest_done():
        return "replay already finished"
    p.kill_proc("ingest")
    before = p.topic_end(Topics().trades)
    p.start_ingest(resume=True)

    def producing() -> bool:
        # Recovered once the resumed replay produced past the kill (or finished): a replay
        # merely alive may still be starting, and a fault due next must not hit that.
        nonlocal before
        if p.ingest_done():  # raises if it exited with an error
            return True
        now = p.topic_end(Topics().trades)
        if before is None:
            before = now
            return False
        return now is not None and now > before

    _wait(producing, RECOVERY_TIMEOUT_S, "the resumed replay producing")
    return ""


def serving(p: Pipeline, fault: Fault) -> str:
    """kill -9 the gRPC server; start it again; subscribers resume with their cursors."""
    p.kill_proc("serve")
    p.candleflow("serve", "serve", "--local", "--metrics-port", "0")
    _wait(lambda: _grpc_serving(p), 120, "gRPC health SERVING")
    return ""


def explainer(p: Pipeline, fault: Fault) -> str:
    """kill -9 the explainer; start it again (it skips ids already in explanations.v1)."""
    p.kill_proc("explainer")
    p.candleflow("explainer", "explainer", "run")
    _wait(lambda: p.procs["explainer"].poll() is None, 10, "explainer running")
    return ""


RECOVER: dict[str, Callable[[Pipeline, Fault], str]] = {
    "taskmanager": taskmanager,
    "jobmanager": jobmanager,
    "broker": broker,
    "ingest": ingest,
    "serving": serving,
    "explainer": explainer,
}


def inject(p: Pipeline, fault: Fault, started: float) -> Outcome:
    at = time.monotonic() - started
    p.note(f"FAULT {fault.kind} (due at {fault.at_s:.0f} s, pause {fault.pause_s:.0f} s)")
    t0 = time.monotonic()
    try:
        detail = RECOVER[fault.kind](p, fault)
        ok = True
    except PipelineError as exc:
        detail, ok = str(exc)[:500], False
    took = time.monotonic() - t0
    p.note(f"  {'recovered' if ok else 'NOT RECOVERED'} in {took:.1f} s {detail}")
    return Outcome(fault, at, ok, took, detail)


def _grpc_serving(p: Pipeline) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    target = f"{p.settings.host}:{p.settings.grpc_port}"
    try:
        with grpc.insecure_channel(target) as ch:
            resp = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=2)
        return bool(resp.status == health_pb2.HealthCheckResponse.SERVING)
    except grpc.RpcError:
        return False
