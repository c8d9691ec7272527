"""`candleflow backfill`'s trade preparation in Python: the exchange files read with the
validating reader (candleflow.binance_files) into the job's input CSV in exchange order, in
bounded memory (straight through when in order, else sorted on disk), with progress bars.
The command uses it for what the job's own file reader refuses (jobs/backfill_files.py)
and with --prepare."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from candleflow import binance_files
from candleflow.domain import Trade
from jobs.candle_files import DEFAULT_CHUNK_ROWS, SortReport, write_sorted_trades_csv


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
