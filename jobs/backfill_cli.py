"""`candleflow backfill FILE...`: the candles job, bounded, over data.binance.vision files.

Kappa reprocessing from exchange files, and the hook for independent verification: the
trades go through THE SAME Java PTF as the streaming job (a bounded Flink job on a local
MiniCluster), and the final candle of each window (its last revision) is written as CSV and,
with --iceberg, upserted into `<namespace>.candles` through the stream job's Iceberg sink
(one write path: same table, same key, a re-run replaces rows instead of adding them).

Trades are fed in exchange order (event time, trade id): the files are the exchange's own
record, so nothing is late, and the output equals the batch reference exactly. The files are
streamed, never loaded whole (a month of a busy market is tens of millions of trades): in
order they are written straight through to the job's input file, otherwise sorted on disk
(jobs.candle_files.write_sorted_trades_csv).
"""

from __future__ import annotations

import csv
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from adapters import catalog as shared_catalog
from candleflow import binance_files
from candleflow.binance_kind import FileKind
from candleflow.config import CandleSettings, StackSettings
from candleflow.domain import KLINE_FIELDS, Candle, Trade
from candleflow.intervals import parse_intervals
from jobs.candle_files import (
    DEFAULT_CHUNK_ROWS,
    SortReport,
    read_rows,
    to_candle,
    write_sorted_trades_csv,
    write_trades_csv,
)
from jobs.candle_tables import FileSink, FileSource, IcebergSink, Sinks
from jobs.candles import CandleJobConfig, build
from jobs.flink_env import make_table_env

log = logging.getLogger(__name__)

# The first columns are fixed (issue 4); the rest follow.
CSV_COLUMNS = [
    "interval",
    "open_time_us",
    *KLINE_FIELDS,
    "close_time_us",
    "exchange",
    "symbol",
    "vwap",
    "first_trade_id",
    "last_trade_id",
    "revision",
    "is_empty",
]


