"""Read data.binance.vision files: trades, aggTrades and klines, zip or csv.

Formats (see ../shared/reference/binance/binance-public-data-README.md):

- spot trades (no header): id,price,qty,quoteQty,time,isBuyerMaker,isBestMatch
- futures trades: id,price,qty,quoteQty|baseQty,time,isBuyerMaker (header optional)
- aggTrades: agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,
  is_buyer_maker[,is_best_match (spot)] (header optional)
- klines: openTime,open,high,low,close,volume,closeTime,quoteVolume,count,takerBuyBase,
  takerBuyQuote,ignore (header optional)

Which of trades or aggTrades a file holds is told from its content (candleflow.binance_kind),
never from its name: renamed files and slices of a day read the same.

Timestamps are milliseconds or microseconds (spot files from 2025-01-01 on are µs). The
unit is decided per file from the first row's magnitude, never from the date, and every
later row must agree. Prices and quantities are parsed from the text into Decimal, never
through float. A malformed row raises `BinanceFileError` naming the file and line, or,
when the caller passes an `errors` list, is appended there and skipped — never dropped
silently.

COIN-M (inverse) quantities are contracts. Contract size: 100 USD for BTCUSD contracts,
10 USD for every other COIN-M contract. Source: Binance COIN-M exchangeInfo
(`contractSize`); confirmed for BTCUSD by the COIN-M trades example in the public-data
README (qty 1 at price 9635.0 -> baseQty 0.01037883 = 100 / 9635).
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, cast

from candleflow import binance_kind, epoch, symbols
from candleflow.domain import InstrumentKind, Side, Trade

EXCHANGE = "binance"
BTC_COINM_CONTRACT_USD = Decimal(100)
OTHER_COINM_CONTRACT_USD = Decimal(10)

# ms or µs: the magnitude decides (candleflow.epoch, the rule every path shares).
_MS_MINIMUM = 10**11  # 1973 in ms; anything smaller is neither unit (seconds, garbage)

_NAME = re.compile(
    r"^(?P<symbol>[A-Z0-9]+(?:_[A-Z0-9]+)?)-(?P<kind>trades|aggTrades|\d+[smhdwM])-"
    r"(?P<date>\d{4}-\d{2}(?:-\d{2})?)\.(?:zip|csv)$"
)
_BOOL = {"true": True, "false": False}
_ZERO = Decimal(0)
_INF = Decimal("Infinity")


class BinanceFileError(ValueError):
    """A row or file that is not what the format says; names the file and the line."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line
        self.reason = message


class KindUnknown(BinanceFileError):
    """The content does not tell trades from aggTrades: the caller must say which."""

    option = "kind"


class SymbolUnknown(BinanceFileError):
    """Neither the caller nor the file name gives the market's symbol."""

    option = "symbol"


def usage_error(exc: BinanceFileError) -> tuple[str, str]:
    """(message, parameter hint) of a file error for a command with --kind and --symbol:
    names the option and values that settle it, and nothing else."""
    if isinstance(exc, KindUnknown):
        return f"{exc}; say which with --kind trades or --kind aggTrades", "--kind"
    if isinstance(exc, SymbolUnknown):
        return f"{exc}; give it with --symbol, e.g. --symbol BTC-USDT", "--symbol"
    return str(exc), "FILES"


@dataclass(frozen=True, slots=True)
class FileName:
    """What a data.binance.vision file name says: BTCUSD_PERP-aggTrades-2026-05-08.zip."""

    native_symbol: str
    kind: str  # "trades", "aggTrades" or "klines"
    interval: str | None  # klines only, e.g. "1m"
    day: date | None  # daily files
    month: str | None  # "2020-08" for monthly files


def parse_file_name(path: str | Path) -> FileName | None:
    """Parse a data.binance.vision file name; None when it does not follow the scheme."""
    match = _NAME.match(Path(path).name)
    if not match:
        return None
    kind = match.group("kind")
    text = match.group("date")
    day = date.fromisoformat(text) if len(text) == 10 else None
    is_kline = kind not in ("trades", "aggTrades")
    return FileName(
        native_symbol=match.group("symbol"),
        kind="klines" if is_kline else kind,
        interval=kind if is_kline else None,
        day=day,
        month=text if day is None else None,
    )


