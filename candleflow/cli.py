"""The `candleflow` command line. Each area owns its sub-command module; this file only mounts them."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="candleflow",
    help="Candleflow: exact event-time OHLCV candles from exchange trades, on Kafka, Flink and Iceberg.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

# (sub-command, module holding a Typer app called `app`, help)
_SUBCOMMANDS = [
    ("stack", "candleflow.stack_cli", "Start, stop and inspect the local stack (Kafka, registry, Flink, catalog)."),
    ("ingest", "ingest.cli", "Capture trades from exchanges or replay recorded files into Kafka."),
    ("jobs", "jobs.cli", "Run, list, cancel and savepoint the Flink jobs."),
    ("explainer", "serving.explainer_cli", "Explain anomalies in plain language (Claude or offline)."),
    ("serve", "serving.server_cli", "Run the gRPC MarketData service."),
]

for name, module, help_text in _SUBCOMMANDS:
    try:
        sub = importlib.import_module(module).app
    except ModuleNotFoundError as exc:  # an area not built yet must not break the others
        if exc.name and not module.startswith(exc.name):
            raise
        continue
    app.add_typer(sub, name=name, help=help_text)

# Single commands registered by their modules (backfill, reconcile, watch, history, sql).
for module in ("jobs.backfill_cli", "candleflow.reconcile", "serving.client_cli"):
    try:
        importlib.import_module(module).register(app)
    except ModuleNotFoundError as exc:
        if exc.name and not module.startswith(exc.name):
            raise


def main() -> None:
    app()


if __name__ == "__main__":
    main()
