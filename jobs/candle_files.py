"""Bounded files in and out of the candles job: the trades CSV its FileSource reads and the
JSON rows its FileSinks write, mapped to and from the domain records (backfill, tests)."""

from __future__ import annotations

import csv
import datetime as dt
import heapq
import json
import marshal
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import BinaryIO

from candleflow.candle_map import candle_from_row
from candleflow.domain import Candle, InstrumentKind, LateTrade, Side, Trade

_EPOCH_FMT = "%Y-%m-%d %H:%M:%S"


def ts_text(us: int) -> str:
    """TIMESTAMP(6) literal for the CSV source (UTC)."""
    t = dt.datetime.fromtimestamp(us // 1_000_000, tz=dt.UTC)
    return f"{t.strftime(_EPOCH_FMT)}.{us % 1_000_000:06d}"


def parse_ts(text: str) -> int:
    """ISO-8601 TIMESTAMP from Flink's JSON format -> epoch µs (UTC)."""
    text = text.replace("T", " ").rstrip("Z")
    whole, _, frac = text.partition(".")
    if len(whole) != 19:  # "YYYY-MM-DD HH:MM:SS": anything else is not Flink's format
        raise ValueError(f"not an ISO-8601 timestamp: {text!r}")
    # fromisoformat: 6x faster than strptime (a backfill reads ~2 per candle, 100k's of them)
    base = dt.datetime.fromisoformat(whole).replace(tzinfo=dt.UTC)
    return int(base.timestamp()) * 1_000_000 + int((frac + "000000")[:6])


class TradeText:
    """The texts of the FileSource's CSV columns. Sorted input shares seconds and prices from
    row to row, so their texts are made once (a day of a busy market is millions of rows).

    The decimal cache is keyed by value: equal values that differ in exponent (1.0 vs 1.00)
    get the text of the first one seen since the cache was last cleared, so the file's bytes
    depend on the order the trades are formatted in (their values never do)."""

    MAX_SECONDS = 4096  # cache sizes; tests lower them to exercise the clears
    MAX_DECIMALS = 65_536
    MAX_MEMO = 131_072

    def __init__(self) -> None:
        self.seconds: dict[int, str] = {}
        self.decimals: dict[Decimal, str] = {}
        # own text (f"{d:f}") -> text written; valid while `decimals` is not cleared
        self.memo: dict[str, str] = {}

    def ts(self, us: int) -> str:
        whole, frac = divmod(us, 1_000_000)
        prefix = self.seconds.get(whole)
        if prefix is None:
            if len(self.seconds) >= self.MAX_SECONDS:
                self.seconds.clear()
            prefix = self.seconds[whole] = dt.datetime.fromtimestamp(whole, tz=dt.UTC).strftime(
                _EPOCH_FMT
            )
        return f"{prefix}.{frac:06d}"

    def dec(self, d: Decimal) -> str:
        # Equal values may differ in exponent (1.0 vs 1.00); any of their texts is the value.
        text = self.decimals.get(d)
        if text is None:
            if len(self.decimals) >= self.MAX_DECIMALS:
                self.decimals.clear()
                self.memo.clear()
            text = self.decimals[d] = f"{d:f}"
        return text

    def dec_of_text(self, own: str) -> str:
        """`dec(Decimal(own))` for `own` = f"{d:f}" of a decimal d, without parsing `own`
        again when this text was seen since the last clear (then `dec` would only look up)."""
        text = self.memo.get(own)
        if text is None:
            text = self.dec(Decimal(own))
            if len(self.memo) >= self.MAX_MEMO:
                self.memo.clear()
            self.memo[own] = text
        return text

    def row(self, t: Trade) -> list:
        dec, ts = self.dec, self.ts
        event = ts(t.event_time_us)
        return [
            t.exchange,
            t.symbol,
            t.native_symbol,
            t.trade_id,
            dec(t.price),
            dec(t.quantity),
            t.side.value,
            event,
            event if t.ingest_time_us == t.event_time_us else ts(t.ingest_time_us),
            "" if t.first_trade_id is None else t.first_trade_id,
            "" if t.last_trade_id is None else t.last_trade_id,
            t.kind.value,
            "" if t.contract_size is None else dec(t.contract_size),
        ]


def write_trades_csv(trades: Iterable[Trade], path: Path) -> None:
    """The trades as the FileSource's CSV, in the given order."""
    text = TradeText()
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        for t in trades:
            w.writerow(text.row(t))


# --- Sorted, in bounded memory -------------------------------------------------------------
#
# The job must see the trades in exchange order: (exchange, symbol, event time, trade id),
# ties in input order (what a stable sort of all trades gives; duplicates across files are
# then dropped by the job's dedup in that same order). Exchange files are nearly always
# already in that order, so the trades are written straight through while they are; the
# first trade out of order restarts the pass as an external merge sort: sorted chunks of
# compact records spilled to temp files, then merged with heapq.merge. Either way the file
# is byte for byte what write_trades_csv(sorted(trades, key=...)) writes.

# A record: the sort key, then the input position (ties), then the other columns as text.
# Decimals are kept as their own text f"{d:f}" and mapped through TradeText when the merged
# order is written, so equal values written with different exponents come out as they would
# from one sorted pass.
_Record = tuple  # (exchange, symbol, time_us, trade_id, seq, native, price, qty, side,
#                   ingest_us, first_id, last_id, kind, contract_size)

DEFAULT_CHUNK_ROWS = 100_000  # ≈ 50 MB of records in memory at a time (~500 B each)
MERGE_FAN_IN = 128  # runs merged at once (open files, one read batch each: ≤ 16 MB)
_BATCH = 256  # records per marshal batch in a run file


def trade_key(t: Trade) -> tuple[str, str, int, int]:
    """Exchange order: the order the job needs (nothing late) and the batch reference uses."""
    return (t.exchange, t.symbol, t.event_time_us, t.trade_id)


@dataclass
class SortReport:
    """What write_sorted_trades_csv did: trades written, whether the input was already in
    exchange order, and if not where it first was not and how many sorted runs it took."""

    trades: int = 0
    in_order: bool = True
    first_out_of_order: int | None = None  # 0-based position of the first trade out of order
    runs: int = 0
    merge_passes: int = 0


def write_sorted_trades_csv(
    read: Callable[[], Iterable[Trade]],
    path: Path,
    *,
    tmp_dir: Path | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    fan_in: int = MERGE_FAN_IN,
    on_sort: Callable[[SortReport], None] | None = None,
    on_written: Callable[[int, int], None] | None = None,
) -> SortReport:
    """write_trades_csv(sorted(read(), key=trade_key), path) in bounded memory.

    `read` is called once, or twice when its trades are not in order (the second pass sorts).
    Sort runs go to a temporary directory under `tmp_dir` (default: path's directory),
    removed at the end. `on_sort` is called when the sort starts (the report says where the
    order broke); `on_written(done, total)` now and then while the sorted trades are merged
    out.
    """
    if chunk_rows < 1 or fan_in < 2:
        raise ValueError("chunk_rows must be >= 1 and fan_in >= 2")
    report = SortReport()
    if _write_if_in_order(read(), path, report):
        return report
    report.in_order = False
    if on_sort is not None:
        on_sort(report)
    with tempfile.TemporaryDirectory(prefix="sort-", dir=tmp_dir or path.parent) as tmp:
        runs, last = _sorted_runs(read(), Path(tmp), chunk_rows, report)
        report.runs = len(runs) + (1 if last else 0)
        if last and len(runs) + 1 > fan_in:  # more than one pass: all runs on disk alike
            runs.append(Path(tmp) / f"r{len(runs)}.run")
            _spill(last, runs[-1])
            last = []
        # Merge runs down until one merge can take them all (bounded open files).
        while len(runs) + (1 if last else 0) > fan_in:
            report.merge_passes += 1
            merged: list[Path] = []
            for i in range(0, len(runs), fan_in):
                group = runs[i : i + fan_in]
                if len(group) == 1:
                    merged.append(group[0])
                    continue
                out = Path(tmp) / f"m{report.merge_passes}-{i}.run"
                _spill(heapq.merge(*(_read_run(r) for r in group)), out)
                for r in group:
                    r.unlink()
                merged.append(out)
            runs = merged
        report.merge_passes += 1
        sources = [_read_run(r) for r in runs] + ([iter(last)] if last else [])
        _write_records(heapq.merge(*sources), path, report.trades, on_written)
    return report


def _write_if_in_order(trades: Iterable[Trade], path: Path, report: SortReport) -> bool:
    """Write the trades straight through while they are in exchange order; False (and a
    partial file) at the first one that is not."""
    text = TradeText()
    row = text.row
    previous: tuple[str, str, int, int] | None = None
    n = 0
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        for t in trades:
            key = (t.exchange, t.symbol, t.event_time_us, t.trade_id)
            if previous is not None and key < previous:
                report.first_out_of_order = n
                return False
            previous = key
            w.writerow(row(t))
            n += 1
    report.trades = n
    return True


def _sorted_runs(
    trades: Iterable[Trade], tmp: Path, chunk_rows: int, report: SortReport
) -> tuple[list[Path], list[_Record]]:
    """Sorted chunks of records: all but the last spilled to run files; the last (not
    spilled: it is merged from memory) returned with them."""
    runs: list[Path] = []
    chunk: list[_Record] = []
    # A file's contract size is one Decimal object for all its trades: format it once.
    last_size: Decimal | None = None
    last_size_text = ""
    seq = 0
    for t in trades:
        size = t.contract_size
        if size is not None and size is not last_size:
            last_size, last_size_text = size, f"{size:f}"
        chunk.append(
            (
                t.exchange,
                t.symbol,
                t.event_time_us,
                t.trade_id,
                seq,
                t.native_symbol,
                f"{t.price:f}",
                f"{t.quantity:f}",
                t.side.value,
                t.ingest_time_us,
                t.first_trade_id,
                t.last_trade_id,
                t.kind.value,
                None if size is None else last_size_text,
            )
        )
        seq += 1
        if len(chunk) >= chunk_rows:
            chunk.sort()
            out = tmp / f"r{len(runs)}.run"
            _spill(chunk, out)
            runs.append(out)
            chunk = []
    chunk.sort()
    report.trades = seq
    return runs, chunk


def _spill(records: Iterable[_Record], out: Path) -> None:
    """A run file: length-prefixed marshal batches (marshal.load on a file object reads it
    a few bytes at a time; loads of a whole batch is several times faster)."""
    with out.open("wb") as fh:
        batch: list[_Record] = []
        for r in records:
            batch.append(r)
            if len(batch) >= _BATCH:
                _dump(batch, fh)
                batch = []
        if batch:
            _dump(batch, fh)


def _dump(batch: list[_Record], fh: BinaryIO) -> None:
    data = marshal.dumps(batch)
    fh.write(len(data).to_bytes(8, "little"))
    fh.write(data)


def _read_run(path: Path) -> Iterator[_Record]:
    with path.open("rb") as fh:
        while size := fh.read(8):
            yield from marshal.loads(fh.read(int.from_bytes(size, "little")))


def _write_records(
    records: Iterable[_Record],
    path: Path,
    total: int,
    on_written: Callable[[int, int], None] | None,
) -> None:
    text = TradeText()
    dec, ts = text.dec_of_text, text.ts
    n = 0
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        for (
            exchange,
            symbol,
            time_us,
            trade_id,
            _seq,
            native,
            price,
            qty,
            side,
            ingest_us,
            first_id,
            last_id,
            kind,
            size,
        ) in records:
            event = ts(time_us)
            w.writerow(
                [
                    exchange,
                    symbol,
                    native,
                    trade_id,
                    dec(price),
                    dec(qty),
                    side,
                    event,
                    event if ingest_us == time_us else ts(ingest_us),
                    "" if first_id is None else first_id,
                    "" if last_id is None else last_id,
                    kind,
                    "" if size is None else dec(size),
                ]
            )
            n += 1
            if on_written is not None and n % 65_536 == 0:
                on_written(n, total)
    if on_written is not None:
        on_written(n, total)


def read_rows(directory: Path) -> list[dict]:
    out = []
    for f in sorted(directory.rglob("*")):
        if f.is_file() and not f.name.startswith("."):
            for line in f.read_text().splitlines():
                if line.strip():
                    out.append(json.loads(line, parse_float=Decimal, parse_int=int))
    return out


def _dec(v) -> Decimal | None:
    return None if v is None else Decimal(str(v))


def _req(v) -> Decimal:
    """A NOT NULL decimal column: None here is a broken row, not a value."""
    if v is None:
        raise ValueError("a required decimal column is null")
    return Decimal(str(v))


def to_candle(r: dict) -> Candle:
    return candle_from_row(r, timestamp=parse_ts)


def to_trade(r: dict) -> Trade:
    return Trade(
        r["exchange"],
        r["symbol"],
        r["native_symbol"],
        int(r["trade_id"]),
        _req(r["price"]),
        _req(r["quantity"]),
        Side(r["side"]),
        parse_ts(r["event_time"]),
        parse_ts(r["ingest_time"]),
        r["first_trade_id"],
        r["last_trade_id"],
        InstrumentKind(r["kind"]),
        _dec(r["contract_size"]),
    )


def to_late(r: dict) -> LateTrade:
    return LateTrade(
        to_trade(r),
        r["interval"],
        parse_ts(r["window_start"]),
        r["reason"],
        parse_ts(r["watermark"]),
    )
