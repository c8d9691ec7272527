"""`candleflow jobs ...`: run the Flink jobs on the stack's session cluster, list, cancel and
savepoint them through Flink's REST API."""

from __future__ import annotations

import contextlib
import importlib
import json
import re
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from candleflow.config import CandleSettings, StackSettings, Topics

app = typer.Typer(no_args_is_help=True)
run_app = typer.Typer(no_args_is_help=True, help="Submit a job.")
app.add_typer(run_app, name="run")

ACTIVE_STATES = ("RUNNING", "CREATED", "RESTARTING", "INITIALIZING")
DONE_STATES = ("FINISHED", "CANCELED", "FAILED")
_JOB_ID = re.compile(r"[0-9a-f]{32}")


class FlinkRestError(RuntimeError):
    """The Flink REST API was unreachable or answered with an error (message for humans)."""


def _flink_errors(exc: urllib.error.HTTPError) -> str:
    """The first line of Flink's {"errors": [...]} body, without the exception class."""
    try:
        errors = json.loads(exc.read().decode() or "{}").get("errors") or []
    except (ValueError, OSError):
        errors = []
    if not errors:
        return f"HTTP {exc.code} {exc.reason}"
    first = str(errors[0]).strip().splitlines()[0]
    return re.sub(r"^[\w.$]+(Exception|Error): ", "", first)


def _rest(
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    settings: StackSettings | None = None,
) -> Any:
    url = f"{(settings or StackSettings()).flink_rest_url}{path}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            text = resp.read().decode()
    except urllib.error.HTTPError as exc:  # Flink answered: say what it said
        raise FlinkRestError(f"Flink REST {method} {path}: {_flink_errors(exc)}") from exc
    except OSError as exc:
        reason = getattr(exc, "reason", exc)
        raise FlinkRestError(
            f"Flink REST API at {url} unreachable ({reason}); is the stack up? "
            "(candleflow stack up)"
        ) from exc
    return json.loads(text) if text else {}


@contextlib.contextmanager
def _errors_exit() -> Iterator[None]:
    """A REST failure is a one-line message and exit status 1, not a traceback."""
    try:
        yield
    except FlinkRestError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def _check_job_id(job_id: str) -> str:
    if not _JOB_ID.fullmatch(job_id):
        raise typer.BadParameter(
            f"{job_id!r} is not a Flink job id (32 hex digits; see `candleflow jobs list`)"
        )
    return job_id


def _job_state(job_id: str, settings: StackSettings | None = None) -> str:
    """The job's state; a clear error when the cluster does not know the id."""
    try:
        return str(_rest("GET", f"/jobs/{job_id}", settings=settings)["state"])
    except FlinkRestError as exc:
        if isinstance(exc.__cause__, urllib.error.HTTPError) and exc.__cause__.code == 404:
            raise FlinkRestError(f"no job {job_id} on the Flink cluster") from exc
        raise


def running_jobs(settings: StackSettings | None = None) -> list[dict[str, Any]]:
    jobs = _rest("GET", "/jobs/overview", settings=settings).get("jobs", [])
    return [j for j in jobs if j.get("state") in ACTIVE_STATES]


@run_app.command("candles")
def run_candles(
    intervals: Annotated[str | None, typer.Option(help="e.g. 1m,5m,15m,1h")] = None,
    parallelism: Annotated[int | None, typer.Option(help="job parallelism")] = None,
    local: Annotated[
        bool, typer.Option("--local", help="run in-process (MiniCluster) and stay attached")
    ] = False,
    startup_mode: Annotated[
        str | None,
        typer.Option(help="group-offsets (default), earliest-offset, latest-offset"),
    ] = None,
    iceberg: Annotated[
        bool | None,
        typer.Option("--iceberg/--no-iceberg", help="also the Iceberg sinks (default: yes)"),
    ] = None,
    state_backend: Annotated[str | None, typer.Option(help="hashmap (default) or rocksdb")] = None,
    from_savepoint: Annotated[
        str | None,
        typer.Option(help="restore from this savepoint (the path `jobs savepoint` printed)"),
    ] = None,
) -> None:
    """The candles job: trades.v1 -> candles.v1, trades.late.v1, silver.candles.

    Options not given keep their CANDLEFLOW_JOB_* / CANDLEFLOW_CANDLES_* settings."""
    from jobs import candles

    if not local:
        with _errors_exit():  # before PyFlink: a clear message instead of a Java traceback
            _rest("GET", "/overview")
    settings_given: dict[str, Any] = {"intervals": intervals} if intervals else {}
    candle_settings = CandleSettings(**settings_given)
    given: dict[str, Any] = {
        "parallelism": parallelism,
        "startup_mode": startup_mode,
        "iceberg": iceberg,
        "state_backend": state_backend,
    }
    job = candles.CandleJobSettings(
        remote=not local, **{k: v for k, v in given.items() if v is not None}
    )
    if from_savepoint:
        with _restore_errors_exit(from_savepoint):
            result = _submit_restored(candle_settings, job, from_savepoint)
    else:
        result = candles.submit(candles=candle_settings, job=job)
    client = result.get_job_client()
    job_id = str(client.get_job_id()) if client else "?"
    typer.echo(f"candles job {job_id} submitted")
    if local:
        _stay_attached(result, job_id)


