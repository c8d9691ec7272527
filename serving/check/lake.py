"""silver.candles and bronze.trades over a time range, through Trino or embedded.

- `TrinoLake` (production): plain SQL on Trino's Iceberg connector, which applies every
  delete file itself.
- `EmbeddedLake`: PyIceberg lists the current snapshot's files and DuckDB reads them,
  applying the deletes PyIceberg 0.8 cannot: position deletes (Trino's UPDATE/DELETE,
  Flink's upsert within one checkpoint) by (data file, row position), and equality deletes
  (Flink's upsert) to rows of files with a lower data sequence number. Equality deletes are
  applied table-wide, not per partition: the tables' deletes are on keys that contain the
  partition source column (window_start, event_time's day), so that is the same thing.

Both return, per interval, the windows wholly inside [start, end): candles (one live row
per window) and the sums of bronze.trades per window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from candleflow.config import StackSettings
from candleflow.domain import Candle
from candleflow.intervals import Interval
from serving.check.invariants import WindowTrades
from serving.history import CANDLE_COLUMNS, candle_from_row
from serving.settings import ServingSettings

CANDLE_KEY = ("exchange", "symbol", "interval", "window_start")


@dataclass(frozen=True, slots=True)
class Span:
    """One interval's windows to check: window_start in [start_us, end_us), both aligned."""

    interval: Interval
    start_us: int
    end_us: int


