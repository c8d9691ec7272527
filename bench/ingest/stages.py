"""Where the microseconds of one trade go on the live path, stage by stage (one core).

    .venv/bin/python bench/ingest/stages.py [--rounds 5] [--cpu 1] [--trades 105280]

Each stage adds one step to the one before, over the same COIN-M aggTrade frames
(run.py's coinm-day set), and reports the CPU time of the Python thread per trade, the
best of the rounds (the least disturbed by other load; CPU time, not wall time):

  json        orjson.loads of the frame
  parse       binance.parse: JSON, validation, normalization to Trade
  connection  Connection.receive into a sink that drops the trades: + dedup/gap check,
              batched metrics, the loop's bookkeeping
  encode      the same into a sink that Avro-encodes (Confluent wire format)
  produce     the same into the real TradeProducer (idempotent, acks=all) on the test
              stack's Kafka, until every message is acknowledged; `process` adds
              librdkafka's own threads
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from candleflow.binance_files import read_trades  # noqa: E402
from candleflow.domain import Trade  # noqa: E402
from ingest import binance  # noqa: E402
from ingest.avro_trade import TradeEncoder  # noqa: E402
from ingest.common import DEFAULT_OPTIONS, Reject  # noqa: E402
from ingest.connection import Connection, Endpoint, Sink  # noqa: E402
from tests.fakes.exchange import binance_agg_frames  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


class DropSink:
    def produce_many(self, trades: list[Trade]) -> None:
        pass

    def produce_reject(self, reject: Reject) -> None:
        pass

    def poll(self, timeout: float = 0) -> int:
        return 0


class EncodeSink(DropSink):
    def __init__(self) -> None:
        self.encode = TradeEncoder(1)

    def produce_many(self, trades: list[Trade]) -> None:
        for t in trades:
            self.encode(t)


def _feed(frames: list[str], sink: Sink) -> None:
    receive = Connection(Endpoint("binance", "ws://bench.invalid", []), sink).receive
    for frame in frames:
        receive(frame)


def _produce(frames: list[str]) -> None:
    from candleflow import topics
    from candleflow.config import Topics
    from candleflow.testing import stack_test_settings
    from ingest.producer import TradeProducer

    settings = stack_test_settings()
    topic = f"bench-stages-{uuid.uuid4().hex[:8]}"
    admin = topics.admin(settings.bootstrap_servers)
    topics.ensure_topics(admin, [topics.TopicSpec(topic, partitions=3)])
    try:
        producer = TradeProducer(
            settings, Topics(), trades_topic=topic, rejects_topic=f"{topic}-rejects"
        )
        _feed(frames, producer)
        assert producer.flush(120) == 0 and producer.delivered == len(frames)
    finally:
        topics.delete_topics(admin, [topic])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cpu", type=int, default=1)
    ap.add_argument("--trades", type=int, default=105_280)
    ap.add_argument("--no-produce", action="store_true")
    args = ap.parse_args()
    os.sched_setaffinity(0, {args.cpu})
    trades = read_trades(DATA / "binance" / "BTCUSD_PERP-aggTrades-2026-05-08.zip")
    frames = binance_agg_frames(list(trades)[: args.trades], "BTCUSD_PERP")
    parse, loads = binance.parse, orjson.loads

    def run_json() -> None:
        for f in frames:
            loads(f)

    def run_parse() -> None:
        for f in frames:
            parse(f, 1, DEFAULT_OPTIONS)

    stages: dict[str, Callable[[], None]] = {
        "json": run_json,
        "parse": run_parse,
        "connection": lambda: _feed(frames, DropSink()),
        "encode": lambda: _feed(frames, EncodeSink()),
    }
    stack = None
    if not args.no_produce:
        from candleflow.testing import acquire_stack, release_stack

        stack, started = acquire_stack(flink=False)
        stages["produce"] = lambda: _produce(frames)
    best: dict[str, tuple[float, float]] = {}
    try:
        for _ in range(args.rounds):
            for name, run in stages.items():
                thread0, process0 = time.thread_time(), time.process_time()
                run()
                thread = (time.thread_time() - thread0) / len(frames) * 1e6
                process = (time.process_time() - process0) / len(frames) * 1e6
                old = best.get(name, (float("inf"), float("inf")))
                best[name] = (min(old[0], thread), min(old[1], process))
    finally:
        if stack is not None:
            release_stack(stack, started)
    print(json.dumps({"best_us_per_trade": best, "load_average": os.getloadavg()}))
    print("| stage | µs/trade, Python thread | step | µs/trade, process |")
    print("| --- | --- | --- | --- |")
    previous = 0.0
    for name, (thread, process) in best.items():
        print(f"| {name} | {thread:.2f} | +{thread - previous:.2f} | {process:.2f} |")
        previous = thread
    print(f"{len(frames)} trades, best of {args.rounds} rounds, load {os.getloadavg()}")


if __name__ == "__main__":
    main()
