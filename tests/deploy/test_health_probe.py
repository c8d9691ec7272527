"""serving.health_probe (the `helm test` pod's check) against a real gRPC health server."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from serving import health_probe


@pytest.fixture
def server() -> Iterator[tuple[str, health.HealthServicer]]:
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, srv)
    port = srv.add_insecure_port("127.0.0.1:0")
    srv.start()
    yield f"127.0.0.1:{port}", servicer
    srv.stop(0)


def test_serving_exits_zero(server, capsys) -> None:
    target, servicer = server
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    assert health_probe.main(["--target", target]) == 0
    assert capsys.readouterr().out.strip() == f"{target}: SERVING"


def test_not_serving_exits_one(server) -> None:
    target, servicer = server
    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    assert health_probe.check(target) == "NOT_SERVING"
    assert health_probe.main(["--target", target]) == 1


def test_unreachable_exits_one(capsys) -> None:
    assert health_probe.main(["--target", "127.0.0.1:9", "--timeout", "1"]) == 1
    assert "UNAVAILABLE" in capsys.readouterr().err
