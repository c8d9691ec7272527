"""`candleflow serve ...`: run the gRPC MarketData service."""

from __future__ import annotations

import asyncio

import typer

from candleflow.config import StackSettings
from serving.settings import ServingSettings

app = typer.Typer(no_args_is_help=False)


@app.callback(invoke_without_command=True)
def run(
    addr: str = typer.Option("", help="host:port to bind (default: stack host and grpc_port)"),
    local: bool = typer.Option(False, "--local", help="no auth (local development only)"),
    history: str = typer.Option("", help="duckdb (embedded) or trino"),
    metrics_port: int = typer.Option(-1, help="Prometheus port (0 = none)"),
    tls_cert: str = typer.Option("", help="PEM certificate chain (enables TLS)"),
    tls_key: str = typer.Option("", help="PEM private key"),
    tls_client_ca: str = typer.Option("", help="PEM CA for client certificates (mTLS)"),
) -> None:
    """Serve live candles/anomalies from Kafka and history from Iceberg, until SIGTERM."""
    from serving.server import serve

    cfg = ServingSettings()
    updates: dict[str, object] = {}
    if local:
        updates["local"] = True
    if history:
        updates["history"] = history
    if metrics_port >= 0:
        updates["metrics_port"] = metrics_port
    for key, value in (
        ("tls_cert", tls_cert),
        ("tls_key", tls_key),
        ("tls_client_ca", tls_client_ca),
    ):
        if value:
            updates[key] = value
    cfg = cfg.model_copy(update=updates)
    if not cfg.local and not cfg.token_set():
        raise typer.BadParameter("set CANDLEFLOW_SERVING_TOKENS (or pass --local)")
    if bool(cfg.tls_cert) != bool(cfg.tls_key):
        raise typer.BadParameter("--tls-cert and --tls-key go together")
    if cfg.event_loop not in ("uvloop", "asyncio"):
        raise typer.BadParameter("CANDLEFLOW_SERVING_EVENT_LOOP: uvloop or asyncio")
    stack = StackSettings()
    run_loop = asyncio.run
    if cfg.event_loop == "uvloop":
        import uvloop

        run_loop = uvloop.run
    run_loop(serve(addr or f"{stack.host}:{stack.grpc_port}", cfg))
