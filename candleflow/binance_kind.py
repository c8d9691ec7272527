"""What a data.binance.vision CSV holds, read from its content, never from its name.

File names get lost (a renamed download, a one-minute slice of a day's file), so the
kind of a file is told from what is in it:

- a header, when there is one, names the columns: `agg_trade_id`/`first_trade_id` mean
  aggTrades, `quote_qty`/`base_qty` trades, `open_time` klines;
- otherwise the shape of the rows (columns by position, see candleflow.binance_files):

      trades     id, price, qty, quoteQty, time, isBuyerMaker[, isBestMatch]        6 or 7
      aggTrades  id, price, qty, firstId, lastId, time, isBuyerMaker[, isBestMatch] 7 or 8
      klines     openTime, open, high, low, close, volume, closeTime, ...           11 or 12

  Seven columns are spot trades or futures aggTrades: the sixth is a boolean
  (isBuyerMaker) in trades and an integer (the time) in aggTrades, so no well-formed row
  is both.

Rows that fit no shape are left to the reader to report; the kind is the one every
fitting row of the sample agrees on. When the content cannot tell (no row fits, or rows
fit different kinds), `detect` raises `KindUnknown`: the caller then says the kind.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from enum import StrEnum

TRADES = "trades"
AGG_TRADES = "aggTrades"
KLINES = "klines"
FILE_KINDS = (TRADES, AGG_TRADES)  # what read_trades reads


class FileKind(StrEnum):
    """The kinds a command's --kind accepts (its values are the data.binance.vision names)."""

    TRADES = TRADES
    AGG_TRADES = AGG_TRADES


# Header column (lower case, without '_') -> the kind it belongs to only.
_HEADER_KINDS = {
    "aggtradeid": AGG_TRADES,
    "firsttradeid": AGG_TRADES,
    "lasttradeid": AGG_TRADES,
    "transacttime": AGG_TRADES,
    "quoteqty": TRADES,
    "baseqty": TRADES,
    "opentime": KLINES,
    "closetime": KLINES,
}


class KindUnknown(ValueError):
    """The content does not tell which kind of file this is."""


def _int(text: str) -> bool:
    return text.strip().isdigit()


def _dec(text: str) -> bool:
    try:
        return Decimal(text).is_finite()
    except InvalidOperation:
        return False


def _bools(fields: Iterable[str]) -> bool:
    return all(f.strip().lower() in ("true", "false") for f in fields)


def row_kinds(row: list[str]) -> set[str]:
    """The kinds whose row shape `row` fits (empty: none, a malformed row)."""
    n, out = len(row), set[str]()
    if n < 6:
        return out
    head = _int(row[0]) and _dec(row[1]) and _dec(row[2])
    if n in (6, 7) and head and _dec(row[3]) and _int(row[4]) and _bools(row[5:]):
        out.add(TRADES)
    if n in (7, 8) and head and all(map(_int, row[3:6])) and _bools(row[6:]):
        out.add(AGG_TRADES)
    kline_ints = n in (11, 12) and _int(row[0]) and _int(row[6]) and _int(row[8])
    if kline_ints and all(map(_dec, (*row[1:6], row[7], row[9], row[10]))):
        out.add(KLINES)
    return out


def header_kinds(header: list[str]) -> set[str]:
    """The kinds a header's column names belong to."""
    names = {h.strip().lower().replace("_", "") for h in header}
    return {kind for name, kind in _HEADER_KINDS.items() if name in names}


def detect(header: list[str] | None, rows: list[list[str]]) -> str | None:
    """The kind of a file from its header (None: none) and a sample of its first data rows;
    None for a file with neither (empty: nothing to read). Raises KindUnknown."""
    by_header = header_kinds(header) if header else set()
    if len(by_header) > 1:
        raise KindUnknown(f"its header {header!r} names columns of {sorted(by_header)}")
    by_rows: set[str] = set()
    for row in rows:
        by_rows |= row_kinds(row)
    if by_header:
        (kind,) = by_header
        if by_rows and kind not in by_rows:
            raise KindUnknown(
                f"its header names {kind} columns but its rows look like {sorted(by_rows)}"
            )
        return kind
    if len(by_rows) == 1:
        return by_rows.pop()
    if by_rows:
        raise KindUnknown(f"its first rows look like {' and '.join(sorted(by_rows))}")
    if not rows:
        return None
    raise KindUnknown(
        f"none of its first {len(rows)} rows has the columns of a trades or aggTrades file "
        f"(first: {rows[0]!r})"
    )
