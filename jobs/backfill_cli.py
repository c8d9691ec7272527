"""`candleflow backfill FILE...`: the candles job, bounded, over data.binance.vision files.

Kappa reprocessing from exchange files, and the hook for independent verification: the
trades go through THE SAME Java PTF as the streaming job (a bounded Flink job on a local
MiniCluster), and the final candle of each window (its last revision) is written as CSV and,
with --iceberg, upserted into `<namespace>.candles` through the stream job's Iceberg sink
(one write path: same table, same key, a re-run replaces rows instead of adding them).

Trades are fed in exchange order (event time, trade id): the files are the exchange's own
record, so nothing is late, and the output equals the batch reference exactly. The files are
streamed, never loaded whole (a month of a busy market is tens of millions of trades). By
default the job reads them itself at JVM speed (jobs/backfill_files.py); what its reader
refuses (a row outside the plain published form, rows out of order) is prepared in Python:
in order written straight through to the job's input file, otherwise sorted on disk
(jobs.candle_files.write_sorted_trades_csv), with the reader's own messages for bad rows.
"""

from __future__ import annotations

import csv
import logging
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from adapters import catalog as shared_catalog
from candleflow import binance_files
from candleflow.binance_kind import FileKind
from candleflow.candle_map import CANDLE_COLUMNS, Column
from candleflow.config import CandleSettings, StackSettings
from candleflow.decimal_text import plain
from candleflow.domain import KLINE_FIELDS, Candle, Trade
from candleflow.intervals import parse_intervals
from jobs import backfill_files
from jobs.backfill_prepare import PrepareView, prepare_trades
from jobs.candle_files import (
    DEFAULT_CHUNK_ROWS,
    read_rows,
    to_candle,
    write_trades_csv,
)
from jobs.candle_tables import BinanceFilesSource, FileSink, FileSource, IcebergSink, Sinks
from jobs.candles import CandleJobConfig, build
from jobs.flink_env import make_table_env

log = logging.getLogger(__name__)

# The first columns are fixed (issue 4): the kline's, window bounds named as Binance's
# klines name them; then every other candle column, in contract order (candle_map).
_KLINE_NAMES = {"window_start": "open_time_us", "window_end": "close_time_us"}
_FIRST = ("interval", "window_start", *KLINE_FIELDS, "window_end")
_BY_NAME = {c.name: c for c in CANDLE_COLUMNS}
CSV_ORDER = (
    *(_BY_NAME[name] for name in _FIRST),
    *(c for c in CANDLE_COLUMNS if c.name not in _FIRST),
)
CSV_COLUMNS = [_KLINE_NAMES.get(c.name, c.name) for c in CSV_ORDER]


def _csv_value(c: Column, value: Any) -> Any:
    if value is None:
        return ""
    if c.kind == "decimal":
        return plain(value)
    if c.kind == "boolean":
        return str(value).lower()
    return value


def final_candles(candles: list[Candle]) -> list[Candle]:
    """The last revision of each (exchange, symbol, interval, window)."""
    last: dict[tuple[str, str, str, int], Candle] = {}
    for c in candles:
        key = (c.exchange, c.symbol, c.interval, c.window_start_us)
        if key not in last or last[key].revision < c.revision:
            last[key] = c
    micros = {name: parse_intervals(name)[0].micros for name in {c.interval for c in candles}}
    return sorted(
        last.values(),
        key=lambda c: (c.exchange, c.symbol, micros[c.interval], c.window_start_us),
    )


def write_csv(candles: list[Candle], path: Path) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(CSV_COLUMNS)
        for c in candles:
            w.writerow([_csv_value(col, getattr(c, col.attr)) for col in CSV_ORDER])


@dataclass(frozen=True)
class IcebergTarget:
    """Where --iceberg writes: `<namespace>.candles` of the configured catalog."""

    stack: StackSettings
    namespace: str = "silver"

    def ensure_table(self) -> None:
        from jobs.candle_iceberg import ensure_tables

        # The stream job's table definition (v2, upsert on the candle key, day partitions).
        ensure_tables(self.stack, silver=self.namespace)

    def sink(self) -> IcebergSink:
        return IcebergSink(self.stack.catalog_name, self.namespace, "candles")

    def snapshot_id(self) -> int | None:
        table = shared_catalog.catalog(self.stack).load_table(f"{self.namespace}.candles")
        snap = table.current_snapshot()
        return None if snap is None else snap.snapshot_id


def run_backfill(
    trades: Iterable[Trade],
    settings: CandleSettings,
    *,
    parallelism: int = 1,
    workdir: Path | None = None,
    iceberg: IcebergTarget | None = None,
) -> list[Candle]:
    """Run the candles job bounded over `trades` (fed in the given order); returns the final
    candles. The command prepares its trades file itself (prepare_trades) and calls
    run_backfill_csv."""
    base = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="candleflow-backfill-"))
    try:
        write_trades_csv(trades, base / "trades.csv")
        return run_backfill_csv(
            base / "trades.csv", settings, base, parallelism=parallelism, iceberg=iceberg
        )
    finally:
        if workdir is None:
            shutil.rmtree(base, ignore_errors=True)


