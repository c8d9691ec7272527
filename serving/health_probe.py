"""`python -m serving.health_probe --target host:port`: exit 0 when the gRPC health service
answers SERVING, 1 otherwise. Used by the chart's `helm test` pod (the services image has no
grpc_health_probe binary; this is the same check over the same grpc library)."""

from __future__ import annotations

import argparse
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def check(target: str, *, service: str = "", timeout: float = 5.0) -> str:
    """The status name the server reports for `service` ("" = the whole server)."""
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
    name: str = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return name


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", required=True, help="host:port of the gRPC server")
    ap.add_argument("--service", default="", help="service name ('' = server)")
    ap.add_argument("--timeout", type=float, default=5.0, help="seconds")
    args = ap.parse_args(argv)
    try:
        status = check(args.target, service=args.service, timeout=args.timeout)
    except grpc.RpcError as exc:
        print(f"{args.target}: {exc.code().name} {exc.details()}", file=sys.stderr)
        return 1
    print(f"{args.target}: {status}")
    return 0 if status == "SERVING" else 1


if __name__ == "__main__":
    sys.exit(main())
