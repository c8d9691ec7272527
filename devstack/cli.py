"""`candleflow stack up | down | status`: the local stack from the command line."""

from __future__ import annotations

import time

import typer
from rich.console import Console
from rich.table import Table

from candleflow.config import StackSettings
from devstack import trino
from devstack.jvm import JavaError
from devstack.procs import StackError
from devstack.stack import Stack

app = typer.Typer(no_args_is_help=True)
console = Console()


@app.command()
def up(
    flink: bool = typer.Option(
        True, "--flink/--no-flink", help="also start the Flink session cluster"
    ),
    timeout: float = typer.Option(120.0, help="seconds to wait for each service to be healthy"),
    with_trino: bool = typer.Option(False, "--with-trino", help="also start Trino (SQL)"),
) -> None:
    """Start Kafka, the schema registry, Flink and the Iceberg catalog (idempotent)."""
    stack = Stack(StackSettings())
    t0 = time.monotonic()
    try:
        with console.status(
            "starting the stack (Kafka, registry" + (", Flink" if flink else "") + ") ..."
        ):
            stack.up(flink=flink, timeout=timeout)
        if with_trino:
            with console.status("starting Trino ..."):
                trino.start(stack.settings)
    except (StackError, JavaError, FileNotFoundError) as exc:
        console.print(f"[red]stack up failed:[/red] {exc}")
        raise typer.Exit(1) from None
    except Exception as exc:  # noqa: BLE001 - e.g. TrinoError: same clear message, exit 1
        console.print(f"[red]stack up failed:[/red] {type(exc).__name__}: {exc}")
        raise typer.Exit(1) from None
    console.print(f"[green]stack up[/green] in {time.monotonic() - t0:.1f} s")
    _print_status(stack)


@app.command()
def down(grace: float = typer.Option(20.0, help="seconds between SIGTERM and SIGKILL")) -> None:
    """Stop every process of the stack (Flink, registry, Kafka). Data is kept."""
    stack = Stack(StackSettings())
    stopped = []
    if trino.health(stack.settings):
        trino.stop(stack.settings, grace=grace)
        stopped.append("trino")
    stopped += stack.down(grace=grace)
    console.print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


@app.command()
def status() -> None:
    """Show each service: pid, ports, health, log file."""
    stack = Stack(StackSettings())
    _print_status(stack)
    if not all(s.healthy for s in stack.status() if s.pid is not None):
        raise typer.Exit(1)


def _print_status(stack: Stack) -> None:
    s = stack.settings
    table = Table(title=f"candleflow stack ({s.data_dir})")
    for col in ("service", "pid", "ports", "state", "log"):
        table.add_column(col)
    for st in stack.status():
        state = (
            "[green]healthy[/green]"
            if st.healthy
            else "[red]unhealthy[/red]"
            if st.pid
            else "[dim]stopped[/dim]"
        )
        table.add_row(
            st.name,
            str(st.pid or "-"),
            ",".join(map(str, st.ports)) or "-",
            state,
            str(st.log_file),
        )
    table.add_row(
        "trino",
        "-",
        str(s.trino_port),
        "[green]healthy[/green]" if trino.health(s) else "[dim]stopped[/dim]",
        "-",
    )
    console.print(table)
    console.print(
        f"Kafka {s.bootstrap_servers} · registry {s.registry_url} · "
        f"Flink {s.flink_rest_url} · catalog {s.catalog_db} · "
        f"warehouse {s.warehouse_dir}"
    )
