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
import trino as trino_client

from candleflow.config import StackSettings
from devstack import trino

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
    """Answers like a Trino coordinator in one of four phases: "starting", "no-nodes" (no
    node announced), "catalog-pending" (the node runs SELECT 1, but the iceberg catalog is
    not in the scheduler's node sets yet) and "ready"."""

    def __init__(self) -> None:
        self.phase = "starting"
        self.statements: list[bytes] = []
        self.results: dict[str, list[list[Any]]] = {}

    def answer(self, sql: str) -> list[list[Any]] | None:
        """The rows of `sql`, or None for NO_NODES_AVAILABLE in the current phase."""
        if self.phase == "no-nodes":
            return None
        if "information_schema.tables" in sql:
            return [["gold", "anomalies"]]
        if "iceberg." in sql and self.phase == "catalog-pending":
            return None
        return [[1]]


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
                return
            qid = self.path.rsplit("/", 2)[-2]
            if self.path.startswith("/v1/statement/executing/") and qid in coordinator.results:
                rows = coordinator.results.pop(qid)
                columns = [
                    {
                        "name": f"c{i}",
                        "type": "bigint",
                        "typeSignature": {"rawType": "bigint", "arguments": []},
                    }
                    for i in range(len(rows[0]))
                ]
                self._send(
                    {
                        "id": qid,
                        "infoUri": f"{base[0]}/ui/query.html?{qid}",
                        "columns": columns,
                        "data": rows,
                        "stats": {"state": "FINISHED"},
                    }
                )
            else:
                self.send_error(404)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            coordinator.statements.append(body)
            assert self.headers["X-Trino-User"]
            rows = coordinator.answer(body.decode())
            if rows is None:
                self._send(NO_NODES)
                return
            qid = f"q{len(coordinator.statements)}"
            coordinator.results[qid] = rows
            self._send(
                {
                    "id": qid,
                    "infoUri": f"{base[0]}/ui/query.html?{qid}",
                    "stats": {"state": "QUEUED"},
                    "nextUri": f"{base[0]}/v1/statement/executing/{qid}/1",
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

    fake.phase = "catalog-pending"  # SELECT 1 runs, a scan of an iceberg table does not
    fake.statements.clear()
    assert not trino.health(settings)
    assert fake.statements[0] == b"SELECT 1"
    assert b'FROM iceberg."gold"."anomalies"' in fake.statements[-1]

    fake.phase = "ready"
    assert trino.health(settings)


def test_history_client_waits_out_no_nodes_and_nothing_else(
    coordinator: tuple[FakeCoordinator, StackSettings], caplog: pytest.LogCaptureFixture
) -> None:
    """NO_NODES_AVAILABLE is retried (logged, bounded); any other error is not."""
    from serving.history import Tables
    from serving.history_trino import TrinoHistory

    fake, settings = coordinator
    history = TrinoHistory(settings, Tables())
    fake.phase = "catalog-pending"
    threading.Timer(2.5, lambda: setattr(fake, "phase", "ready")).start()
    with caplog.at_level("WARNING", logger="serving.history_trino"):
        _, rows = history.query("SELECT count(*) FROM iceberg.gold.anomalies")
    assert rows == [[1]]
    assert 2 <= len(fake.statements) <= 4
    assert all("NO_NODES_AVAILABLE" in r.message for r in caplog.records)
    assert len(caplog.records) == len(fake.statements) - 1

    fake.phase = "catalog-pending"
    fake.statements.clear()
    history.no_nodes_retry_s = 2.0
    with pytest.raises(trino_client.exceptions.TrinoQueryError) as info:
        history.query("SELECT count(*) FROM iceberg.gold.anomalies")
    assert info.value.error_name == "NO_NODES_AVAILABLE" and len(fake.statements) == 3

    fake.answer = lambda sql: None  # type: ignore[method-assign]
    NO_NODES["error"]["errorName"] = "GENERIC_INTERNAL_ERROR"
    try:
        fake.statements.clear()
        with pytest.raises(trino_client.exceptions.TrinoQueryError):
            history.query("SELECT 1")
        assert len(fake.statements) == 1
    finally:
        NO_NODES["error"]["errorName"] = "NO_NODES_AVAILABLE"


def test_health_is_false_when_nothing_listens() -> None:
    assert not trino.health(StackSettings(host="127.0.0.1", trino_port=1), timeout=0.5)
