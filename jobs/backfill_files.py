"""`candleflow backfill`'s fast path: the candles job reads the exchange files itself.

Python reads only what settles a file as a whole, with the reader that validates every row
(candleflow.binance_files): its kind, its market (symbol, instrument kind, contract size),
from its content and first row. That goes into a manifest; the job's source (format
`candleflow-binance-trades` in the UDF jar, udfs/.../binance/) parses the rows at JVM speed
and checks that they come in exchange order.

The JVM reader takes only rows in their plain published form and in order. Anything else
(a bad row, a quoted field, rows out of order...) it refuses, naming the file and line, and
the job fails at once (no restarts): the command then prepares the trades in Python as before
(jobs.backfill_prepare.prepare_trades), which reads every valid row, reports bad ones with their
own message and sorts rows out of order. There is one set of rules: the fast reader accepts a
subset of what the Python reader accepts, with the same values (tests/jobs/test_backfill_fast.py).

The job sees exactly the trades of the prepared path, in the same order: files of one market
are read one after the other in the given order, markets in (exchange, symbol) order, which
is the stable sort by (exchange, symbol, time, id) whenever each market's rows are in order.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Generator
from contextlib import closing
from dataclasses import dataclass
from decimal import Decimal
from itertools import islice
from pathlib import Path
from typing import cast

from candleflow import binance_files
from candleflow.domain import Trade

MANIFEST_HEADER = "candleflow-binance-trades 1"
REFUSED = "candleflow-binance-refused"
_REFUSED = re.compile(re.escape(REFUSED) + r": (.*)")


@dataclass(frozen=True)
class FileEntry:
    """One file and what the Python reader settles for all its rows."""

    path: Path
    file_kind: str  # "trades" or "aggTrades"
    exchange: str
    symbol: str
    native_symbol: str
    kind: str  # InstrumentKind value
    contract_size: Decimal | None

    def line(self) -> str:
        size = "" if self.contract_size is None else f"{self.contract_size:f}"
        fields = [str(self.path), self.file_kind, self.exchange, self.symbol]
        return "\t".join([*fields, self.native_symbol, self.kind, size])


# Trades of each file read by the Python reader while planning: a bad row or rows out of
# order near the start of a file (every row of a small one) show at once, without a job.
PREVIEW_TRADES = 2_000


def plan(
    files: list[Path], exchange: str, symbol: str | None, kind: str | None = None
) -> list[FileEntry] | None:
    """The files with at least one trade, in reading order (see the module doc). None when
    the job cannot read them itself: a path with a tab or line break, or rows out of
    exchange order among a file's first PREVIEW_TRADES. Raises BinanceFileError as
    binance_files.read_trades does for a file's kind, symbol and first PREVIEW_TRADES rows."""
    entries = []
    for f in files:
        if any(c in str(f.resolve()) for c in "\t\r\n"):
            return None
        file_kind = kind or binance_files.file_kind_of(f)
        if file_kind is None:
            continue  # an empty file
        reader = cast(
            Generator[Trade],
            binance_files.read_trades(f, symbol=symbol, exchange=exchange, file_kind=file_kind),
        )
        with closing(reader):
            preview = list(islice(reader, PREVIEW_TRADES))
        if not preview:
            continue  # a header, blank lines
        keys = [(t.event_time_us, t.trade_id) for t in preview]
        if any(b < a for a, b in zip(keys, keys[1:], strict=False)):
            return None
        first = preview[0]
        entries.append(
            FileEntry(
                f.resolve(),
                file_kind,
                first.exchange,
                first.symbol,
                first.native_symbol,
                first.kind.value,
                first.contract_size,
            )
        )
    # Stable: a market's files keep the order given.
    return sorted(entries, key=lambda e: (e.exchange, e.symbol))


def write_manifest(entries: list[FileEntry], path: Path, *, check_first: bool) -> Path:
    """The manifest the job's source reads. `check_first`: the source reads the files once
    to check them before the first trade goes out (for sinks that commit as they go)."""
    lines = [f"{MANIFEST_HEADER}\t{int(check_first)}", *(e.line() for e in entries)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def refusal(exc: BaseException) -> str | None:
    """The fast reader's refusal (file:line: why) in a failed job's error, else None."""
    match = _REFUSED.search(str(exc))
    return match.group(1).strip() if match else None


@dataclass(frozen=True)
class ScanResult:
    """What the JVM reader made of a manifest outside Flink (io.candleflow.udfs.binance.Scan):
    its trades as text rows (symbol,trade_id,price,quantity,side,event_us,first_id,last_id;
    none with count=True), the count, or its refusal."""

    rows: list[str]
    trades: int
    refused: str | None


def scan(manifests: list[Path], *, count: bool = False) -> list[ScanResult]:
    """Run the JVM reader over each manifest in one JVM (tests, bench/backfill)."""
    from devstack.jvm import java_bin
    from jobs.flink_env import udf_jar

    flink_lib = Path(pyflink_lib())
    classpath = ":".join([str(udf_jar()), *map(str, sorted(flink_lib.glob("*.jar")))])
    args = [java_bin(), "-cp", classpath, "io.candleflow.udfs.binance.Scan"]
    args += ["--count"] if count else []
    out = subprocess.run(
        [*args, *map(str, manifests)], capture_output=True, text=True, check=True
    ).stdout
    results: list[ScanResult] = []
    rows: list[str] = []
    for line in out.splitlines():
        if line.startswith("== "):
            rows = []
        elif line.startswith("END "):
            results.append(ScanResult(rows, int(line[4:]), None))
        elif line.startswith("REFUSED: "):
            results.append(ScanResult(rows, len(rows), line[len("REFUSED: ") :]))
        else:
            rows.append(line)
    return results


def pyflink_lib() -> str:
    import pyflink

    return str(Path(pyflink.__file__).parent / "lib")