def run_backfill_csv(
    src: Path,
    settings: CandleSettings,
    workdir: Path,
    *,
    parallelism: int = 1,
    iceberg: IcebergTarget | None = None,
) -> list[Candle]:
    """Run the candles job bounded over the trades CSV `src` (write_trades_csv's format, in
    exchange order); the job's outputs go under `workdir`. Returns the final candles."""
    return run_backfill_job(
        FileSource(src), settings, workdir, parallelism=parallelism, iceberg=iceberg
    )


def run_backfill_files(
    entries: list[backfill_files.FileEntry],
    settings: CandleSettings,
    workdir: Path,
    *,
    parallelism: int = 1,
    iceberg: IcebergTarget | None = None,
) -> list[Candle]:
    """Run the candles job bounded over the exchange files themselves (jobs/backfill_files.py).
    Raises the job's error when the fast reader refuses them (backfill_files.refusal)."""
    manifest = backfill_files.write_manifest(
        entries, workdir / "trades.manifest", check_first=iceberg is not None
    )
    return run_backfill_job(
        BinanceFilesSource(manifest),
        settings,
        workdir,
        parallelism=parallelism,
        iceberg=iceberg,
        # A refusal is not transient: fail at once, the command then goes the prepared way.
        extra={"restart-strategy.type": "none"},
    )


def run_backfill_job(
    source: FileSource | BinanceFilesSource,
    settings: CandleSettings,
    workdir: Path,
    *,
    parallelism: int = 1,
    iceberg: IcebergTarget | None = None,
    extra: dict[str, str] | None = None,
) -> list[Candle]:
    """Run the candles job bounded over `source` (trades in exchange order); the job's outputs
    go under `workdir`. Returns the final candles.

    With `iceberg`, the same job also upserts every candle it emits into the Iceberg table
    (committed on checkpoints and at the end of input). Input in exchange order has no late
    trade, so each window is emitted once: the table gets exactly the final candles.
    """
    out, late_dir = workdir / "candles", workdir / "late"
    sinks = Sinks(candles=[FileSink(out)], late=[FileSink(late_dir)])
    ddl: list[str] = []
    if iceberg is not None:
        iceberg.ensure_table()
        ddl.append(shared_catalog.flink_catalog_ddl(iceberg.stack))
        sinks.candles.append(iceberg.sink())
    config = CandleJobConfig(
        source=source,
        sinks=sinks,
        candles=settings,
        emit_trades=False,
        catalog_ddl=ddl,
    )
    t_env = make_table_env(
        parallelism=parallelism,
        checkpoint_interval_ms=1000,
        connectors=iceberg is not None,
        stack=iceberg.stack if iceberg else None,
        extra=extra,
    )
    build(t_env, config).execute().wait()
    late = read_rows(late_dir) if late_dir.exists() else []
    if late:  # cannot happen for sorted input; refuse to write a partial result
        raise RuntimeError(f"backfill: {len(late)} trades were late; this is a bug")
    return final_candles([to_candle(r) for r in read_rows(out)])


def _job_view(console: Console, intervals: str) -> Progress:
    """The bounded job has no progress of its own to show: a spinner and the time."""
    view = Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
    )
    view.add_task(f"candles job ({intervals})", total=None)
    return view


def _prepared_run(
    files: list[Path],
    exchange: str,
    symbol: str | None,
    file_kind: str | None,
    settings: CandleSettings,
    base: Path,
    *,
    console: Console,
    chunk_rows: int,
    parallelism: int,
    iceberg: IcebergTarget | None,
    started: float,
) -> list[Candle]:
    """The trades prepared in Python (read, checked, sorted on disk when out of order), then
    the job over them: for what the job's own reader refuses."""
    base.mkdir()
    src = base / "trades.csv"
    try:
        with PrepareView(console) as view:
            report = prepare_trades(
                files, exchange, symbol, src, chunk_rows=chunk_rows, view=view, kind=file_kind
            )
    except binance_files.BinanceFileError as exc:
        message, hint = binance_files.usage_error(exc)
        raise typer.BadParameter(message, param_hint=hint) from None
    if not report.trades:
        raise typer.BadParameter("no trades in the given files")
    how = (
        "in exchange order, streamed straight through"
        if report.in_order
        else f"sorted on disk: {report.runs} runs, {report.merge_passes} merge pass(es)"
    )
    typer.echo(
        f"backfill: {report.trades} trades ({how}) in "
        f"{time.monotonic() - started:.1f}s, running the candles job...",
        err=True,
    )
    with _job_view(console, settings.intervals):
        return run_backfill_csv(src, settings, base, parallelism=parallelism, iceberg=iceberg)


