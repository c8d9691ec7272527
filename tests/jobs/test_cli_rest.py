"""`candleflow jobs list|cancel --all|savepoint` against a stand-in for Flink's REST API.

`cancel --all` cannot run on the shared test cluster (it would cancel other sessions' jobs),
so it runs here against a small HTTP server answering Flink's endpoints with Flink's JSON
shapes (the real cluster is exercised in test_cli_cluster.py)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from typer.testing import CliRunner

from candleflow.cli import app

RUNNING = "a" * 32
RESTARTING = "b" * 32
FINISHED = "c" * 32
FAILING_SP = "d" * 32


class FakeFlink(BaseHTTPRequestHandler):
    jobs: dict[str, str] = {}
    calls: list[tuple[str, str]] = []

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _send(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self, method: str) -> None:
        self.calls.append((method, self.path))
        parts = self.path.split("?")[0].strip("/").split("/")
        if parts == ["jobs", "overview"]:
            jobs = [{"jid": j, "name": f"job-{j[0]}", "state": s} for j, s in self.jobs.items()]
            return self._send(200, {"jobs": jobs})
        if parts[0] == "jobs" and len(parts) >= 2:
            jid = parts[1]
            if jid not in self.jobs:
                # What Flink answers for an unknown job (first line of a Java stack trace).
                msg = f"org.apache.flink.runtime.rest.NotFoundException: Job {jid} not found\n\tat"
                return self._send(404, {"errors": [msg]})
            if len(parts) == 2 and method == "GET":
                return self._send(200, {"jid": jid, "state": self.jobs[jid]})
            if len(parts) == 2 and method == "PATCH":
                self.jobs[jid] = "CANCELED"
                return self._send(202, {})
            if parts[2:] in (["savepoints"], ["stop"]) and method == "POST":
                return self._send(202, {"request-id": "trigger-1"})
            if parts[2:] == ["savepoints", "trigger-1"]:
                if jid == FAILING_SP:
                    op = {
                        "failure-cause": {
                            "class": "java.util.concurrent.CompletionException",
                            "stack-trace": "java.lang.IllegalStateException: No savepoint "
                            "directory configured\n\tat x",
                        }
                    }
                    return self._send(200, {"status": {"id": "COMPLETED"}, "operation": op})
                loc = {"location": f"file:/sp/savepoint-{jid[:6]}"}
                return self._send(200, {"status": {"id": "COMPLETED"}, "operation": loc})
        self._send(404, {"errors": ["Not found: " + self.path]})

    def do_GET(self) -> None:  # noqa: N802
        self._route("GET")

    def do_PATCH(self) -> None:  # noqa: N802
        self._route("PATCH")

    def do_POST(self) -> None:  # noqa: N802
        self._route("POST")


@pytest.fixture
def flink_rest() -> Iterator[dict[str, str]]:
    FakeFlink.jobs = {
        RUNNING: "RUNNING",
        RESTARTING: "RESTARTING",
        FINISHED: "FINISHED",
        FAILING_SP: "RUNNING",
    }
    FakeFlink.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeFlink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"CANDLEFLOW_HOST": "127.0.0.1", "CANDLEFLOW_FLINK_REST_PORT": str(server.server_port)}
    server.shutdown()
    server.server_close()


def run(env: dict[str, str], *args: str):
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def test_list_shows_active_jobs_and_all_with_flag(flink_rest):
    active = run(flink_rest, "jobs", "list").stdout.splitlines()
    assert [line.split()[:2] for line in active] == [
        [RUNNING, "RUNNING"],
        [RESTARTING, "RESTARTING"],
        [FAILING_SP, "RUNNING"],
    ]
    every = run(flink_rest, "jobs", "list", "--all").stdout
    assert f"{FINISHED}  FINISHED" in every


def test_cancel_all_cancels_exactly_the_active_jobs(flink_rest):
    res = run(flink_rest, "jobs", "cancel", "--all")
    assert res.exit_code == 0
    patched = sorted(p for m, p in FakeFlink.calls if m == "PATCH")
    assert patched == sorted(f"/jobs/{j}?mode=cancel" for j in (RUNNING, RESTARTING, FAILING_SP))
    assert FakeFlink.jobs[FINISHED] == "FINISHED"
    again = run(flink_rest, "jobs", "cancel", "--all")
    assert again.exit_code == 0 and "no running jobs" in again.output
    assert len([m for m, _ in FakeFlink.calls if m == "PATCH"]) == 3


def test_cancel_one_and_its_errors(flink_rest):
    assert run(flink_rest, "jobs", "cancel", RUNNING).stdout == f"cancelled {RUNNING}\n"
    done = run(flink_rest, "jobs", "cancel", FINISHED)
    assert done.exit_code == 1 and f"job {FINISHED} is already FINISHED" in done.output
    unknown = run(flink_rest, "jobs", "cancel", "e" * 32)
    assert unknown.exit_code == 1 and f"no job {'e' * 32} on the Flink cluster" in unknown.output
    both = run(flink_rest, "jobs", "cancel", RUNNING, "--all")
    assert both.exit_code == 2


def test_savepoint_prints_location_and_uses_stop_endpoint(flink_rest):
    res = run(flink_rest, "jobs", "savepoint", RUNNING, "--directory", "file:/sp")
    assert res.stdout == f"file:/sp/savepoint-{RUNNING[:6]}\n"
    stop = run(flink_rest, "jobs", "savepoint", RUNNING, "--stop")
    assert stop.exit_code == 0
    posts = [p for m, p in FakeFlink.calls if m == "POST"]
    assert posts == [f"/jobs/{RUNNING}/savepoints", f"/jobs/{RUNNING}/stop"]


def test_savepoint_failure_is_one_clear_line(flink_rest):
    res = run(flink_rest, "jobs", "savepoint", FAILING_SP)
    assert res.exit_code == 1
    assert res.output.strip() == (
        f"error: savepoint of {FAILING_SP} failed: java.lang.IllegalStateException: "
        "No savepoint directory configured"
    )
