"""Bounded files in and out of the candles job: the trades CSV its FileSource reads and the
JSON rows its FileSinks write, mapped to and from the domain records (backfill, tests)."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

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
    base = dt.datetime.strptime(whole, _EPOCH_FMT).replace(tzinfo=dt.UTC)
    return int(base.timestamp()) * 1_000_000 + int((frac + "000000")[:6])


def write_trades_csv(trades: Iterable[Trade], path: Path) -> None:
    """The trades as the FileSource's CSV. Sorted input shares seconds and prices from row to
    row, so their texts are made once (a day of a busy market is millions of rows)."""
    seconds: dict[int, str] = {}
    decimals: dict[Decimal, str] = {}

    def ts(us: int) -> str:
        whole, frac = divmod(us, 1_000_000)
        prefix = seconds.get(whole)
        if prefix is None:
            if len(seconds) >= 4096:
                seconds.clear()
            prefix = seconds[whole] = dt.datetime.fromtimestamp(whole, tz=dt.UTC).strftime(
                _EPOCH_FMT
            )
        return f"{prefix}.{frac:06d}"

    def dec(d: Decimal) -> str:
        # Equal values may differ in exponent (1.0 vs 1.00); any of their texts is the value.
        text = decimals.get(d)
        if text is None:
            if len(decimals) >= 65_536:
                decimals.clear()
            text = decimals[d] = f"{d:f}"
        return text

    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        for t in trades:
            w.writerow(
                [
                    t.exchange,
                    t.symbol,
                    t.native_symbol,
                    t.trade_id,
                    dec(t.price),
                    dec(t.quantity),
                    t.side.value,
                    ts(t.event_time_us),
                    ts(t.ingest_time_us),
                    "" if t.first_trade_id is None else t.first_trade_id,
                    "" if t.last_trade_id is None else t.last_trade_id,
                    t.kind.value,
                    "" if t.contract_size is None else dec(t.contract_size),
                ]
            )


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
    return Candle(
        r["exchange"],
        r["symbol"],
        r["interval"],
        parse_ts(r["window_start"]),
        parse_ts(r["window_end"]),
        _req(r["open"]),
        _req(r["high"]),
        _req(r["low"]),
        _req(r["close"]),
        _req(r["volume"]),
        _req(r["quote_volume"]),
        int(r["trade_count"]),
        _req(r["taker_buy_volume"]),
        _req(r["taker_buy_quote_volume"]),
        _dec(r["vwap"]),
        r["first_trade_id"],
        r["last_trade_id"],
        int(r["revision"]),
        bool(r["is_empty"]),
    )


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