def contract_size_for(native_symbol: str) -> Decimal:
    """USD per COIN-M contract: 100 for BTCUSD_*, 10 for the others."""
    return (
        BTC_COINM_CONTRACT_USD
        if native_symbol.upper().startswith("BTCUSD_")
        else OTHER_COINM_CONTRACT_USD
    )


def instrument_kind_for(native_symbol: str, columns: int, file_kind: str) -> InstrumentKind:
    """COIN-M by name (XXXUSD_PERP, XXXUSD_250627); futures vs spot by column count.

    USD-M and spot files share symbol names (BTCUSDT), but spot files carry an extra
    isBestMatch column: trades 7 vs 6 columns, aggTrades 8 vs 7.
    """
    upper = native_symbol.upper()
    if "_" in upper:
        pair = upper.split("_", 1)[0]
        return InstrumentKind.INVERSE if pair.endswith("USD") else InstrumentKind.LINEAR
    spot_columns = 7 if file_kind == "trades" else 8
    return InstrumentKind.SPOT if columns >= spot_columns else InstrumentKind.LINEAR


def canonical_and_native(symbol: str, kind: InstrumentKind) -> tuple[str, str]:
    """Accept canonical (BTC-USDT) or native (BTCUSDT) names; return (canonical, native).

    A USD-M perpetual has the same native name as the spot pair (BTCUSDT), so its
    canonical symbol gets a -PERP suffix (BTC-USDT-PERP) to stay a distinct market.
    """
    if "-" in symbol:
        canonical = symbol.upper()
        native = symbols.to_binance(canonical)
        if (
            kind is InstrumentKind.LINEAR
            and native.endswith("_PERP")
            and not native.split("_", 1)[0].endswith("USD")
        ):
            native = native.split("_", 1)[0]
        return canonical, native
    native = symbol.upper()
    canonical = symbols.from_binance(native)
    if kind is InstrumentKind.LINEAR and "_" not in native:
        canonical = f"{canonical}-PERP"
    return canonical, native


def _csv_lines(path: Path, stack: ExitStack) -> io.TextIOWrapper:
    """The CSV text of a .csv file or of the single .csv inside a .zip."""
    if path.suffix.lower() != ".zip":
        return stack.enter_context(path.open("r", newline="", encoding="utf-8-sig"))
    try:
        archive = stack.enter_context(zipfile.ZipFile(path))
    except _UNREADABLE as exc:
        raise BinanceFileError(str(path), None, f"not a readable zip: {exc}") from None
    members = [m for m in archive.namelist() if m.lower().endswith(".csv")]
    if len(members) != 1:
        raise BinanceFileError(str(path), None, f"expected one .csv in the zip, found {members}")
    raw = stack.enter_context(archive.open(members[0]))
    return stack.enter_context(io.TextIOWrapper(raw, encoding="utf-8-sig", newline=""))


# A file that cannot be read as text at all: a truncated or corrupt zip, binary garbage.
_UNREADABLE = (zipfile.BadZipFile, zlib.error, EOFError, UnicodeDecodeError)


def data_size(path: str | Path) -> int:
    """Bytes of CSV text in a .csv file or in the .csv inside a .zip (uncompressed): the
    total against which `read_trades(progress=...)` reports."""
    path = Path(path)
    if path.suffix.lower() != ".zip":
        return path.stat().st_size
    try:
        archive = zipfile.ZipFile(path)
    except _UNREADABLE as exc:
        raise BinanceFileError(str(path), None, f"not a readable zip: {exc}") from None
    with archive:
        return sum(i.file_size for i in archive.infolist() if i.filename.lower().endswith(".csv"))


# Data rows looked at to tell the kind of a file: enough to step over a few malformed ones.
_SNIFF_ROWS = 64


def file_kind_of(path: str | Path) -> str | None:
    """ "trades" or "aggTrades", from the file's header and first rows (candleflow.binance_kind);
    None for an empty file. Raises KindUnknown when the content cannot tell."""
    path = Path(path)
    header: list[str] | None = None
    rows: list[list[str]] = []
    with ExitStack() as stack:
        for row in csv.reader(_csv_lines(path, stack)):
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if header is None and not rows and _is_header(row):
                header = row
                continue
            rows.append(row)
            if len(rows) >= _SNIFF_ROWS:
                break
    try:
        kind = binance_kind.detect(header, rows)
    except binance_kind.KindUnknown as exc:
        raise KindUnknown(str(path), None, f"cannot tell trades from aggTrades: {exc}") from None
    if kind == binance_kind.KLINES:
        raise KindUnknown(str(path), None, "a kline file, not trades or aggTrades")
    return kind


