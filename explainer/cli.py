"""`candleflow explainer run`: the long-running anomaly explainer (Claude, or offline)."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True)


@app.command()
def run(
    model: str = typer.Option(None, help="Claude model id (default: claude-haiku-4-5)"),
    metrics_port: int = typer.Option(None, help="port of /metrics and /healthz"),
    log_level: str = typer.Option("INFO", help="DEBUG, INFO, WARNING"),
    iceberg: bool = typer.Option(True, "--iceberg/--no-iceberg", help="write gold.explanations"),
    until_idle: float = typer.Option(
        None, help="exit after this many seconds without new anomalies (demo, batch)"
    ),
) -> None:
    """Explain each anomaly of anomalies.v1 once; write explanations.v1 and gold.explanations.

    Online when ANTHROPIC_API_KEY is set (read from the environment only), otherwise the
    offline explainer. Stops cleanly on SIGTERM.
    """
    from explainer.service import configure_logging, serve
    from explainer.settings import ExplainerSettings

    configure_logging(log_level)
    overrides: dict[str, object] = {}
    if model:
        overrides["model"] = model
    if metrics_port is not None:
        overrides["metrics_port"] = metrics_port
    if not iceberg:
        overrides["write_iceberg"] = False
    serve(ExplainerSettings(**overrides), max_idle_s=until_idle)  # type: ignore[arg-type]


@app.command()
def show(
    limit: int = typer.Option(50, help="show the last N anomalies"),
    wait: float = typer.Option(
        0, help="first wait up to this many seconds until every active anomaly is explained"
    ),
) -> None:
    """Print anomalies (final status) with their explanations, from the topics."""
    from candleflow.config import StackSettings, Topics
    from explainer.report import explained_anomalies, render, wait_for_explanations

    stack, topics = StackSettings(), Topics()
    if wait > 0:
        rows = wait_for_explanations(stack, topics, timeout_s=wait)
    else:
        rows = explained_anomalies(stack, topics)
    render(rows, limit=limit)
