"""`candleflow lakehouse maintain | status`: Iceberg table maintenance from the command line."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from candleflow.env_settings import SettingsError
from lakehouse.maintain import STEPS, Maintainer, MaintenanceError, TableReport, TableStats
from lakehouse.settings import MaintenanceSettings

app = typer.Typer(no_args_is_help=True)
_Tables = Annotated[
    list[str] | None,
    typer.Argument(
        help="namespace.table (default: CANDLEFLOW_MAINTAIN_TABLES)", show_default=False
    ),
]
_Steps = Annotated[
    list[str] | None,
    typer.Option("--step", help=f"run only these steps (repeat): {', '.join(STEPS)}"),
]
console = Console(stderr=True)

_HELP = "\n\n".join(
    [
        "Maintain Iceberg tables with Trino's Iceberg procedures, step by step:",
        "1. optimize: rewrite small data files and every file with deletes (the upsert's "
        "equality deletes are folded into the new data files).",
        "2. optimize_manifests: rewrite the manifests (each checkpoint adds some).",
        "3. expire_snapshots: drop snapshots older than --retention, but never the last "
        "--keep-last. Time travel reaches exactly the snapshots kept.",
        "4. remove_orphan_files: delete files no snapshot references, older than "
        "--orphan-retention.",
        "Safe while the streaming jobs commit: a Flink commit that races a maintenance commit "
        "retries and succeeds; a maintenance step that loses is run again (--attempts).",
        "Defaults come from CANDLEFLOW_MAINTAIN_* (TABLES as a JSON list, RETENTION, KEEP_LAST, "
        "ORPHAN_RETENTION, SMALL_FILE, ATTEMPTS). Trino is CANDLEFLOW_SERVING_TRINO_URL (with "
        "_USER, _PASSWORD or _ACCESS_TOKEN); unset, the local stack's (candleflow stack up "
        f"--with-trino). Durations: 500ms, 30s, 15m, 6h, 7d. Steps: {', '.join(STEPS)}.",
        "Example: candleflow lakehouse maintain silver.candles --retention 1d --keep-last 100",
    ]
)


def _settings(**overrides: Any) -> MaintenanceSettings:
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return MaintenanceSettings(**given)
    except SettingsError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


def _stats_table(title: str, rows: list[tuple[str, str, TableStats]]) -> Table:
    table = Table(title=title)
    for col in ("table", "when", "snapshots", "data files", "delete files", "manifests", "MB"):
        table.add_column(col, justify="left" if col in ("table", "when") else "right")
    for name, when, stats in rows:
        table.add_row(name, when, *stats.row())
    return table


@app.command(help=_HELP)
def maintain(
    tables: _Tables = None,
    retention: str = typer.Option(
        None, help="keep snapshots younger than this for time travel (default 3d)"
    ),
    keep_last: int = typer.Option(
        None, help="never expire the last N snapshots, however old (default 100)"
    ),
    orphan_retention: str = typer.Option(
        None,
        help="only delete unreferenced files older than this; above any write in flight "
        "(default 3d)",
    ),
    small_file: str = typer.Option(
        None, help="data files under this size are rewritten (default 64MB)"
    ),
    attempts: int = typer.Option(None, help="tries of a step that loses a commit race (default 3)"),
    step: _Steps = None,
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON on stdout"),
) -> None:
    overrides = {
        "retention": retention,
        "keep_last": keep_last,
        "orphan_retention": orphan_retention,
        "small_file": small_file,
        "attempts": attempts,
        "tables": list(tables) if tables else None,
    }
    settings = _settings(**overrides)
    steps = tuple(step) if step else STEPS
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        console.print(f"[red]error:[/red] unknown step(s) {unknown}: one of {', '.join(STEPS)}")
        raise typer.Exit(2)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    maintainer = Maintainer(settings)
    reports: list[TableReport] = []
    t0 = time.monotonic()
    try:
        for name in settings.tables:
            with console.status(f"{name}: reading its snapshots and files ...") as status:

                def progress(table: str, step: str, status: Any = status) -> None:
                    status.update(f"{table}: {step} ...")

                reports.append(maintainer.maintain(name, steps, on_step=progress))
            r = reports[-1]
            done = ", ".join(f"{s} {r.seconds[s]:.1f}s" for s in steps)
            console.print(f"[green]{name}[/green] maintained: {done}")
    except MaintenanceError as exc:
        console.print(f"[red]maintenance failed:[/red] {exc}")
        raise typer.Exit(1) from None
    rows = [(r.table, w, s) for r in reports for w, s in (("before", r.before), ("after", r.after))]
    console.print(
        _stats_table(
            f"maintained in {time.monotonic() - t0:.1f} s (retention {settings.retention}, "
            f"keep last {settings.keep_last}, orphans older than {settings.orphan_retention})",
            [(t, w, s) for t, w, s in rows if s is not None],
        )
    )
    if as_json:
        typer.echo(json.dumps([_as_dict(r) for r in reports], indent=2))


@app.command()
def status(
    tables: _Tables = None,
) -> None:
    """Show each table's snapshots, files, manifests and size (what maintain would shrink)."""
    settings = _settings(tables=list(tables) if tables else None)
    maintainer = Maintainer(settings)
    try:
        rows = [(t, "now", maintainer.stats(t)) for t in settings.tables]
    except MaintenanceError as exc:
        console.print(f"[red]status failed:[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(_stats_table(f"Iceberg tables via Trino at {maintainer.where}", rows))


def _as_dict(report: TableReport) -> dict[str, object]:
    return {
        "table": report.table,
        "before": vars(report.before),
        "after": vars(report.after) if report.after else None,
        "seconds": report.seconds,
        "retries": report.retries,
    }


def register(parent: typer.Typer) -> None:
    parent.add_typer(
        app,
        name="lakehouse",
        help="Maintain the Iceberg tables: compaction, snapshot expiry, orphan files.",
    )
