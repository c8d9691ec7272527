"""Candleflow's ingest path on the same frames (main venv, one core).

mode parse:   adapter.parse (JSON -> validated, normalized Trades)
mode produce: parse + dedup/gap check + Avro encode + idempotent produce to Kafka, timed
              until every message is acknowledged by the broker.
usage: ours.py FRAMES.jsonl CPU parse|produce
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
from ingest.gaps import GapTracker


def main(path: str, mode: str) -> dict:
    frames = [json.loads(line) for line in Path(path).read_text().splitlines()]
    work = [(ADAPTERS[f["x"]].parse, f["f"]) for f in frames]
    trades = 0
    if mode == "parse":
        t0 = time.perf_counter()
        for parse, frame in work:
            result = parse(frame, 1, DEFAULT_OPTIONS)
            if not isinstance(result, Reject):
                trades += len(result)
        return {
            "side": "candleflow-parse",
            "trades": trades,
            "frames": len(work),
            "seconds": time.perf_counter() - t0,
        }

    from candleflow import topics
    from candleflow.config import Topics
    from candleflow.testing import stack_test_settings
    from ingest.producer import TradeProducer

    settings = stack_test_settings()
    topic = f"bench-ingest-{uuid.uuid4().hex[:8]}"
    admin = topics.admin(settings.bootstrap_servers)
    topics.ensure_topics(admin, [topics.TopicSpec(topic, partitions=3)])
    producer = TradeProducer(
        settings, Topics(), trades_topic=topic, rejects_topic=f"{topic}-rejects"
    )
    tracker = GapTracker()
    observe = tracker.observe
    try:
        t0 = time.perf_counter()
        for parse, frame in work:
            result = parse(frame, 1, DEFAULT_OPTIONS)
            if isinstance(result, Reject):
                continue
            fresh = [t for t in result if observe(t)[0]]
            producer.produce_many(fresh)
            trades += len(fresh)
        remaining = producer.flush(120)
        seconds = time.perf_counter() - t0
    finally:
        topics.delete_topics(admin, [topic])
    assert remaining == 0 and producer.failed == 0 and producer.delivered == trades
    return {
        "side": "candleflow-produce",
        "trades": trades,
        "frames": len(work),
        "seconds": seconds,
        "acked": producer.delivered,
    }


if __name__ == "__main__":
    os.sched_setaffinity(0, {int(sys.argv[2])})
    print(json.dumps(main(sys.argv[1], sys.argv[3])))