def plain(d: Decimal | None) -> str:
    """Exact decimal text without float noise or trailing zeros: 100.50000 -> 100.5."""
    if d is None:
        return ""
    text = format(d, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def final_candles(candles: list[Candle]) -> list[Candle]:
    """The last revision of each (exchange, symbol, interval, window)."""
    last: dict[tuple[str, str, str, int], Candle] = {}
    for c in candles:
        key = (c.exchange, c.symbol, c.interval, c.window_start_us)
        if key not in last or last[key].revision < c.revision:
            last[key] = c
    return sorted(
        last.values(),
        key=lambda c: (
            c.exchange,
            c.symbol,
            parse_intervals(c.interval)[0].micros,
            c.window_start_us,
        ),
    )


def write_csv(candles: list[Candle], path: Path) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(CSV_COLUMNS)
        for c in candles:
            w.writerow(
                [
                    c.interval,
                    c.window_start_us,
                    plain(c.open),
                    plain(c.high),
                    plain(c.low),
                    plain(c.close),
                    plain(c.volume),
                    plain(c.quote_volume),
                    c.trade_count,
                    plain(c.taker_buy_volume),
                    plain(c.taker_buy_quote_volume),
                    c.window_end_us,
                    c.exchange,
                    c.symbol,
                    plain(c.vwap),
                    "" if c.first_trade_id is None else c.first_trade_id,
                    "" if c.last_trade_id is None else c.last_trade_id,
                    c.revision,
                    str(c.is_empty).lower(),
                ]
            )


def read_files(
    files: list[Path],
    exchange: str,
    symbol: str | None,
    progress: Callable[[int], None] | None = None,
    kind: str | None = None,
) -> Iterator[Trade]:
    """The trades of all files, one after the other, read lazily. `progress`, if given, is
    called now and then with the CSV bytes read so far over all files. `kind` ("trades" or
    "aggTrades"): of every file; None: each file's own, from its content."""
    done = 0
    for f in files:
        on_bytes = None if progress is None else (lambda n, base=done: progress(base + n))
        yield from binance_files.read_trades(
            f, symbol=symbol, exchange=exchange, progress=on_bytes, file_kind=kind
        )
        done += binance_files.data_size(f) if progress is not None else 0


class PrepareView:
    """Progress of the trade preparation on stderr (rich): one bar per pass, notes between."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
        )

    def __enter__(self) -> PrepareView:
        self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.stop()

    def start(self, description: str, total: int) -> TaskID:
        return self.bars.add_task(description, total=total or None)

    def stop(self, task: TaskID, description: str) -> None:
        self.bars.update(task, description=description)
        self.bars.stop_task(task)

    def update(self, task: TaskID, completed: int) -> None:
        self.bars.update(task, completed=completed)

    def note(self, message: str) -> None:
        self.console.print(message, markup=False, highlight=False, soft_wrap=True)


def prepare_trades(
    files: list[Path],
    exchange: str,
    symbol: str | None,
    dest: Path,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    view: PrepareView | None = None,
    kind: str | None = None,
) -> SortReport:
    """The job's input: the trades of all files in exchange order (event time, trade id;
    any row order within and across the files, ties in file order) as the FileSource's CSV
    at `dest` (exactly what write_trades_csv writes for them sorted), in bounded memory.
    Files already in order (the usual case) are written straight through; otherwise an
    external merge sort in runs of `chunk_rows` trades, under dest's directory."""
    total = sum(binance_files.data_size(f) for f in files) if view is not None else 0
    passes = 0

    def read() -> Iterator[Trade]:
        nonlocal passes
        passes += 1
        if view is None:
            return read_files(files, exchange, symbol, kind=kind)
        what = "reading" if passes == 1 else "sorting: reading into sorted runs"
        tasks.append(view.start(what, total))
        return read_files(files, exchange, symbol, lambda n: view.update(tasks[-1], n), kind)

    tasks: list[TaskID] = []

    def on_sort(report: SortReport) -> None:
        if view is not None:
            view.stop(tasks[-1], "reading: out of order")
            at = (report.first_out_of_order or 0) + 1
            view.note(
                f"backfill: trade #{at:,} of the input is out of exchange order "
                f"(event time, trade id): sorting it in runs of {chunk_rows:,} trades"
            )

    merging: list[TaskID] = []

    def on_written(done: int, total: int) -> None:
        if view is not None:
            if not merging:
                merging.append(view.start("sorting: merging the runs", total))
            view.update(merging[0], done)

    return write_sorted_trades_csv(
        read, dest, chunk_rows=chunk_rows, on_sort=on_sort, on_written=on_written
    )


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
    exchange order); the job's outputs go under `workdir`. Returns the final candles.

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
        source=FileSource(src),
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
    )
    build(t_env, config).execute().wait()
    late = read_rows(late_dir) if late_dir.exists() else []
    if late:  # cannot happen for sorted input; refuse to write a partial result
        raise RuntimeError(f"backfill: {len(late)} trades were late; this is a bug")
    return final_candles([to_candle(r) for r in read_rows(out)])


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

        Files are streamed in bounded memory; rows in any order are sorted on disk.
        """
        started = time.monotonic()
        if output is None and not iceberg:
            raise typer.BadParameter("give --output FILE and/or --iceberg", param_hint="--output")
        try:  # before any file is read: a typo must not cost the whole prepare step
            parse_intervals(intervals)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--intervals") from None
        console = Console(stderr=True)
        base = Path(tempfile.mkdtemp(prefix="candleflow-backfill-", dir=tmp_dir))
        try:
            src = base / "trades.csv"
            try:
                with PrepareView(console) as view:
                    report = prepare_trades(
                        files,
                        exchange.strip().lower(),
                        symbol,
                        src,
                        chunk_rows=chunk_rows,
                        view=view,
                        kind=kind.value if kind else None,
                    )
            except binance_files.BinanceFileError as exc:
                # A bad file is the user's input: say what and where, no traceback.
                message, hint = binance_files.usage_error(exc)
                raise typer.BadParameter(message, param_hint=hint) from None
            if not report.trades:
                raise typer.BadParameter("no trades in the given files")
            how = (
                "in exchange order, streamed straight through"
                if report.in_order
                else f"sorted on disk: {report.runs} runs, {report.merge_passes} merge pass(es)"
            )
            target = IcebergTarget(StackSettings(), namespace) if iceberg else None
            before = None
            if target is not None:
                target.ensure_table()
                before = target.snapshot_id()
            typer.echo(
                f"backfill: {report.trades} trades ({how}) in "
                f"{time.monotonic() - started:.1f}s, running the candles job...",
                err=True,
            )
            settings = CandleSettings(intervals=intervals)
            # The bounded job has no progress of its own to show: a spinner and the time.
            with Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=console,
            ) as job_view:
                job_view.add_task(f"candles job ({intervals})", total=None)
                candles = run_backfill_csv(
                    src, settings, base, parallelism=parallelism, iceberg=target
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
