"""`candleflow jobs ...`: run the Flink jobs on the stack's session cluster, list, cancel and
savepoint them through Flink's REST API."""

from __future__ import annotations

import importlib
import json
import time
import urllib.request
from typing import Annotated, Any

import typer

from candleflow.config import CandleSettings, StackSettings

app = typer.Typer(no_args_is_help=True)
run_app = typer.Typer(no_args_is_help=True, help="Submit a job.")
app.add_typer(run_app, name="run")


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
    except OSError as exc:
        raise typer.BadParameter(
            f"Flink REST API at {url} unreachable ({exc}); is the stack up? (candleflow stack up)"
        ) from exc
    return json.loads(text) if text else {}


def running_jobs(settings: StackSettings | None = None) -> list[dict[str, Any]]:
    jobs = _rest("GET", "/jobs/overview", settings=settings).get("jobs", [])
    return [
        j for j in jobs if j.get("state") in ("RUNNING", "CREATED", "RESTARTING", "INITIALIZING")
    ]


@run_app.command("candles")
def run_candles(
    intervals: Annotated[str | None, typer.Option(help="e.g. 1m,5m,15m,1h")] = None,
    parallelism: Annotated[int | None, typer.Option(help="job parallelism")] = None,
    local: Annotated[
        bool, typer.Option("--local", help="run in-process (MiniCluster) and stay attached")
    ] = False,
    startup_mode: Annotated[
        str, typer.Option(help="group-offsets, earliest-offset, latest-offset")
    ] = "group-offsets",
    no_iceberg: Annotated[bool, typer.Option("--no-iceberg", help="Kafka sinks only")] = False,
) -> None:
    """The candles job: trades.v1 -> candles.v1, trades.late.v1, bronze.trades, silver.candles."""
    from jobs import candles

    candle_settings = CandleSettings(**({"intervals": intervals} if intervals else {}))
    job = candles.CandleJobSettings(
        parallelism=parallelism, remote=not local, startup_mode=startup_mode, iceberg=not no_iceberg
    )
    result = candles.submit(candles=candle_settings, job=job)
    client = result.get_job_client()
    job_id = str(client.get_job_id()) if client else "?"
    typer.echo(f"candles job {job_id} submitted")
    if local:
        result.wait()  # in-process: this process is the cluster


@run_app.command("anomalies")
def run_anomalies() -> None:
    """The anomalies job (jobs/anomalies.py)."""
    module = importlib.import_module("jobs.anomalies")
    module.run_anomalies()
    typer.echo("anomalies job submitted")


@app.command("list")
def list_jobs(
    all_states: Annotated[bool, typer.Option("--all", help="include finished jobs")] = False,
) -> None:
    """Jobs on the stack's Flink cluster."""
    jobs = _rest("GET", "/jobs/overview").get("jobs", [])
    for j in jobs:
        if all_states or j.get("state") not in ("FINISHED", "CANCELED", "FAILED"):
            typer.echo(f"{j['jid']}  {j['state']:<10}  {j['name']}")


@app.command("cancel")
def cancel(
    job_id: Annotated[str | None, typer.Argument()] = None,
    all_jobs: Annotated[bool, typer.Option("--all", help="every running job")] = False,
) -> None:
    """Cancel one job (or all running ones)."""
    ids = [j["jid"] for j in running_jobs()] if all_jobs else [job_id] if job_id else []
    if not ids:
        raise typer.BadParameter("give a job id or --all")
    for jid in ids:
        _rest("PATCH", f"/jobs/{jid}?mode=cancel")
        typer.echo(f"cancelled {jid}")


@app.command("savepoint")
def savepoint(
    job_id: str,
    directory: Annotated[str | None, typer.Option(help="target directory")] = None,
    stop: Annotated[bool, typer.Option("--stop", help="stop the job after the savepoint")] = False,
    timeout: float = 300,
) -> None:
    """Trigger a savepoint and wait for its path."""
    body: dict[str, Any] = {"cancel-job": stop, "formatType": "CANONICAL"}
    if directory:
        body["target-directory"] = directory
    trigger = _rest("POST", f"/jobs/{job_id}/savepoints", body)["request-id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = _rest("GET", f"/jobs/{job_id}/savepoints/{trigger}")
        if status.get("status", {}).get("id") == "COMPLETED":
            op = status.get("operation", {})
            if "failure-cause" in op:
                raise typer.BadParameter(f"savepoint failed: {op['failure-cause']}")
            typer.echo(op.get("location", ""))
            return
        time.sleep(1)
    raise typer.BadParameter(f"savepoint not completed within {timeout} s")