def spans(start_us: int, end_us: int, intervals: Sequence[Interval]) -> list[Span]:
    """The windows of each interval wholly inside [start_us, end_us) (maybe none)."""
    out = []
    for iv in intervals:
        lo = -(-start_us // iv.micros) * iv.micros
        hi = (end_us // iv.micros) * iv.micros
        if hi > lo:
            out.append(Span(iv, lo, hi))
    return out


class Lake(Protocol):
    def candles(self, span: Span) -> list[Candle]: ...

    def trade_windows(self, span: Span) -> list[WindowTrades]: ...


def _trade_windows(rows: list[Any], interval: str) -> list[WindowTrades]:
    return [
        WindowTrades(r[0], r[1], interval, int(r[2]), r[3], r[4], int(r[5]))
        for r in rows
        if r[3] is not None
    ]


# The sums of bronze.trades per window; `sec` is event_time in whole epoch seconds (every
# interval is a whole number of seconds; Trino's date_diff has no microsecond unit).
_TRADE_SUMS = """
SELECT exchange, symbol, (sec - (sec % {size})) * 1000000 AS w, sum(quantity),
       sum(CASE WHEN side = 'BUY' THEN quantity ELSE CAST(0 AS DECIMAL(38, 18)) END),
       sum(COALESCE(last_trade_id - first_trade_id + 1, 1))
FROM ({rows}) AS t
GROUP BY 1, 2, 3
"""


def _seconds(interval: Interval) -> int:
    if interval.micros % 1_000_000:
        raise ValueError(f"interval {interval}: not a whole number of seconds")
    return interval.micros // 1_000_000


class TrinoLake:
    def __init__(
        self,
        stack: StackSettings,
        candles_table: str,
        trades_table: str,
        serving: ServingSettings | None = None,
    ) -> None:
        from serving.history import Tables
        from serving.history_trino import TrinoHistory, _table_ref

        self._trino = TrinoHistory(stack, Tables(candles=candles_table), serving)
        self._candles = _table_ref(candles_table)
        self._trades = _table_ref(trades_table)

    def query(self, sql: str, params: list[Any] | None = None) -> list[list[Any]]:
        from serving.history import NotFound

        try:
            return self._trino.query(sql, params)[1]
        except NotFound as exc:
            raise LakeError(str(exc)) from None

    def candles(self, span: Span) -> list[Candle]:
        from serving.history_trino import _naive, _us

        cols = ", ".join(f'"{c}"' for c in CANDLE_COLUMNS)
        rows = self.query(
            f'SELECT {cols} FROM {self._candles} WHERE "interval" = ? '
            "AND window_start >= ? AND window_start < ?",
            [span.interval.name, _naive(span.start_us), _naive(span.end_us)],
        )
        out = []
        for row in rows:
            d = dict(zip(CANDLE_COLUMNS, row, strict=True))
            d["window_start"], d["window_end"] = _us(d["window_start"]), _us(d["window_end"])
            out.append(candle_from_row(d))
        return out

    def trade_windows(self, span: Span) -> list[WindowTrades]:
        from serving.history_trino import _naive

        rows = (
            "SELECT exchange, symbol, quantity, side, first_trade_id, last_trade_id, "
            "date_diff('second', TIMESTAMP '1970-01-01 00:00:00', event_time) AS sec "
            f"FROM {self._trades} WHERE event_time >= ? AND event_time < ?"
        )
        sql = _TRADE_SUMS.format(size=_seconds(span.interval), rows=rows)
        got = self.query(sql, [_naive(span.start_us), _naive(span.end_us)])
        return _trade_windows(got, span.interval.name)


class LakeError(RuntimeError):
    """A table that cannot be read (missing, or not a table of this shape)."""


@dataclass(frozen=True, slots=True)
class _Files:
    data: list[tuple[str, str, int]]  # (local path, uri as delete files name it, sequence)
    positions: list[str]  # position delete files
    equality: list[tuple[str, int, tuple[str, ...]]]  # (file, sequence, key columns)


_DAY_US = 86_400_000_000


def _day_position(table: Any, column: str) -> int | None:
    """Where the current spec keeps day(`column`) in a file's partition tuple, if it does."""
    from pyiceberg.transforms import DayTransform

    source = table.schema().find_field(column).field_id
    for pos, f in enumerate(table.spec().fields):
        if f.source_id == source and isinstance(f.transform, DayTransform):
            return pos
    return None


def _live_files(table: Any, column: str, span: Span) -> _Files:
    """The current snapshot's files. Data files partitioned by day(`column`) (both tables
    are) whose day holds no instant of the span are left out; delete files are all kept."""
    from pyiceberg.manifest import DataFileContent

    from adapters.iceberg_files import local_path

    snap = table.current_snapshot()
    files = _Files([], [], [])
    if snap is None:
        return files
    schema = table.schema()
    pos, spec_id = _day_position(table, column), table.spec().spec_id
    first_day, last_day = span.start_us // _DAY_US, (span.end_us - 1) // _DAY_US
    for manifest in snap.manifests(table.io):
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
            f, seq = entry.data_file, entry.sequence_number or 0
            path = local_path(f.file_path)
            if f.content == DataFileContent.DATA:
                day = f.partition[pos] if pos is not None and f.spec_id == spec_id else None
                if day is None or first_day <= day <= last_day:
                    files.data.append((path, f.file_path, seq))
            elif f.content == DataFileContent.POSITION_DELETES:
                files.positions.append(path)
            else:
                cols = tuple(schema.find_column_name(i) for i in f.equality_ids or ())
                files.equality.append((path, seq, cols))
    return files


def live_rows_sql(files: _Files, where: str, key: Sequence[str] | None) -> str:
    """DuckDB SQL of the live rows (columns of the data files plus `_seq`) that match `where`;
    with `key`, one row per key (the last committed, then the highest revision), as an
    upsert table defines it. Uses the parameters $paths, $uris, $seqs, $pos, $eq<i>."""
    sql = (
        "SELECT d.*, f.seq AS _seq FROM read_parquet($paths, union_by_name = true, "
        "filename = true, file_row_number = true) AS d JOIN (SELECT unnest($paths) AS file, "
        "unnest($uris) AS uri, unnest($seqs) AS seq) AS f ON d.filename = f.file "
        f"WHERE ({where})"
    )
    if files.positions:
        sql += (
            " AND NOT EXISTS (SELECT 1 FROM read_parquet($pos) AS p "
            "WHERE p.file_path = f.uri AND p.pos = d.file_row_number)"
        )
    groups = sorted({cols for _, _, cols in files.equality})
    for i, cols in enumerate(groups):
        match = " AND ".join(f'e."{c}" IS NOT DISTINCT FROM d."{c}"' for c in cols)
        sql += (
            f" AND NOT EXISTS (SELECT 1 FROM (SELECT e.*, s.seq FROM read_parquet($eq{i}, "
            f"filename = true) AS e JOIN (SELECT unnest($eq{i}) AS file, unnest($eqseq{i}) AS "
            f"seq) AS s ON e.filename = s.file) AS e WHERE {match} AND e.seq > f.seq)"
        )
    if key:
        part = ", ".join(f'"{c}"' for c in key)
        sql += (
            f" QUALIFY row_number() OVER (PARTITION BY {part} "
            "ORDER BY _seq DESC, revision DESC) = 1"
        )
    return sql


def live_rows_params(files: _Files) -> dict[str, Any]:
    params: dict[str, Any] = {
        "paths": [p for p, _, _ in files.data],
        "uris": [u for _, u, _ in files.data],
        "seqs": [s for _, _, s in files.data],
    }
    if files.positions:
        params["pos"] = files.positions
    groups = sorted({cols for _, _, cols in files.equality})
    for i, cols in enumerate(groups):
        params[f"eq{i}"] = [p for p, _, c in files.equality if c == cols]
        params[f"eqseq{i}"] = [s for _, s, c in files.equality if c == cols]
    return params


class EmbeddedLake:
    def __init__(self, stack: StackSettings, candles_table: str, trades_table: str) -> None:
        self.stack = stack
        self.names = {"candles": candles_table, "trades": trades_table}

    def _files(self, which: str, column: str, span: Span) -> _Files:
        from pyiceberg.exceptions import NoSuchTableError

        from adapters.catalog import catalog

        try:
            table = catalog(self.stack).load_table(self.names[which])
        except NoSuchTableError:
            raise LakeError(f"table {self.names[which]} does not exist") from None
        return _live_files(table, column, span)

    @staticmethod
    def _run(sql: str, params: dict[str, Any]) -> list[Any]:
        import duckdb

        con = duckdb.connect()
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()

    def candles(self, span: Span) -> list[Candle]:
        files = self._files("candles", "window_start", span)
        if not files.data:
            return []
        live = live_rows_sql(
            files,
            '"interval" = $interval AND epoch_us(window_start) >= $lo '
            "AND epoch_us(window_start) < $hi",
            CANDLE_KEY,
        )
        cols = ", ".join(
            f'epoch_us("{c}")' if c in ("window_start", "window_end") else f'"{c}"'
            for c in CANDLE_COLUMNS
        )
        params = live_rows_params(files)
        params.update(interval=span.interval.name, lo=span.start_us, hi=span.end_us)
        rows = self._run(f"SELECT {cols} FROM ({live}) AS l", params)
        return [candle_from_row(dict(zip(CANDLE_COLUMNS, r, strict=True))) for r in rows]

    def trade_windows(self, span: Span) -> list[WindowTrades]:
        files = self._files("trades", "event_time", span)
        if not files.data:
            return []
        live = live_rows_sql(
            files, "epoch_us(event_time) >= $lo AND epoch_us(event_time) < $hi", None
        )
        rows = (
            "SELECT exchange, symbol, quantity, side, first_trade_id, last_trade_id, "
            f"epoch_us(event_time) // 1000000 AS sec FROM ({live}) AS l"
        )
        params = live_rows_params(files)
        params.update(lo=span.start_us, hi=span.end_us)
        got = self._run(_TRADE_SUMS.format(size=_seconds(span.interval), rows=rows), params)
        return _trade_windows(got, span.interval.name)


def make_lake(
    via: str,
    stack: StackSettings,
    candles_table: str,
    trades_table: str,
    serving: ServingSettings | None = None,
) -> Lake:
    if via == "trino":
        return TrinoLake(stack, candles_table, trades_table, serving)
    if via == "embedded":
        return EmbeddedLake(stack, candles_table, trades_table)
    raise ValueError(f"unknown lake reader {via!r}: trino or embedded")
