"""Ingest on the real stack: replay and the live loop into Kafka (Avro via the registry),
read back and compared value by value; a broker restart during a replay loses nothing."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer
from prometheus_client import REGISTRY

from adapters import avro
from candleflow.binance_files import read_trades
from candleflow.config import StackSettings, Topics
from candleflow.domain import Trade
from devstack import jvm
from devstack.fakes.exchange import FakeExchange, Faults, binance_agg_frames, raw_trades
from devstack.procs import port_in_use
from devstack.sample_data import CAPTURES, COINM_DAY
from devstack.stack import Stack
from ingest.captures import read_frames
from ingest.common import Reject, RejectReason
from ingest.connection import Connection, endpoint
from ingest.lane import fast_lane
from ingest.producer import DeliveryError, ProducerSettings, TradeProducer
from ingest.replay import replay
from tests.ingest.test_connection import FAST, _expected_coinbase

COINBASE = CAPTURES / "coinbase_advanced_market_trades_2026-08-09.jsonl"

pytestmark = pytest.mark.integration


def read_topic(
    settings: StackSettings, topic: str, expected: int, timeout: float = 60.0
) -> list[tuple[bytes, Trade]]:
    """(key, trade) of every message of `topic`, read committed, from the beginning."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": f"read-{topic}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe([topic])
    decode = avro.deserializer(avro.registry_client(settings), "trade")
    out: list[tuple[bytes, Trade]] = []
    deadline = time.monotonic() + timeout
    idle_after_enough = 0
    try:
        while time.monotonic() < deadline:
            batch = consumer.consume(1000, 1.0)
            for msg in batch:
                assert msg.error() is None, msg.error()
                out.append((msg.key(), decode(msg.value(), avro.value_context(topic))))
            if len(out) >= expected:
                idle_after_enough += 0 if batch else 1
                if idle_after_enough >= 2:  # nothing more (no extra duplicate) arrives
                    break
    finally:
        consumer.close()
    return out


def read_rejects(settings: StackSettings, topic: str, expected: int) -> list[dict[str, str]]:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": f"read-{topic}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    out = []
    deadline = time.monotonic() + 30
    while len(out) < expected and time.monotonic() < deadline:
        for msg in consumer.consume(100, 1.0):
            out.append(json.loads(msg.value()))
    consumer.close()
    return out


def test_replay_into_kafka_round_trips_every_value(
    stack: Stack, unique_topic: Callable[..., str]
) -> None:
    topic, rejects = unique_topic("trades", partitions=3), unique_topic("rejects")
    producer = TradeProducer(stack.settings, Topics(), trades_topic=topic, rejects_topic=rejects)
    result = replay([COINBASE], producer)
    producer.close()
    assert result.trades == 279 and producer.delivered == 279 and producer.failed == 0
    got = read_topic(stack.settings, topic, 279)
    expected = {}
    from ingest import coinbase

    for frame in read_frames(COINBASE):
        for t in coinbase.parse(frame.data, 0):  # type: ignore[union-attr]
            expected[t.trade_id] = t
    assert len(got) == 279
    for key, trade in got:
        want = expected[trade.trade_id]
        assert key == f"coinbase:{want.symbol}".encode()
        assert (trade.symbol, trade.price, trade.quantity, trade.side, trade.event_time_us) == (
            want.symbol,
            want.price,
            want.quantity,
            want.side,
            want.event_time_us,
        )
        assert trade.ingest_time_us == trade.event_time_us  # plain capture: no receive time