def _is_header(row: list[str]) -> bool:
    """Column names, not a (possibly malformed) data row: no number in the first two
    fields. A data row with a broken id still has a numeric price and is reported."""
    return not any(_is_number(field) for field in row[:2])


def _is_number(text: str) -> bool:
    try:
        Decimal(text)
    except InvalidOperation:
        return False
    return True


# Rows between two `progress` calls: rare enough to cost nothing, often enough to move a bar.
_PROGRESS_ROWS = 16_384


def _rows(
    path: Path, progress: Callable[[int], None] | None = None
) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of the data rows; a header line, if any, is skipped.
    `progress`, if given, is called now and then with the CSV bytes read so far."""
    with ExitStack() as stack:
        text = _csv_lines(path, stack)
        raw = cast(IO[bytes], text.buffer)  # a file or a zip member: both tell() their offset
        line_no = 0
        try:
            for line_no, row in enumerate(csv.reader(text), start=1):
                if progress is not None and line_no % _PROGRESS_ROWS == 0:
                    progress(raw.tell())
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if line_no == 1 and _is_header(row):
                    continue
                yield line_no, row
        except (*_UNREADABLE, csv.Error) as exc:
            what = type(exc).__name__
            raise BinanceFileError(
                str(path), line_no + 1, f"unreadable after line {line_no}: {what}: {exc}"
            ) from None
        if progress is not None:
            progress(raw.tell())


class _TimeUnit:
    """Decides ms vs µs from the first timestamp of a file; later rows must agree."""

    def __init__(self) -> None:
        self.factor: int | None = None

    def to_us(self, text: str) -> int:
        value = int(text)
        is_us = epoch.is_us(value)
        if self.factor is None:
            if value < _MS_MINIMUM:
                raise ValueError(f"timestamp {value} is neither epoch ms nor epoch µs")
            self.factor = 1 if is_us else 1000
        elif is_us != (self.factor == 1) or value < _MS_MINIMUM:
            unit = "µs" if self.factor == 1 else "ms"
            raise ValueError(f"timestamp {value} does not match the file's unit ({unit})")
        return value * self.factor


def _decimal(text: str, name: str, positive: bool = True) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{name} {text!r} is not a decimal number") from None
    if not value.is_finite() or (value <= 0 if positive else value < 0):
        raise ValueError(f"{name} {text!r} must be {'positive' if positive else '>= 0'}")
    return value


def _bool(text: str, name: str) -> bool:
    try:
        return _BOOL[text.strip().lower()]
    except KeyError:
        raise ValueError(f"{name} {text!r} is not true/false") from None


def read_trades(
    path: str | Path,
    *,
    symbol: str | None = None,
    kind: InstrumentKind | None = None,
    contract_size: Decimal | None = None,
    file_kind: str | None = None,
    exchange: str = EXCHANGE,
    ingest_time_us: int | None = None,
    errors: list[BinanceFileError] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[Trade]:
    """Trades of a trades or aggTrades file, in file order, read lazily (one row at a time).

    `symbol` (canonical or native) defaults to the file name's, `kind` to what the symbol
    and the column count say, `file_kind` ("trades"/"aggTrades") to what the content says
    (file_kind_of; never the name: a renamed file reads the same). `ingest_time_us` is the
    trade's own time (a file has no arrival time). With `errors` given, malformed rows
    are appended there and skipped instead of raising. `progress`, if given, is called now
    and then with the CSV bytes read so far (out of `data_size(path)`).
    """
    path = Path(path)
    if file_kind is not None and file_kind not in binance_kind.FILE_KINDS:
        raise ValueError(f"file_kind {file_kind!r}: expected one of {binance_kind.FILE_KINDS}")
    file_kind = file_kind or file_kind_of(path)
    if file_kind is None:
        return  # an empty file: no rows, no trades
    name = parse_file_name(path)
    native_hint = symbol or (name.native_symbol if name else None)
    if native_hint is None:
        raise SymbolUnknown(str(path), None, "no symbol given and none in the file name")
    is_agg = file_kind == "aggTrades"
    expected = (7, 8) if is_agg else (6, 7)
    unit = _TimeUnit()
    canonical = native = ""
    size: Decimal | None = None
    resolved: InstrumentKind | None = kind
    for line_no, row in _rows(path, progress):
        try:
            if len(row) not in expected:
                raise ValueError(
                    f"expected {' or '.join(map(str, expected))} columns, got {len(row)}"
                )
            if not canonical:  # first data row: settle kind, symbol and contract size
                native_for_kind = (
                    native_hint if "-" not in native_hint else symbols.to_binance(native_hint)
                )
                resolved = resolved or instrument_kind_for(native_for_kind, len(row), file_kind)
                try:
                    canonical, native = canonical_and_native(native_hint, resolved)
                except ValueError as exc:  # the file's symbol, not this row: stop here
                    raise BinanceFileError(str(path), None, str(exc)) from None
                if resolved is InstrumentKind.INVERSE:
                    size = contract_size or contract_size_for(native)
            try:  # fast path; _decimal below only to explain a bad value
                price, quantity = Decimal(row[1]), Decimal(row[2])
                valid = _ZERO < price < _INF and _ZERO < quantity < _INF
            except InvalidOperation:  # not a number, or a NaN compared
                valid = False
            if not valid:
                price = _decimal(row[1], "price")
                quantity = _decimal(row[2], "quantity")
            if is_agg:
                trade_id, first_id, last_id = int(row[0]), int(row[3]), int(row[4])
                if last_id < first_id:
                    raise ValueError(f"last_trade_id {last_id} < first_trade_id {first_id}")
                time_text, maker_text = row[5], row[6]
            else:
                trade_id, first_id, last_id = int(row[0]), None, None
                time_text, maker_text = row[4], row[5]
            event_us = unit.to_us(time_text)
            # The buyer was the maker => the taker (aggressor) sold.
            maker = (
                _BOOL[maker_text] if maker_text in _BOOL else _bool(maker_text, "is_buyer_maker")
            )
            side = Side.SELL if maker else Side.BUY
        except BinanceFileError:
            raise
        except ValueError as exc:
            error = BinanceFileError(str(path), line_no, f"{exc} in row {row!r}")
            if errors is None:
                raise error from None
            errors.append(error)
            continue
        yield Trade(
            exchange=exchange,
            symbol=canonical,
            native_symbol=native,
            trade_id=trade_id,
            price=price,
            quantity=quantity,
            side=side,
            event_time_us=event_us,
            ingest_time_us=event_us if ingest_time_us is None else ingest_time_us,
            first_trade_id=first_id,
            last_trade_id=last_id,
            kind=resolved or InstrumentKind.SPOT,
            contract_size=size,
        )


@dataclass(frozen=True, slots=True)
class Kline:
    """One row of an official kline file; decimals keep the file's own precision.

    For COIN-M klines `quote_volume` is the base-asset volume and `taker_buy_volume` is
    in contracts, `taker_buy_quote_volume` in base asset (see docs/semantics.md).
    """

    open_time_us: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    close_time_us: int
    quote_volume: Decimal
    trade_count: int
    taker_buy_volume: Decimal
    taker_buy_quote_volume: Decimal


def read_klines(
    path: str | Path, *, errors: list[BinanceFileError] | None = None
) -> Iterator[Kline]:
    """Klines of an official kline file (header optional, ms or µs), in file order."""
    path = Path(path)
    unit = _TimeUnit()
    for line_no, row in _rows(path):
        try:
            if len(row) not in (11, 12):
                raise ValueError(f"expected 12 columns, got {len(row)}")
            kline = Kline(
                open_time_us=unit.to_us(row[0]),
                open=_decimal(row[1], "open"),
                high=_decimal(row[2], "high"),
                low=_decimal(row[3], "low"),
                close=_decimal(row[4], "close"),
                volume=_decimal(row[5], "volume", positive=False),
                close_time_us=unit.to_us(row[6]),
                quote_volume=_decimal(row[7], "quote_volume", positive=False),
                trade_count=int(row[8]),
                taker_buy_volume=_decimal(row[9], "taker_buy_volume", positive=False),
                taker_buy_quote_volume=_decimal(row[10], "taker_buy_quote_volume", positive=False),
            )
        except BinanceFileError:
            raise
        except ValueError as exc:
            error = BinanceFileError(str(path), line_no, f"{exc} in row {row!r}")
            if errors is None:
                raise error from None
            errors.append(error)
            continue
        yield kline
