"""Candleflow's ingest path on the same frames (main venv, one core).

mode parse:   adapter.parse (JSON -> validated, normalized Trades)
mode produce: what the live WebSocket loop runs per frame (Connection.receive):
              parse + dedup/gap check + metrics + Avro encode + idempotent produce to
              Kafka, timed until every message is acknowledged by the broker. Binance
              frames take the fast lane (ingest/lane.py), the rest the general route.
              With the default ProducerSettings: delivery reports for failures only
              (delivered = produced - failed - in flight), librdkafka statistics every 5 s.
mode produce-all: the same with delivery_reports="all" (opt-in: a report per message,
              the per-message latency histogram).
usage: ours.py FRAMES.jsonl CPU parse|produce|produce-all
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from pathlib import Path

from ingest import ADAPTERS
from ingest.common import DEFAULT_OPTIONS, Reject


def main(path: str, mode: str) -> dict:
    frames = [json.loads(line) for line in Path(path).read_text().splitlines()]
    work = [(ADAPTERS[f["x"]].parse, f["f"]) for f in frames]
    trades = 0
    if mode == "parse":
        cpu0, t0 = _cpu(), time.perf_counter()
        for parse, frame in work:
            result = parse(frame, 1, DEFAULT_OPTIONS)
            if not isinstance(result, Reject):
                trades += len(result)
        return {
            "side": "candleflow-parse",
            "trades": trades,
            "frames": len(work),
            "seconds": time.perf_counter() - t0,
            "cpu_seconds": _cpu() - cpu0,
        }

    from adapters import topics
    from candleflow.config import Topics
    from devstack.testing import stack_test_settings
    from ingest.connection import Connection, Endpoint
    from ingest.lane import fast_lane
    from ingest.producer import ProducerSettings, TradeProducer

    settings = stack_test_settings()
    topic = f"bench-ingest-{uuid.uuid4().hex[:8]}"
    admin = topics.admin(settings.bootstrap_servers)
    topics.ensure_topics(admin, [topics.TopicSpec(topic, partitions=3)])
    producer = TradeProducer(
        settings,
        Topics(),
        trades_topic=topic,
        rejects_topic=f"{topic}-rejects",
        settings=ProducerSettings(delivery_reports="all")
        if mode == "produce-all"
        else ProducerSettings(),  # the defaults, as `candleflow ingest live` runs
    )
    # One Connection per exchange, fed the frames the way its WebSocket loop feeds them
    # (Connection._session calls receive(frame)): parse, dedup/gap check, batched
    # metrics, Avro, produce, delivery reports. Only the socket read is not measured.
    conns = {
        x: Connection(
            Endpoint(x, "ws://bench.invalid", []), producer, fast_lane=fast_lane(x, producer)
        )
        for x in {f["x"] for f in frames}
    }
    feed = [(conns[f["x"]].receive, f["f"]) for f in frames]
    try:
        cpu0, py0, t0 = _cpu(), time.thread_time(), time.perf_counter()
        for receive, frame in feed:
            receive(frame)
        remaining = producer.flush(120)
        seconds, cpu = time.perf_counter() - t0, _cpu() - cpu0
        python_cpu = time.thread_time() - py0  # the rest is librdkafka's threads
    finally:
        topics.delete_topics(admin, [topic])
    trades = sum(c.stats.trades for c in conns.values())
    assert remaining == 0 and producer.failed == 0 and producer.delivered == trades
    return {
        "side": f"candleflow-{mode}",
        "trades": trades,
        "frames": len(feed),
        "seconds": seconds,
        "cpu_seconds": cpu,
        "python_thread_cpu_seconds": python_cpu,
        "acked": producer.delivered,
    }


def _cpu() -> float:
    """CPU time of this process, every thread (librdkafka's included); the same clock as
    theirs.py's time.process_time()."""
    return time.process_time()


if __name__ == "__main__":
    os.sched_setaffinity(0, {int(sys.argv[2])})
    print(json.dumps(main(sys.argv[1], sys.argv[3])))
