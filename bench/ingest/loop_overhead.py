"""What the live loop's frame hand-off costs, apart from parsing (one core).

    .venv/bin/python bench/ingest/loop_overhead.py [--frames 50000]

An asyncio queue stands in for the WebSocket library's frame queue (websockets' recv()
is a queue get when frames are waiting). Compared per frame, CPU time:
  race:   the earlier loop: a fresh recv() future raced against the stop and watchdog
          tasks with asyncio.wait, every frame
  reader: Connection._read's shape: one task awaiting recv() in a loop (and yielding
          every 64 frames)
"""

from __future__ import annotations

import argparse
import asyncio
import time


class Frames:
    def __init__(self, n: int) -> None:
        self.queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(n):
            self.queue.put_nowait(i)

    async def recv(self) -> int:
        return await self.queue.get()


async def race(n: int) -> float:
    ws, stop = Frames(n), asyncio.Event()
    watchdog = asyncio.create_task(asyncio.sleep(3600))
    stopper = asyncio.create_task(stop.wait())
    t0 = time.thread_time()
    for _ in range(n):
        receive = asyncio.ensure_future(ws.recv())
        await asyncio.wait({receive, stopper, watchdog}, return_when=asyncio.FIRST_COMPLETED)
        receive.result()
    seconds = time.thread_time() - t0
    watchdog.cancel()
    stopper.cancel()
    return seconds


async def reader(n: int) -> float:
    ws = Frames(n)
    t0 = time.thread_time()
    for count in range(1, n + 1):
        await ws.recv()
        if not count & 63:
            await asyncio.sleep(0)
    return time.thread_time() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=50_000)
    n = ap.parse_args().frames
    for name, loop in (("race", race), ("reader", reader)):
        best = min(asyncio.run(loop(n)) for _ in range(3))
        print(f"{name}: {best / n * 1e6:.2f} µs per frame (CPU, best of 3)")


if __name__ == "__main__":
    main()
