"""The gRPC server: create_server seam, health + reflection, TLS/mTLS, graceful stop."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server

from candleflow.config import StackSettings, Topics
from candleflow.contracts import TOPIC_CONTRACTS
from serving.auth import BearerAuth
from serving.history import History, Tables
from serving.history_backend import make_history
from serving.kafka_io import Decoder
from serving.pb import SERVICE
from serving.service import MarketDataService
from serving.settings import ServingSettings
from serving.streams import Streams

log = structlog.get_logger(__name__)


class ServingServer:
    """A started grpc.aio server plus the shared Kafka hub it serves from."""

    def __init__(
        self, server: grpc.aio.Server, streams: Streams, health_servicer: health.aio.HealthServicer
    ):
        self.server = server
        self.streams = streams
        self.health = health_servicer
        self._ready_task: asyncio.Task[None] | None = None

    async def start(self, wait_for_kafka: float = 30.0) -> None:
        """Start serving; health turns SERVING once the hub has reached Kafka."""
        await _set_health(self.health, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.server.start()
        await self.streams.start(wait_for_kafka)
        self._ready_task = asyncio.create_task(self._serving_when_ready())

    async def _serving_when_ready(self) -> None:
        await self.streams.hub.ready.wait()
        await _set_health(self.health, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace: float | None = 5.0) -> None:
        """Refuse new calls, give open ones `grace` seconds, then stop the hub."""
        await _set_health(self.health, health_pb2.HealthCheckResponse.NOT_SERVING)
        if self._ready_task is not None:
            self._ready_task.cancel()
        await self.server.stop(grace)
        await self.streams.stop()

    async def wait_for_termination(self) -> None:
        await self.server.wait_for_termination()


async def _set_health(servicer: object, status: int) -> None:
    for name in ("", SERVICE):
        result = servicer.set(name, status)  # type: ignore[attr-defined]
        if asyncio.iscoroutine(result):
            await result


def _credentials(cfg: ServingSettings) -> grpc.ServerCredentials | None:
    if not cfg.tls_cert:
        return None
    key, chain = Path(cfg.tls_key).read_bytes(), Path(cfg.tls_cert).read_bytes()
    if cfg.tls_client_ca:
        return grpc.ssl_server_credentials(
            [(key, chain)],
            root_certificates=Path(cfg.tls_client_ca).read_bytes(),
            require_client_auth=True,
        )
    return grpc.ssl_server_credentials([(key, chain)])


async def create_server(
    addr: str,
    *,
    serving: ServingSettings | None = None,
    stack: StackSettings | None = None,
    topics: Topics | None = None,
    history: History | None = None,
) -> tuple[ServingServer, int]:
    """Build the server bound to `addr` ("host:port", port 0 = any); returns it (not yet
    started: call `await server.start()`) and the bound port."""
    serving = serving or ServingSettings()
    stack = stack or StackSettings()
    topics = topics or Topics()
    topic_contracts = {
        topics.candles: TOPIC_CONTRACTS["candles.v1"],
        topics.anomalies: TOPIC_CONTRACTS["anomalies.v1"],
        topics.explanations: TOPIC_CONTRACTS["explanations.v1"],
    }
    streams = Streams(
        stack.bootstrap_servers,
        Decoder(stack.registry_url, topic_contracts),
        topics.candles,
        topics.anomalies,
        topics.explanations,
        queue_capacity=serving.queue_capacity,
        heartbeat_s=serving.heartbeat_seconds,
    )
    history = history or make_history(
        serving.history,
        stack,
        Tables(serving.candles_table, serving.anomalies_table, serving.explanations_table),
        serving,
    )
    interceptors = [] if serving.local else [BearerAuth(serving.token_set())]
    server = grpc.aio.server(
        interceptors=interceptors,
        options=[
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.max_concurrent_streams", 10_000),
        ],
    )
    service = MarketDataService(streams, history, serving.history_timeout_seconds)
    server.add_generic_rpc_handlers((service.handler(),))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (
            SERVICE,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    creds = _credentials(serving)
    if creds is None and not serving.local and not addr.startswith(("127.", "localhost", "[::1]")):
        log.warning(
            "serving.plaintext",
            addr=addr,
            hint="set CANDLEFLOW_SERVING_TLS_CERT/TLS_KEY outside local mode",
        )
    port = server.add_secure_port(addr, creds) if creds else server.add_insecure_port(addr)
    return ServingServer(server, streams, health_servicer), port


async def serve(addr: str, serving: ServingSettings | None = None) -> None:
    """Run until SIGTERM/SIGINT, then stop gracefully."""
    serving = serving or ServingSettings()
    # Handlers first: a SIGTERM while the server starts (the port answers before the Kafka
    # hand-off is ready) must also stop it gracefully, not kill the process.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    srv, port = await create_server(addr, serving=serving)
    if serving.metrics_port:
        start_http_server(serving.metrics_port)
    await srv.start()
    log.info(
        "serving.started",
        addr=addr,
        port=port,
        local=serving.local,
        tls=bool(serving.tls_cert),
        mtls=bool(serving.tls_client_ca),
        loop=type(asyncio.get_running_loop()).__module__.split(".")[0],
    )
    await stop.wait()
    log.info("serving.stopping", grace=serving.shutdown_grace_seconds)
    await srv.stop(serving.shutdown_grace_seconds)
    log.info("serving.stopped")
