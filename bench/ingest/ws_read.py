"""What reading a frame off the WebSocket costs, by client library (one core).

    .venv/bin/python bench/ingest/ws_read.py [--cpu 1]

The fake Binance server (devstack/fakes, via live.py, on the other core) sends run.py's
coinm-day frames; the client only reads them (no parsing). CPU time per frame:
  websockets: what Connection uses today (its Python frame parser, permessage-deflate)
  aiohttp:    aiohttp's client (a compiled frame reader; aiohttp is already a dependency)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import websockets

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from candleflow.binance_files import read_trades  # noqa: E402
from devstack.fakes.exchange import binance_agg_frames  # noqa: E402
from devstack.sample_data import COINM_DAY  # noqa: E402


async def with_websockets(url: str, n: int) -> None:
    async with websockets.connect(url, max_size=2**24, max_queue=1024, ping_interval=None) as ws:
        for i in range(n):
            await ws.recv()
            if not i & 63:
                await asyncio.sleep(0)


async def with_aiohttp(url: str, n: int) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url, max_msg_size=2**24) as ws,
    ):
        for _ in range(n):
            (await ws.receive()).data  # noqa: B018 - the read is what is measured


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cpu", type=int, default=1)
    cpu = ap.parse_args().cpu
    frames = binance_agg_frames(list(read_trades(COINM_DAY)), "BTCUSD_PERP")
    other = next(iter(os.sched_getaffinity(0) - {cpu}), cpu)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "frames.jsonl"
        path.write_text("".join(json.dumps({"x": "binance", "f": f}) + "\n" for f in frames))
        for name, client in (("websockets", with_websockets), ("aiohttp", with_aiohttp)):
            server = subprocess.Popen(
                [sys.executable, str(HERE / "live.py"), str(path), str(other), "serve"],
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYTHONPATH": str(HERE.parents[1])},
            )
            try:
                assert server.stdout is not None
                url = server.stdout.readline().strip() + "/stream"
                os.sched_setaffinity(0, {cpu})
                cpu0 = time.process_time()
                asyncio.run(client(url, len(frames)))
                per_frame = (time.process_time() - cpu0) / len(frames) * 1e6
                print(f"{name}: {per_frame:.2f} µs CPU per frame read", flush=True)
            finally:
                server.terminate()
                server.wait(10)


if __name__ == "__main__":
    main()
