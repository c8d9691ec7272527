"""The live path over a real WebSocket, one core: the fake Binance server of the tests
(devstack/fakes/exchange.py, its own process on the other core) sends the frames as fast as
it can; `Connection.run`, the loop `candleflow ingest live` runs, reads them (websockets),
parses, dedups, encodes and produces to the test stack's Kafka. Timed from the start of
the loop until every trade is acknowledged. Binance frames only (coinm-day).

usage: live.py FRAMES.jsonl CPU            (prints one JSON line, like ours.py)
       live.py FRAMES.jsonl CPU serve      (the server side; prints its URL)
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from ingest.connection import Connection, Endpoint
from ingest.lane import fast_lane


async def serve(frames: list[str]) -> None:
    from devstack.fakes.exchange import FakeExchange

    async with FakeExchange("binance", frames) as fake:
        print(fake.ws_url, flush=True)
        await asyncio.sleep(3600)


async def consume(url: str, expected: int) -> dict:
    from adapters import topics
    from candleflow.config import Topics
    from devstack.testing import stack_test_settings
    from ingest.producer import TradeProducer

    settings = stack_test_settings()
    topic = f"bench-ingest-live-{uuid.uuid4().hex[:8]}"
    admin = topics.admin(settings.bootstrap_servers)
    topics.ensure_topics(admin, [topics.TopicSpec(topic, partitions=3)])
    try:
        producer = TradeProducer(
            settings, Topics(), trades_topic=topic, rejects_topic=f"{topic}-rejects"
        )
        ep = Endpoint("binance", f"{url}/stream?streams=btcusd_perp@aggTrade", [], aggregate=True)
        conn = Connection(
            ep,
            producer,
            rest_base=url.replace("ws://", "http://"),
            fast_lane=fast_lane("binance", producer),
        )
        stop = asyncio.Event()
        cpu0, t0 = time.process_time(), time.perf_counter()
        task = asyncio.create_task(conn.run(stop))
        while conn.stats.trades < expected and not task.done():
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 30)
        remaining = producer.flush(120)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    finally:
        topics.delete_topics(admin, [topic])
    assert remaining == 0 and producer.failed == 0 and producer.delivered == expected
    return {
        "side": "candleflow-live",
        "trades": conn.stats.trades,
        "frames": conn.stats.frames,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "acked": producer.delivered,
    }


def main(path: str, cpu: int) -> dict:
    rows = [json.loads(line) for line in Path(path).read_text().splitlines()]
    if any(r["x"] != "binance" for r in rows):
        raise SystemExit("live.py replays Binance frames only")
    other = next(iter(os.sched_getaffinity(0) - {cpu}), cpu)
    server = subprocess.Popen(
        [sys.executable, __file__, path, str(other), "serve"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        os.sched_setaffinity(0, {cpu})
        return asyncio.run(consume(url, len(rows)))
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    if sys.argv[3:] == ["serve"]:
        os.sched_setaffinity(0, {int(sys.argv[2])})
        frames = [json.loads(line)["f"] for line in Path(sys.argv[1]).read_text().splitlines()]
        asyncio.run(serve(frames))
    else:
        print(json.dumps(main(sys.argv[1], int(sys.argv[2]))))
