"""cryptofeed's parsers on the same frames (runs in bench/.venv-cryptofeed, one core).

Drives each feed's own `message_handler` (JSON decode + normalize into cryptofeed's Trade
+ callback), the path a live cryptofeed process runs per frame. Symbol tables come from
the exchange responses recorded in the captures (cryptofeed would download them).
usage: theirs.py FRAMES.jsonl CPU
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
import time
from pathlib import Path

import zstandard
from cryptofeed.defines import TRADES
from cryptofeed.exchanges import Binance, BinanceDelivery, Coinbase, Kraken
from cryptofeed.symbols import Symbols

CAPTURES = Path(__file__).resolve().parents[3] / "shared" / "data" / "captures"


def _recorded_http(name: str) -> dict:
    with open(CAPTURES / f"{name}.jsonl.zst", "rb") as fh:
        raw = zstandard.ZstdDecompressor().stream_reader(fh)
        for line in io.TextIOWrapper(raw, encoding="utf-8"):
            rec = json.loads(line)
            if rec.get("t") == "http":
                return json.loads(rec["data"])
    raise SystemExit(f"no recorded symbol table in {name}")


def _symbols() -> None:
    for cls, name in ((Binance, "BINANCE"), (Kraken, "KRAKEN"), (Coinbase, "COINBASE")):
        syms, info = cls._parse_symbol_data(_recorded_http(name))
        Symbols.set(cls.id, syms, info)
    # COIN-M: not recorded; the one market the bench uses, in cryptofeed's naming
    Symbols.set(
        BinanceDelivery.id,
        {"BTC-USD-PERP": "BTCUSD_PERP"},
        {"instrument_type": {"BTC-USD-PERP": "perpetual"}, "tick_size": {}},
    )


async def main(path: str) -> dict:
    frames = [json.loads(line) for line in Path(path).read_text().splitlines()]
    count = 0

    async def on_trade(trade, receipt) -> None:
        nonlocal count
        count += 1

    _symbols()
    cb = {TRADES: [on_trade]}
    feeds = {
        "binance": Binance(symbols=["NKN-USDT"], channels=[TRADES], callbacks=cb),
        "binance_coinm": BinanceDelivery(symbols=["BTC-USD-PERP"], channels=[TRADES], callbacks=cb),
        "coinbase": Coinbase(symbols=["BTC-USD"], channels=[TRADES], callbacks=cb),
        "kraken": Kraken(symbols=["XMR-USD"], channels=[TRADES], callbacks=cb),
    }
    work = [
        (feeds["binance_coinm" if '"BTCUSD_PERP"' in f["f"] else f["x"]].message_handler, f["f"])
        for f in frames
    ]
    cpu0, t0 = time.process_time(), time.perf_counter()
    for handler, frame in work:
        await handler(frame, None, 0.0)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {
        "side": "cryptofeed",
        "trades": count,
        "frames": len(work),
        "seconds": seconds,
        "cpu_seconds": cpu,
    }


if __name__ == "__main__":
    os.sched_setaffinity(0, {int(sys.argv[2])})
    print(json.dumps(asyncio.run(main(sys.argv[1]))))