async def test_live_disconnect_gap_is_filled_in_kafka_exactly_once(
    stack: Stack, unique_topic: Callable[..., str]
) -> None:
    topic, rejects = unique_topic("trades", partitions=3), unique_topic("rejects")
    frames = [f.data for f in read_frames(COINBASE)]
    lost = len(raw_trades("coinbase", frames[20:26]))
    producer = TradeProducer(stack.settings, Topics(), trades_topic=topic, rejects_topic=rejects)
    faults = Faults(
        disconnect={20: 6},
        duplicate={3, 40},
        swap={10},
        malformed={30: '{"channel":"market_trades","events":[{"trades":[1]}]}'},
    )
    async with FakeExchange("coinbase", frames, faults) as fake:
        conn = Connection(
            endpoint("coinbase", ["BTC-USD", "ETH-USD"], ws_base=fake.ws_url),
            producer,
            settings=FAST,
            rest_base=fake.rest_url,
            seed=3,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(conn.run(stop))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (
            conn.stats.trades < 279 or not fake.finished.is_set()
        ):
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.wait_for(task, 10)
    producer.close()
    got = read_topic(stack.settings, topic, 279)
    assert Counter((t.symbol, t.trade_id) for _, t in got) == _expected_coinbase()
    assert (conn.stats.gaps_found, conn.stats.gaps_filled) == (lost, lost)
    reject_records = read_rejects(stack.settings, rejects, 1)
    assert [r["reason"] for r in reject_records] == ["BAD_TYPE"]
    assert reject_records[0]["raw"].startswith('{"channel":"market_trades"')


async def test_live_binance_lane_into_kafka_exactly_once(
    stack: Stack, unique_topic: Callable[..., str]
) -> None:
    """The Binance fast lane (ingest/lane.py) on the real producer: every aggregate trade
    of the session once, value for value, across a disconnect, duplicates and reordering."""
    topic, rejects = unique_topic("trades", partitions=3), unique_topic("rejects")
    file_trades = [t for _, t in zip(range(400), read_trades(COINM_DAY), strict=False)]
    frames = binance_agg_frames(file_trades, "BTCUSD_PERP")
    producer = TradeProducer(stack.settings, Topics(), trades_topic=topic, rejects_topic=rejects)
    bad = frames[30].replace('"p":"', '"p":"-', 1)
    faults = Faults(disconnect={100: 37}, duplicate={3, 40}, swap={10}, malformed={30: bad})
    async with FakeExchange("binance", frames, faults) as fake:
        conn = Connection(
            endpoint("binance", ["BTC-USD-PERP"], ws_base=fake.ws_url, binance_kind="aggTrade"),
            producer,
            fast_lane=fast_lane("binance", producer),
            settings=FAST,
            rest_base=fake.rest_url,
            seed=3,
        )
        assert conn.receive != Connection.receive.__get__(conn)  # the lane is installed
        stop = asyncio.Event()
        task = asyncio.create_task(conn.run(stop))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (
            conn.stats.trades < 400 or not fake.finished.is_set()
        ):
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.wait_for(task, 10)
    producer.close()
    assert producer.delivered == 401 and producer.failed == 0  # 400 trades + 1 reject
    got = read_topic(stack.settings, topic, 400)
    assert {key for key, _ in got} == {b"binance:BTC-USD-PERP"}
    fields = (
        "trade_id",
        "price",
        "quantity",
        "side",
        "event_time_us",
        "first_trade_id",
        "last_trade_id",
        "kind",
        "contract_size",
    )
    assert sorted(tuple(getattr(t, f) for f in fields) for _, t in got) == [
        tuple(getattr(t, f) for f in fields) for t in file_trades
    ]
    assert (conn.stats.gaps_found, conn.stats.gaps_filled) == (37, 37)
    assert [r["reason"] for r in read_rejects(stack.settings, rejects, 1)] == ["NON_POSITIVE"]


@pytest.mark.parametrize("reports", ["all", "errors"])
def test_delivered_and_failed_counts_are_exact_in_both_report_modes(
    stack: Stack, unique_topic: Callable[..., str], reports: str
) -> None:
    """delivery_reports="errors" (delivery.report.only.error): librdkafka reports failures
    only and delivered = produced - failed - in flight; the counts must equal the per-report
    counts of the default mode: after a flush, and with every message failing."""
    from ingest import metrics

    topic, rejects = unique_topic("trades", partitions=3), unique_topic("rejects")
    settings = ProducerSettings(delivery_reports=reports)
    producer = TradeProducer(
        stack.settings, Topics(), trades_topic=topic, rejects_topic=rejects, settings=settings
    )
    assert producer.errors_only is (reports == "errors")
    before = REGISTRY.get_sample_value("candleflow_ingest_delivered_total") or 0.0
    trades = [t for _, t in zip(range(500), read_trades(COINM_DAY), strict=False)]
    frames = binance_agg_frames(trades, "BTCUSD_PERP")
    conn = Connection(
        endpoint("binance", ["BTC-USD-PERP"], binance_kind="aggTrade"),
        producer,
        fast_lane=fast_lane("binance", producer),
    )
    for frame in frames[:300]:  # the first through the general route, then the lane
        conn.receive(frame)
    producer.produce_many(trades[300:])  # produce_many's route
    producer.produce_reject(Reject("binance", RejectReason.BAD_TYPE, "x", "test", 1))
    assert producer.delivered <= producer.produced == 501
    producer.close()
    assert (producer.delivered, producer.failed, producer.in_flight) == (501, 0, 0)
    after = REGISTRY.get_sample_value("candleflow_ingest_delivered_total")
    assert after == before + 501  # the Prometheus counter too, exactly
    assert len(read_topic(stack.settings, topic, 500)) == 500

    # nowhere to deliver: every message fails, and is counted as failed, never delivered
    failing = TradeProducer(
        stack.settings,
        Topics(),
        trades_topic=topic,
        rejects_topic=rejects,
        settings=settings,
        extra_config={"bootstrap.servers": "127.0.0.1:9", "message.timeout.ms": 300},
    )
    failed_before = (
        REGISTRY.get_sample_value("candleflow_ingest_delivery_failed_total", {"topic": topic})
        or 0.0
    )
    failing.produce_many(trades[:7])
    assert failing.flush(10) == 0
    assert (failing.delivered, failing.failed, failing.produced) == (0, 7, 7)
    assert len(failing.failures) == 7 and "binance:BTC-USD-PERP" in failing.failures[0]
    assert (
        REGISTRY.get_sample_value("candleflow_ingest_delivery_failed_total", {"topic": topic})
        == failed_before + 7
    )
    with pytest.raises(DeliveryError):
        failing.close(1)
    assert metrics.DELIVERED is not None


# --- broker restart on a private broker (the shared test broker stays up for others) ---


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def private_kafka(stack: Stack, tmp_path: Path) -> Iterator[Stack]:
    """A broker of our own (sharing the test registry), so restarting it disturbs nobody."""
    settings = StackSettings(
        data_dir=tmp_path / "kafka-private",
        kafka_port=_free_port(),
        kafka_controller_port=_free_port(),
        registry_port=stack.settings.registry_port,
        kafka_bootstrap="",
        registry="",
    )
    private = Stack(settings)
    for d in (settings.logs_dir, private.conf_dir, private.pid_dir):
        d.mkdir(parents=True, exist_ok=True)
    private._start_kafka(jvm.java_bin())  # no public restart of Kafka alone (yet)
    private.procs["kafka"].wait_healthy(private.kafka_healthy, 180, "private broker")
    yield private
    private.procs["kafka"].stop(grace=10)


@pytest.mark.slow
def test_broker_restart_during_replay_loses_nothing(private_kafka: Stack) -> None:
    from adapters import topics

    settings = private_kafka.settings
    topic = "trades-restart"
    topics.ensure_topics(
        topics.admin(settings.bootstrap_servers), [topics.TopicSpec(topic, partitions=3)]
    )
    producer = TradeProducer(
        settings,
        Topics(),
        trades_topic=topic,
        rejects_topic="rejects",
        settings=ProducerSettings(max_in_flight=20_000),
    )
    stop = threading.Event()
    outcome: dict[str, object] = {}
    # 1000x: the day's first ~40 minutes take ~2.5 s of wall time per ... enough to restart
    worker = threading.Thread(
        target=lambda: outcome.update(result=replay([COINM_DAY], producer, speed=3000.0, stop=stop))
    )
    worker.start()
    time.sleep(4)
    assert worker.is_alive(), "replay finished before the restart: slow it down"
    private_kafka.procs["kafka"].stop(grace=10)  # SIGTERM: the broker goes away mid-stream
    assert not port_in_use(settings.host, settings.kafka_port)
    time.sleep(3)
    private_kafka._start_kafka(jvm.java_bin())
    private_kafka.procs["kafka"].wait_healthy(private_kafka.kafka_healthy, 180, "broker again")
    worker.join(timeout=600)
    producer.close(timeout=120)
    result = outcome["result"]
    expected = 105_280  # shared/data/README.md: agg ids 480537903-480643182, no gap
    assert result.trades == expected  # type: ignore[attr-defined]
    got = read_topic(settings, topic, expected, timeout=180)
    ids = Counter(t.trade_id for _, t in got)
    assert set(ids) == set(range(480537903, 480643183))  # nothing lost
    assert max(ids.values()) == 1  # and, thanks to idempotence, nothing written twice
    first = min((t for _, t in got), key=lambda t: t.trade_id)
    file_first = next(read_trades(COINM_DAY))
    assert first == file_first


@pytest.mark.slow
def test_cli_replay_flushes_everything_on_sigterm(
    stack: Stack, unique_topic: Callable[..., str]
) -> None:
    import os
    import re
    import signal
    import subprocess
    import sys

    topic = unique_topic("trades", partitions=3)
    s = stack.settings
    env = dict(
        os.environ,
        CANDLEFLOW_KAFKA_BOOTSTRAP=s.bootstrap_servers,
        CANDLEFLOW_KAFKA_PORT=str(s.kafka_port),
        CANDLEFLOW_REGISTRY_PORT=str(s.registry_port),
        COLUMNS="200",
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "candleflow.cli",
            "ingest",
            "replay",
            str(COINM_DAY),
            "--speed",
            "500",
            "--topic",
            topic,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(12)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "stopped early" in err
    produced = int(re.search(r"(\d+) trades produced", err).group(1))  # type: ignore[union-attr]
    acked = int(re.search(r"(\d+) messages acknowledged", err).group(1))  # type: ignore[union-attr]
    assert 0 < produced < 105_280 and acked == produced
    got = read_topic(s, topic, produced)
    # replay goes in file order: what was produced is exactly the first `produced` agg ids
    assert sorted(t.trade_id for _, t in got) == list(range(480537903, 480537903 + produced))
