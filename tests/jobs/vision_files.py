"""Generated data.binance.vision files (tests/jobs/test_backfill_properties.py): the layouts of
../shared/reference/binance/binance-public-data-README.md, from the trades they must read back as.

| market | trades columns | aggTrades columns |
| --- | --- | --- |
| spot | id,price,qty,quoteQty,time,isBuyerMaker,isBestMatch | +first,last ids, 8 columns |
| USD-M | id,price,qty,quote_qty,time,is_buyer_maker | agg_trade_id,...,is_buyer_maker, 7 |
| COIN-M | id,price,qty,base_qty,time,is_buyer_maker | as USD-M |

Times in ms or µs, with or without a header row, plain .csv or a .zip holding one .csv.
"""

from __future__ import annotations

import csv
import io
import random
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from candleflow import binance_files, symbols
from candleflow.domain import InstrumentKind, Side, Trade
from tests.jobs import scenarios

SPOT, USDM, COINM = "spot", "usdm", "coinm"
HEADERS = {
    ("trades", SPOT): "id,price,qty,quote_qty,time,is_buyer_maker,is_best_match",
    ("trades", USDM): "id,price,qty,quote_qty,time,is_buyer_maker",
    ("trades", COINM): "id,price,qty,base_qty,time,is_buyer_maker",
    ("aggTrades", SPOT): "agg_trade_id,price,quantity,first_trade_id,last_trade_id,"
    "transact_time,is_buyer_maker,is_best_match",
    ("aggTrades", USDM): "agg_trade_id,price,quantity,first_trade_id,last_trade_id,"
    "transact_time,is_buyer_maker",
}
HEADERS[("aggTrades", COINM)] = HEADERS[("aggTrades", USDM)]


@dataclass(frozen=True)
class Layout:
    market: str  # spot, usdm, coinm
    kind: str  # trades, aggTrades
    ms: bool
    header: bool
    zipped: bool

    @classmethod
    def draw(cls, rng: random.Random) -> Layout:
        return cls(
            rng.choice([SPOT, USDM, COINM]),
            rng.choice(["trades", "aggTrades"]),
            rng.random() < 0.5,
            rng.random() < 0.5,
            rng.random() < 0.3,
        )


def native_symbol(index: int, market: str) -> str:
    base = "BTC" if index == 0 else f"Q{index}Z"
    if market == COINM:
        return f"{base}USD_PERP"
    return base + ("USDT" if market == USDM else ["USDT", "FDUSD", "BTC", "EUR"][index % 4])


def market_of(native: str, layout: Layout) -> scenarios.Market:
    """The market the reader makes of the file: kind and canonical symbol as binance_files."""
    kind = {
        SPOT: InstrumentKind.SPOT,
        USDM: InstrumentKind.LINEAR,
        COINM: InstrumentKind.INVERSE,
    }[layout.market]
    canonical = symbols.from_binance(native) + ("-PERP" if layout.market == USDM else "")
    size = binance_files.contract_size_for(native) if kind is InstrumentKind.INVERSE else None
    return scenarios.Market("binance", canonical, native, kind, size)


def _text(d: Decimal, spot: bool) -> str:
    return f"{d:.8f}" if spot else format(d.normalize(), "f")


def row(t: Trade, layout: Layout) -> list[str]:
    spot = layout.market == SPOT
    time = str(t.event_time_us // 1000 if layout.ms else t.event_time_us)
    maker = t.side is Side.SELL  # the buyer was the maker: the taker sold
    flag = ("True" if maker else "False") if spot else ("true" if maker else "false")
    if layout.kind == "aggTrades":
        out = [str(t.trade_id), _text(t.price, spot), _text(t.quantity, spot)]
        out += [str(t.first_trade_id), str(t.last_trade_id), time, flag]
    else:
        amount = t.quote_quantity.quantize(Decimal("1E-8"))
        out = [str(t.trade_id), _text(t.price, spot), _text(t.quantity, spot), _text(amount, spot)]
        out += [time, flag]
    return out + (["True"] if spot else [])


def write(directory: Path, native: str, layout: Layout, day_us: int, trades: list[Trade]) -> Path:
    """One file named as data.binance.vision names it, e.g. BTCUSDT-trades-2025-01-01.zip."""
    day = datetime.fromtimestamp(day_us / 1e6, tz=UTC).date().isoformat()
    name = f"{native}-{layout.kind}-{day}"
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if layout.header:
        buf.write(HEADERS[(layout.kind, layout.market)] + "\n")
    for t in trades:
        w.writerow(row(t, layout))
    if layout.zipped:
        path = directory / f"{name}.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(f"{name}.csv", buf.getvalue())
    else:
        path = directory / f"{name}.csv"
        path.write_text(buf.getvalue())
    return path