@run_app.command("bronze")
def run_bronze(
    parallelism: Annotated[int | None, typer.Option(help="job parallelism")] = None,
    local: Annotated[
        bool, typer.Option("--local", help="run in-process (MiniCluster) and stay attached")
    ] = False,
    startup_mode: Annotated[
        str | None,
        typer.Option(help="group-offsets (default), earliest-offset, latest-offset"),
    ] = None,
    state_backend: Annotated[str | None, typer.Option(help="hashmap (default) or rocksdb")] = None,
    from_savepoint: Annotated[
        str | None,
        typer.Option(help="restore from this savepoint (the path `jobs savepoint` printed)"),
    ] = None,
) -> None:
    """The bronze job: trades.v1 -> Iceberg bronze.trades, every trade once (jobs/bronze.py).

    Options not given keep their CANDLEFLOW_BRONZE_* settings."""
    from jobs import bronze

    if not local:
        with _errors_exit():  # before PyFlink: a clear message instead of a Java traceback
            _rest("GET", "/overview")
    given: dict[str, Any] = {
        "parallelism": parallelism,
        "startup_mode": startup_mode,
        "state_backend": state_backend,
    }
    job = bronze.BronzeJobSettings(
        remote=not local, **{k: v for k, v in given.items() if v is not None}
    )
    if from_savepoint:
        with _restore_errors_exit(from_savepoint):
            result = bronze.submit(job=job, savepoint=from_savepoint)
    else:
        result = bronze.submit(job=job)
    client = result.get_job_client()
    job_id = str(client.get_job_id()) if client else "?"
    typer.echo(f"bronze job {job_id} submitted")
    if local:
        _stay_attached(result, job_id, "bronze")


def _stay_attached(result: Any, job_id: str, name: str = "candles") -> None:
    """In-process: this process is the cluster. SIGTERM/SIGINT cancel the job cleanly (open
    Kafka transactions are aborted, nothing uncommitted becomes visible) and its retained
    checkpoints stay for a restart with --from-savepoint; then exit 0."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    failure: list[Exception] = []

    def wait() -> None:
        try:
            result.wait()
        except Exception as exc:  # noqa: BLE001 - reported below, in one line
            failure.append(exc)

    waiter = threading.Thread(target=wait, name="job-wait", daemon=True)
    waiter.start()
    while waiter.is_alive() and not stop.wait(1.0):
        pass
    if not stop.is_set():  # the job ended by itself: bounded input, or it failed
        if failure:
            typer.echo(f"error: {name} job {job_id} failed: {java_cause(failure[0])}", err=True)
            raise typer.Exit(1)
        return
    typer.echo(f"{name} job {job_id}: stopping on signal", err=True)
    result.get_job_client().cancel().result()
    typer.echo(
        f"{name} job {job_id} cancelled; its last completed checkpoint is retained under "
        f"the checkpoint directory (restart: jobs run {name} --local --from-savepoint "
        f"<.../{job_id}/chk-N>)",
        err=True,
    )


_UNMAPPED = re.compile(r"Cannot map checkpoint/savepoint state for operator (\w+)")


def java_cause(exc: Exception) -> str:
    """The innermost Java cause of a Py4JJavaError, as one line: 'Class: message'."""
    causes = [line for line in str(exc).splitlines() if line.startswith("Caused by: ")]
    text = causes[-1].removeprefix("Caused by: ") if causes else str(exc).splitlines()[0]
    name, _, message = text.partition(": ")
    return f"{name.rsplit('.', 1)[-1]}: {message}" if message else text


def restore_error(savepoint_path: str, exc: Exception) -> str:
    found = _UNMAPPED.search(str(exc))
    if found:
        return (
            f"{savepoint_path} holds state of operator {found.group(1)}, which this job does "
            "not have (an output removed, an Iceberg table renamed, or a uid changed). State "
            "is never dropped silently: restore into a job with the same outputs, or start "
            "afresh (docs/operations.md, Upgrade)."
        )
    return f"cannot restore from {savepoint_path}: {java_cause(exc)}"


@contextlib.contextmanager
def _restore_errors_exit(savepoint_path: str) -> Iterator[None]:
    """A refused restore (left-over state, no such savepoint) is one line and exit 1."""
    from py4j.protocol import Py4JJavaError

    try:
        yield
    except Py4JJavaError as exc:
        typer.echo(f"error: {restore_error(savepoint_path, exc)}", err=True)
        raise typer.Exit(1) from None


def _submit_restored(candle_settings: CandleSettings, job: Any, savepoint_path: str) -> Any:
    """candles.submit() with the job started from a savepoint."""
    from jobs import candles

    stack = StackSettings()
    t_env = candles.job_table_env(stack, job)
    conf = t_env.get_config()
    conf.set("execution.savepoint.path", savepoint_path)
    # Every state in the savepoint must find its operator (stable uids): never drop state.
    conf.set("execution.savepoint.ignore-unclaimed-state", "false")
    config = candles.production_config(stack, Topics(), candle_settings, job)
    return candles.run(t_env, config)


@run_app.command("anomalies")
def run_anomalies(
    from_savepoint: Annotated[
        str | None,
        typer.Option(help="restore from this savepoint or retained checkpoint (chk-N dir)"),
    ] = None,
) -> None:
    """The anomalies job (jobs/anomalies.py)."""
    module = importlib.import_module("jobs.anomalies")
    if from_savepoint:
        with _restore_errors_exit(from_savepoint):
            job_id = module.run_anomalies(savepoint_path=from_savepoint)
    else:
        job_id = module.run_anomalies()
    typer.echo(f"anomalies job {job_id} submitted")


@app.command("list")
def list_jobs(
    all_states: Annotated[bool, typer.Option("--all", help="include finished jobs")] = False,
) -> None:
    """Jobs on the stack's Flink cluster: id, state, name."""
    with _errors_exit():
        jobs = _rest("GET", "/jobs/overview").get("jobs", [])
    shown = [j for j in jobs if all_states or j.get("state") not in DONE_STATES]
    for j in shown:
        typer.echo(f"{j['jid']}  {j['state']:<10}  {j['name']}")
    if not shown:
        typer.echo("no jobs" if all_states else "no running jobs", err=True)


