"""Trino's health check waits past the gap where the coordinator says it has started but
no node has been announced yet (queries then fail with NO_NODES_AVAILABLE).

A local HTTP server speaks the two endpoints the check uses: `/v1/info` and the client
protocol's `POST /v1/statement` + `nextUri` pages, with the payloads Trino 476 returns.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from candleflow.config import StackSettings
from serving import trino

NO_NODES = {
    "id": "q1",
    "stats": {"state": "FAILED"},
    "error": {
        "message": "No nodes available to run query",
        "errorName": "NO_NODES_AVAILABLE",
        "errorType": "INTERNAL_ERROR",
    },
}


class FakeCoordinator:
    """Answers like a Trino coordinator in one of three phases."""

    def __init__(self) -> None:
        self.phase = "starting"  # -> "no-nodes" -> "ready"
        self.statements: list[bytes] = []


def _handler(coordinator: FakeCoordinator, base: list[str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, body: dict[str, Any]) -> None:
            raw = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:
            if self.path == "/v1/info":
                self._send({"starting": coordinator.phase == "starting", "coordinator": True})
            elif self.path == "/v1/statement/executing/q1/1":
                self._send({"id": "q1", "data": [[1]], "stats": {"state": "FINISHED"}})
            else:
                self.send_error(404)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            coordinator.statements.append(body)
            assert self.headers["X-Trino-User"]
            if coordinator.phase == "no-nodes":
                self._send(NO_NODES)
            else:
                self._send(
                    {
                        "id": "q1",
                        "stats": {"state": "QUEUED"},
                        "nextUri": f"{base[0]}/v1/statement/executing/q1/1",
                    }
                )

    return Handler


@pytest.fixture
def coordinator() -> Iterator[tuple[FakeCoordinator, StackSettings]]:
    fake = FakeCoordinator()
    base: list[str] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake, base))
    port = server.server_address[1]
    base.append(f"http://127.0.0.1:{port}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, StackSettings(host="127.0.0.1", trino_port=port)
    finally:
        server.shutdown()
        server.server_close()


def test_health_is_false_until_a_query_runs(
    coordinator: tuple[FakeCoordinator, StackSettings],
) -> None:
    fake, settings = coordinator
    assert not trino.health(settings)
    assert fake.statements == []  # no query while the coordinator says it is starting

    fake.phase = "no-nodes"
    assert not trino.health(settings)
    assert fake.statements == [b"SELECT 1"]

    fake.phase = "ready"
    assert trino.health(settings)


def test_health_is_false_when_nothing_listens() -> None:
    assert not trino.health(StackSettings(host="127.0.0.1", trino_port=1), timeout=0.5)
