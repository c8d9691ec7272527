"""Where the microseconds of one trade go on the live path, stage by stage (one core).

    .venv/bin/python bench/ingest/stages.py [--rounds 5] [--cpu 1] [--trades 105280]

Over the same COIN-M aggTrade frames (run.py's coinm-day set), the CPU time of the Python
thread per trade, the best of the rounds (the least disturbed by other load), and of the
whole process (librdkafka's threads included):

  json         orjson.loads of the frame (the old decoder, for reference)
  decode       msgspec: the frame into binance's typed structs
  parse        binance.parse: decode, validation, normalization to Trade
  general      Connection.receive into a sink without the lane: parse, dedup/gap check,
               metrics, Avro encode of the Trade (the route of every non-lane frame)
  lane         Connection.receive with the lane (ingest/lane.py) into a sink whose
               produce() is a no-op C call: all of the lane's Python work
  produce      the lane into the real TradeProducer (idempotent, acks=all) on the test
               stack's Kafka, until every message is acknowledged, with
               delivery_reports="all" (a report per message: the opt-in since session 4)
  produce-err  the same with delivery_reports="errors" (delivery.report.only.error: the
               default since session 4)
"""

from __future__ import annotations

import argparse
import itertools
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
from devstack.fakes.exchange import binance_agg_frames  # noqa: E402
from devstack.sample_data import COINM_DAY  # noqa: E402
from ingest import binance, lane  # noqa: E402
from ingest.avro_trade import TradeEncoder  # noqa: E402
from ingest.common import DEFAULT_OPTIONS, Reject  # noqa: E402
from ingest.connection import Connection, Endpoint, Sink  # noqa: E402


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


class NoopLaneSink(DropSink):
    """The lane with a produce() that does nothing (a C call taking the same arguments)."""

    produced = 0

    def avro_lane(self) -> lane.AvroLane:
        return lane.AvroLane(
            owner=self,
            header=TradeEncoder(1).header,
            topic="bench",
            produce=itertools.chain,  # any C callable accepting 5 positional arguments
            on_delivery=None,
            produce_blocking=lambda topic, key, value: None,
            poll=self.poll,
            poll_every=64,
        )


def _feed(frames: list[str], sink: Sink) -> None:
    ep = Endpoint("binance", "ws://bench.invalid", [])
    receive = Connection(ep, sink, fast_lane=lane.fast_lane("binance", sink)).receive
    for frame in frames:
        receive(frame)


def _produce(frames: list[str], reports: str = "all") -> None:
    from adapters import topics
    from candleflow.config import Topics
    from devstack.testing import stack_test_settings
    from ingest.producer import ProducerSettings, TradeProducer

    settings = stack_test_settings()
    topic = f"bench-stages-{uuid.uuid4().hex[:8]}"
    admin = topics.admin(settings.bootstrap_servers)
    topics.ensure_topics(admin, [topics.TopicSpec(topic, partitions=3)])
    try:
        producer = TradeProducer(
            settings,
            Topics(),
            trades_topic=topic,
            rejects_topic=f"{topic}-rejects",
            settings=ProducerSettings(delivery_reports=reports),
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
    trades = read_trades(COINM_DAY)
    frames = binance_agg_frames(list(trades)[: args.trades], "BTCUSD_PERP")
    parse, loads, decode = binance.parse, orjson.loads, binance.decode_combined

    def run_json() -> None:
        for f in frames:
            loads(f)

    def run_decode() -> None:
        for f in frames:
            decode(f)

    def run_parse() -> None:
        for f in frames:
            parse(f, 1, DEFAULT_OPTIONS)

    stages: dict[str, Callable[[], None]] = {
        "json": run_json,
        "decode": run_decode,
        "parse": run_parse,
        "general": lambda: _feed(frames, EncodeSink()),
        "lane": lambda: _feed(frames, NoopLaneSink()),
    }
    stack = None
    if not args.no_produce:
        from devstack.testing import acquire_stack, release_stack

        stack, started = acquire_stack(flink=False)
        stages["produce"] = lambda: _produce(frames)
        stages["produce-err"] = lambda: _produce(frames, "errors")
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
    print("| stage | µs/trade, Python thread | µs/trade, process |")
    print("| --- | --- | --- |")
    for name, (thread, process) in best.items():
        print(f"| {name} | {thread:.2f} | {process:.2f} |")
    print(f"{len(frames)} trades, best of {args.rounds} rounds, load {os.getloadavg()}")


if __name__ == "__main__":
    main()
