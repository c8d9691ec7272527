"""The `candleflow` command line.

Each area owns its sub-command module; this file only mounts them, importing each
lazily so that `candleflow --help` stays fast and one area's heavy imports (PyFlink,
grpc) are paid only by the commands that need them.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="candleflow",
    help="Candleflow: exact event-time OHLCV candles from exchange trades "
    "(Kafka, Flink, Iceberg, gRPC).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

# (sub-command, module holding a Typer app called `app`, help)
_SUBCOMMANDS = [
    (
        "stack",
        "devstack.cli",
        "Start, stop and inspect the local stack (Kafka, registry, Flink, catalog).",
    ),
    ("ingest", "ingest.cli", "Capture trades from exchanges or replay recorded files into Kafka."),
    ("jobs", "jobs.cli", "Run, list, cancel and savepoint the Flink jobs."),
    (
        "explainer",
        "explainer.cli",
        "Explain anomalies in plain language (Claude or offline).",
    ),
    ("serve", "serving.server_cli", "Run the gRPC MarketData service."),
    ("verify", "verify.cli", "Reconcile our candles with the exchanges' own candles, live."),
]
# Modules adding single commands (backfill, reconcile, watch, history, sql, check, lakehouse)
# via register(app).
_SINGLE_COMMANDS = (
    "jobs.backfill_cli",
    "verify.reconcile",
    "serving.client_cli",
    "serving.check_cli",
    "lakehouse.cli",
)

for name, module, help_text in _SUBCOMMANDS:
    app.add_typer(importlib.import_module(module).app, name=name, help=help_text)
for module in _SINGLE_COMMANDS:
    importlib.import_module(module).register(app)


def main() -> None:
    from candleflow.env_settings import SettingsError

    try:
        app()
    except SettingsError as exc:  # the environment is the user's input: no traceback
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