@app.command("cancel")
def cancel(
    job_id: Annotated[str | None, typer.Argument()] = None,
    all_jobs: Annotated[bool, typer.Option("--all", help="every running job")] = False,
) -> None:
    """Cancel one job (or all running ones). Checkpoints are retained (RETAIN_ON_CANCELLATION)."""
    if job_id and all_jobs:
        raise typer.BadParameter("give a job id or --all, not both")
    with _errors_exit():
        if all_jobs:
            ids = [j["jid"] for j in running_jobs()]
            if not ids:
                typer.echo("no running jobs", err=True)
        elif job_id:
            ids = [_check_job_id(job_id)]
            state = _job_state(job_id)
            if state in DONE_STATES:
                raise FlinkRestError(f"job {job_id} is already {state}")
        else:
            raise typer.BadParameter("give a job id or --all")
        for jid in ids:
            _rest("PATCH", f"/jobs/{jid}?mode=cancel")
            typer.echo(f"cancelled {jid}")


def _failure(op: dict[str, Any]) -> str:
    cause = op.get("failure-cause") or {}
    trace = str(cause.get("stack-trace", "")).strip().splitlines()
    return trace[0] if trace else str(cause.get("class", cause))


@app.command("savepoint")
def savepoint(
    job_id: str,
    directory: Annotated[
        str | None, typer.Option(help="target directory (default: the cluster's)")
    ] = None,
    stop: Annotated[
        bool,
        typer.Option(
            "--stop", help="stop the job with this savepoint (sinks commit; state FINISHED)"
        ),
    ] = False,
    timeout: float = 300,
) -> None:
    """Trigger a savepoint and print its path once it is complete."""
    _check_job_id(job_id)
    with _errors_exit():
        state = _job_state(job_id)
        if state != "RUNNING":
            raise FlinkRestError(f"job {job_id} is {state}: only a RUNNING job can savepoint")
        if stop:
            # Stop-with-savepoint, not cancel-with-savepoint: the sources stop first and the
            # final checkpoint commits the Kafka transactions and Iceberg files.
            body: dict[str, Any] = {"drain": False, "formatType": "CANONICAL"}
            if directory:
                body["targetDirectory"] = directory
            trigger = _rest("POST", f"/jobs/{job_id}/stop", body)["request-id"]
        else:
            body = {"cancel-job": False, "formatType": "CANONICAL"}
            if directory:
                body["target-directory"] = directory
            trigger = _rest("POST", f"/jobs/{job_id}/savepoints", body)["request-id"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = _rest("GET", f"/jobs/{job_id}/savepoints/{trigger}")
            if status.get("status", {}).get("id") == "COMPLETED":
                op = status.get("operation", {})
                if "failure-cause" in op:
                    raise FlinkRestError(f"savepoint of {job_id} failed: {_failure(op)}")
                typer.echo(op.get("location", ""))
                return
            time.sleep(1)
        raise FlinkRestError(f"savepoint of {job_id} not completed within {timeout} s")