def register(app: typer.Typer) -> None:
    @app.command("backfill")
    def backfill(
        files: Annotated[
            list[Path],
            typer.Argument(
                help="data.binance.vision trades/aggTrades files (.csv or .zip)", exists=True
            ),
        ],
        output: Annotated[Path | None, typer.Option("--output", "-o", help="CSV to write")] = None,
        exchange: Annotated[str, typer.Option(help="exchange name")] = "binance",
        symbol: Annotated[
            str | None,
            typer.Option(
                help="canonical (BTC-USDT) or native (BTCUSDT); default: from the file name"
            ),
        ] = None,
        kind: Annotated[
            FileKind | None,
            typer.Option(
                "--kind",
                help="what the files hold; default: told from each file's content",
            ),
        ] = None,
        intervals: Annotated[str, typer.Option(help="e.g. 1m,1h")] = "1m,5m,15m,1h",
        parallelism: Annotated[int, typer.Option(min=1, help="Flink parallelism")] = 1,
        iceberg: Annotated[
            bool,
            typer.Option(
                "--iceberg/--no-iceberg",
                help="also upsert the candles into <namespace>.candles of the configured "
                "catalog (CANDLEFLOW_CATALOG_JDBC_URI / CANDLEFLOW_WAREHOUSE)",
            ),
        ] = False,
        namespace: Annotated[
            str, typer.Option(help="Iceberg namespace of the candles table (with --iceberg)")
        ] = "silver",
        tmp_dir: Annotated[
            Path | None,
            typer.Option(
                help="directory for the job's trades file and any sort runs (default: the "
                "system temp dir; ~150 bytes a trade, twice that while sorting)",
                file_okay=False,
                exists=True,
            ),
        ] = None,
        direct: Annotated[
            bool,
            typer.Option(
                "--direct/--prepare",
                help="the candles job reads the files itself (default; what its reader does "
                "not take is prepared in Python) or prepare every trade in Python first",
            ),
        ] = True,
        chunk_rows: Annotated[
            int,
            typer.Option(
                min=1,
                help="trades per sorted run when the files are not in exchange order "
                "(memory ~500 bytes a trade); files already in order need no sort",
            ),
        ] = DEFAULT_CHUNK_ROWS,
    ) -> None:
        """Candles from exchange trade files through the same candle logic as the stream job.

        Files are streamed in bounded memory, by the job itself when they are in the plain
        published form and in order; otherwise prepared in Python (rows out of order are
        sorted on disk).
        """
        started = time.monotonic()
        if output is None and not iceberg:
            raise typer.BadParameter("give --output FILE and/or --iceberg", param_hint="--output")
        try:  # before any file is read: a typo must not cost the whole prepare step
            parse_intervals(intervals)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--intervals") from None
        console = Console(stderr=True)
        exchange = exchange.strip().lower()
        file_kind = kind.value if kind else None
        target = IcebergTarget(StackSettings(), namespace) if iceberg else None
        settings = CandleSettings(intervals=intervals)
        base = Path(tempfile.mkdtemp(prefix="candleflow-backfill-", dir=tmp_dir))
        try:
            try:
                entries = backfill_files.plan(files, exchange, symbol, file_kind)
            except binance_files.BinanceFileError as exc:
                # A bad file is the user's input: say what and where, no traceback.
                message, hint = binance_files.usage_error(exc)
                raise typer.BadParameter(message, param_hint=hint) from None
            if entries == []:
                raise typer.BadParameter("no trades in the given files")
            if not direct or target is not None:
                # --iceberg goes the prepared way: the direct job's Iceberg sink failed in
                # tests/jobs/test_backfill_iceberg.py (no JDBC driver in the job), not yet
                # understood.
                entries = None
            before = None
            if target is not None:
                target.ensure_table()
                before = target.snapshot_id()
            candles = None
            if entries is not None:
                typer.echo(
                    f"backfill: the candles job reads the {len(entries)} file(s) itself...",
                    err=True,
                )
                (base / "direct").mkdir()
                try:
                    with _job_view(console, intervals):
                        candles = run_backfill_files(
                            entries,
                            settings,
                            base / "direct",
                            parallelism=parallelism,
                            iceberg=target,
                        )
                except Exception as exc:
                    why = backfill_files.refusal(exc)
                    if why is None:
                        raise
                    typer.echo(
                        f"backfill: the job's reader refused {why}; "
                        "preparing the trades in Python instead",
                        err=True,
                    )
            if candles is None:
                candles = _prepared_run(
                    files,
                    exchange,
                    symbol,
                    file_kind,
                    settings,
                    base / "prepared",
                    console=console,
                    chunk_rows=chunk_rows,
                    parallelism=parallelism,
                    iceberg=target,
                    started=started,
                )
        finally:
            shutil.rmtree(base, ignore_errors=True)
        if output is not None:
            write_csv(candles, output)
            typer.echo(f"backfill: wrote {len(candles)} candles to {output}", err=True)
        if target is not None:
            # Both snapshots, so an operator can audit or roll back the correction.
            typer.echo(
                f"backfill: upserted {len(candles)} candles into "
                f"{target.stack.catalog_name}.{namespace}.candles "
                f"(snapshot {before} -> {target.snapshot_id()})",
                err=True,
            )
        typer.echo(f"backfill: done in {time.monotonic() - started:.1f}s", err=True)
