"""`candleflow reconcile`: compare our candles with Binance's official kline files.

Ours come from a backfill CSV (`candleflow backfill --output`) or from Iceberg
`silver.candles` (last revision per window). Every field Binance publishes is compared:
open, high, low, close, volume, quote_volume, trade_count, taker_buy_volume,
taker_buy_quote_volume; windows missing on either side are reported too.

Precision: our decimals are exact (e.g. a spot quote volume has up to 16 decimals, a
COIN-M base volume 18), while a kline file prints a fixed number of decimals (8 for
spot). Comparing raw values would flag differences that are only the file's printing,
so ours is rounded (half up) to the number of decimals the kline value itself has, then
compared exactly. `--tolerance-units N` additionally accepts N units of that last
decimal (0 by default: Binance's own rounding of sums is not documented, see
docs/semantics.md for COIN-M).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from candleflow.binance_files import Kline, parse_file_name, read_klines
from candleflow.domain import KLINE_FIELDS

FIELDS = KLINE_FIELDS
Values = dict[str, Decimal | int]


@dataclass(frozen=True, slots=True)
class Mismatch:
    open_time_us: int
    field: str
    ours: Decimal | int
    theirs: Decimal | int


@dataclass
class Report:
    compared: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)  # kline windows we do not have
    extra: list[int] = field(default_factory=list)  # our windows inside the klines' range
    outside: int = 0  # our windows outside every kline file's range (not compared)

    @property
    def ok(self) -> bool:
        return not (self.mismatches or self.missing or self.extra)


def round_like(ours: Decimal, theirs: Decimal) -> Decimal:
    """Ours rounded half up to the decimals `theirs` is printed with."""
    exponent = theirs.as_tuple().exponent
    assert isinstance(exponent, int)
    return ours.quantize(Decimal(1).scaleb(exponent), rounding=ROUND_HALF_UP)


def _kline_values(k: Kline) -> Values:
    return {
        "open": k.open,
        "high": k.high,
        "low": k.low,
        "close": k.close,
        "volume": k.volume,
        "quote_volume": k.quote_volume,
        "trade_count": k.trade_count,
        "taker_buy_volume": k.taker_buy_volume,
        "taker_buy_quote_volume": k.taker_buy_quote_volume,
    }


def compare(
    kline_files: Sequence[Sequence[Kline]], ours: dict[int, Values], tolerance_units: int = 0
) -> Report:
    """Compare each kline with our candle of the same open time, field by field."""
    report = Report()
    ranges = [(ks[0].open_time_us, ks[-1].open_time_us) for ks in kline_files if ks]
    theirs = {k.open_time_us: k for ks in kline_files for k in ks}
    for start in sorted(theirs):
        mine = ours.get(start)
        if mine is None:
            report.missing.append(start)
            continue
        report.compared += 1
        for name, value in _kline_values(theirs[start]).items():
            got = mine[name]
            if isinstance(value, Decimal):
                rounded = round_like(Decimal(got), value)
                unit = Decimal(1).scaleb(value.as_tuple().exponent)  # type: ignore[arg-type]
                if abs(rounded - value) > unit * tolerance_units:
                    report.mismatches.append(Mismatch(start, name, got, value))
            elif got != value:
                report.mismatches.append(Mismatch(start, name, got, value))
    for start in sorted(set(ours) - set(theirs)):
        if any(lo <= start <= hi for lo, hi in ranges):
            report.extra.append(start)
        else:
            report.outside += 1
    return report


def read_candles_csv(
    path: Path, interval: str, exchange: str | None = None, symbol: str | None = None
) -> dict[int, Values]:
    """Candles of one interval from a backfill CSV; the highest revision per window wins
    when the file carries a revision column. Without `symbol`, the file must hold a
    single market (exchange, symbol) for that interval."""
    out: dict[int, Values] = {}
    revisions: dict[int, int] = {}
    markets: set[tuple[str, str]] = set()
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"interval", "open_time_us", *FIELDS} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: not a candles CSV, columns {sorted(missing)} missing")
        for row in reader:
            if row["interval"] != interval:
                continue
            if exchange and row.get("exchange", exchange) != exchange:
                continue
            if symbol and row.get("symbol", symbol) != symbol:
                continue
            markets.add((row.get("exchange", ""), row.get("symbol", "")))
            if len(markets) > 1:
                raise ValueError(f"{path}: several markets {sorted(markets)}; choose a --symbol")
            start = int(row["open_time_us"])
            revision = int(row.get("revision") or 0)
            if start in out and revisions[start] >= revision:
                continue
            revisions[start] = revision
            out[start] = _values(row)
    return out


def _values(row: dict[str, Any]) -> Values:
    return {f: int(row[f]) if f == "trade_count" else Decimal(str(row[f])) for f in FIELDS}


# The current row of a window: the one committed last (highest data sequence number: an
# upsert's equality delete removes the rows of every earlier commit), then the highest
# revision within one commit. Revision alone is not enough: a backfill correction or a replay
# writes revision 0 over an older row of any revision.
_ICEBERG_SQL = """
SELECT epoch_us(d.window_start) AS open_time_us, d.revision, {fields}
FROM read_parquet($files, union_by_name = true, filename = true) AS d
JOIN (SELECT unnest($files) AS file, unnest($seqs) AS seq) AS f ON d.filename = f.file
WHERE d.exchange = $exchange AND d.symbol = $symbol AND d."interval" = $interval
QUALIFY row_number() OVER (PARTITION BY d.window_start ORDER BY f.seq DESC, d.revision DESC) = 1
"""


def read_candles_iceberg(
    exchange: str,
    symbol: str,
    interval: str,
    table_name: str = "silver.candles",
    catalog: Any = None,
) -> dict[int, Values]:
    """The current row per window of the Iceberg table (current snapshot).

    The table is upserted (format v2, equality deletes), which PyIceberg 0.8 cannot
    scan; every written row stays in the data files, so the current one per window is
    the last committed (data sequence number), then the highest revision (_ICEBERG_SQL).
    """
    import duckdb

    from adapters import iceberg_files

    if catalog is None:
        from adapters.catalog import catalog as shared_catalog

        catalog = shared_catalog()
    table = catalog.load_table(table_name)
    snapshot = table.current_snapshot()
    if snapshot is None:
        return {}
    with_seqs = iceberg_files.data_files(table, snapshot)
    if not with_seqs:
        return {}
    params = {
        "files": [path for path, _ in with_seqs],
        "seqs": [seq for _, seq in with_seqs],
        "exchange": exchange,
        "symbol": symbol,
        "interval": interval,
    }
    sql = _ICEBERG_SQL.format(fields=", ".join(f'd."{f}"' for f in FIELDS))
    con = duckdb.connect()
    try:
        cur = con.execute(sql, params)
        cols = [d[0] for d in cur.description]
        rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    finally:
        con.close()
    return {int(r["open_time_us"]): _values(r) for r in rows}


def _utc(us: int) -> str:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def print_report(report: Report, console: Console) -> None:
    if report.mismatches:
        table = Table(title="Field mismatches", show_lines=False)
        for col in ("window open (UTC)", "field", "ours", "theirs"):
            table.add_column(col)
        for m in report.mismatches:
            table.add_row(_utc(m.open_time_us), m.field, str(m.ours), str(m.theirs))
        console.print(table)
    for label, windows in (
        ("missing in ours", report.missing),
        ("extra in ours (no kline)", report.extra),
    ):
        for start in windows:
            console.print(f"[red]{label}[/red]: window {_utc(start)}")
    bad_windows = len({m.open_time_us for m in report.mismatches})
    status = "[green]OK[/green]" if report.ok else "[red]FAIL[/red]"
    console.print(
        f"{status}: {report.compared} windows compared, {len(report.mismatches)} field "
        f"mismatches in {bad_windows} windows, {len(report.missing)} missing, "
        f"{len(report.extra)} extra, {report.outside} of ours outside the klines' range"
    )


def kline_interval(kline: Kline) -> str:
    """The interval of a kline from its own times (close = open + interval - 1 ms or 1 µs),
    named as our intervals are (1m, 1h, 1d): a renamed file says it as well as its name."""
    span_us = ((kline.close_time_us - kline.open_time_us) // 1000 + 1) * 1000
    for unit, micros in (("d", 86_400_000_000), ("h", 3_600_000_000), ("m", 60_000_000)):
        if span_us % micros == 0:
            return f"{span_us // micros}{unit}"
    return f"{span_us // 1_000_000}s"


def _interval_of(kline_files: Sequence[Sequence[Kline]]) -> str:
    found = {kline_interval(ks[0]) for ks in kline_files if ks}
    if len(found) > 1:
        raise typer.BadParameter(
            f"kline files of several intervals: {sorted(found)}", param_hint="--klines"
        )
    if not found:
        raise typer.BadParameter("no klines in the given files", param_hint="--klines")
    return found.pop()


def _symbol_of(paths: Iterable[Path]) -> str | None:
    from candleflow.symbols import from_binance

    names = {n.native_symbol for p in paths if (n := parse_file_name(p))}
    return from_binance(names.pop()) if len(names) == 1 else None


def reconcile_command(
    klines: Annotated[
        list[Path],
        typer.Option(
            "--klines", help="official kline files (zip/csv)", exists=True, dir_okay=False
        ),
    ],
    more_klines: Annotated[
        list[Path] | None, typer.Argument(help="further kline files", exists=True, dir_okay=False)
    ] = None,
    candles: Annotated[
        Path | None, typer.Option("--candles", help="backfill CSV", exists=True, dir_okay=False)
    ] = None,
    iceberg: Annotated[bool, typer.Option("--iceberg", help="read silver.candles")] = False,
    exchange: Annotated[str, typer.Option(help="exchange of our candles")] = "binance",
    symbol: Annotated[
        str | None,
        typer.Option(help="canonical symbol of our candles (default: from the kline file name)"),
    ] = None,
    interval: Annotated[
        str | None, typer.Option(help="interval (default: the klines' own, from their times)")
    ] = None,
    tolerance_units: Annotated[
        int, typer.Option(help="accept this many units of the kline value's last decimal")
    ] = 0,
) -> None:
    """Compare our candles with official Binance kline files, field by field; exit 1 on
    any mismatch, missing or extra window."""
    paths = [*klines, *(more_klines or [])]
    if (candles is None) == (not iceberg):
        raise typer.BadParameter("give exactly one of --candles CSV or --iceberg")
    kline_files = [sorted(read_klines(p), key=lambda k: k.open_time_us) for p in paths]
    interval = interval or _interval_of(kline_files)
    if iceberg:
        # Kline names are native (BTCUSDT); USD-M futures share them with spot, so the
        # canonical symbol guessed from them may need --symbol (BTC-USDT-PERP).
        symbol = symbol or _symbol_of(paths)
        if symbol is None:
            raise typer.BadParameter("--symbol is needed (not in the kline file names)")
        ours = read_candles_iceberg(exchange, symbol, interval)
    else:
        assert candles is not None
        try:
            ours = read_candles_csv(candles, interval, exchange, symbol)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
    report = compare(kline_files, ours, tolerance_units)
    print_report(report, Console(width=120))
    if not report.ok:
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    app.command("reconcile")(reconcile_command)
