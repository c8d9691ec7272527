"""N live gRPC subscribers in one process, each writing every candle revision it receives.

    python -m bench.chaos.subscribers HOST:PORT SYMBOL N OUT_DIR

Each subscriber streams SYMBOL's candles from the beginning with serving/client.py's
resuming client (a killed server is reconnected with the cursor of the last event), and
appends `exchange symbol interval window_start_us revision` to OUT_DIR/sub-<i>.txt, one
line per event, flushed at once: what was received before a crash of the server is on disk.
Runs until SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from serving.client import MarketDataClient


async def subscriber(target: str, symbol: str, path: Path, stop: asyncio.Event) -> None:
    async with MarketDataClient(target) as client:
        with path.open("a", buffering=1) as out:
            stream = client.stream_candles([symbol], from_beginning=True, max_backoff=1.0)
            async for event in stream:
                if event.HasField("candle"):
                    c = event.candle
                    out.write(
                        f"{c.exchange} {c.symbol} {c.interval} {c.window_start_us} {c.revision}\n"
                    )
                if stop.is_set():
                    return


async def main(target: str, symbol: str, n: int, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks = [
        asyncio.create_task(subscriber(target, symbol, out_dir / f"sub-{i:02d}.txt", stop))
        for i in range(n)
    ]
    await stop.wait()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


if __name__ == "__main__":
    host_port, sym, count, out = sys.argv[1:5]
    asyncio.run(main(host_port, sym, int(count), Path(out)))
