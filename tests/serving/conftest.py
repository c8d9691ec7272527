"""Fixtures of the serving tests: the shared stack, unique topics, a producer of real
candles (transactional, like Flink's exactly-once sink), a server on port 0, Trino."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from candleflow import avro
from candleflow.config import StackSettings, Topics
from serving.server import ServingServer, create_server
from serving.settings import ServingSettings

TOKEN = "serving-test-token"  # fixed: pytest may import conftest twice


@pytest.fixture(scope="session")
def kafka_stack(request: pytest.FixtureRequest) -> Any:
    """The shared test stack (tests/conftest.py); CANDLEFLOW_TEST_EXISTING_STACK=1 uses
    whatever Kafka/registry the CANDLEFLOW_* variables point at instead."""
    if os.environ.get("CANDLEFLOW_TEST_EXISTING_STACK"):
        return SimpleNamespace(settings=StackSettings())
    return request.getfixturevalue("stack")


@dataclass
class CandleTopics:
    settings: StackSettings
    topics: Topics
    partitions: int

    def producer(self) -> CandleProducer:
        return CandleProducer(self)


class CandleProducer:
    """Produces domain records in Kafka transactions (committed or aborted)."""

    def __init__(self, env: CandleTopics):
        self.env = env
        client = avro.registry_client(env.settings)
        self.ser = {c: avro.serializer(client, c) for c in ("candle", "anomaly", "explanation")}
        self.producer = Producer({"bootstrap.servers": env.settings.bootstrap_servers,
                                  "transactional.id": f"serving-test-{uuid.uuid4().hex}",
                                  "linger.ms": 5})
        self.producer.init_transactions(30)

    def _topic(self, contract: str) -> str:
        t = self.env.topics
        return {"candle": t.candles, "anomaly": t.anomalies, "explanation": t.explanations}[
            contract]

    def send(self, records: Iterable[Any], contract: str = "candle", abort: bool = False,
             batch: int = 500) -> None:
        topic = self._topic(contract)
        items = list(records)
        for i in range(0, max(len(items), 1), batch):
            self.producer.begin_transaction()
            for obj in items[i:i + batch]:
                key = f"{obj.exchange}:{obj.symbol}" if hasattr(obj, "symbol") else obj.anomaly_id
                self.producer.produce(topic, key=key.encode(),
                                      value=self.ser[contract](obj, avro.value_context(topic)))
            self.producer.flush(30)
            if abort:
                self.producer.abort_transaction(30)
            else:
                self.producer.commit_transaction(30)


@pytest.fixture
def candle_topics(kafka_stack: Any) -> Iterator[CandleTopics]:
    """Fresh candles/anomalies/explanations topics (3 partitions) with their subjects."""
    settings: StackSettings = kafka_stack.settings
    suffix = uuid.uuid4().hex[:10]
    topics = Topics(candles=f"test.candles.{suffix}", anomalies=f"test.anomalies.{suffix}",
                    explanations=f"test.explanations.{suffix}")
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    names = [topics.candles, topics.anomalies, topics.explanations]
    for fut in admin.create_topics([NewTopic(n, 3, 1) for n in names]).values():
        fut.result(30)
    avro.register_contracts(avro.registry_client(settings), {
        topics.candles: "candle", topics.anomalies: "anomaly",
        topics.explanations: "explanation"})
    yield CandleTopics(settings, topics, 3)
    for fut in admin.delete_topics(names).values():
        with contextlib.suppress(Exception):  # best-effort cleanup
            fut.result(30)


def serving_settings(**overrides: Any) -> ServingSettings:
    base = {"tokens": TOKEN, "metrics_port": 0, "heartbeat_seconds": 1.0}
    base.update(overrides)
    return ServingSettings(**base)


@pytest.fixture
async def server_factory(candle_topics: CandleTopics) -> AsyncIterator[Any]:
    """Start servers on the test topics; all are stopped at the end of the test."""
    started: list[ServingServer] = []

    async def start(port: int = 0, history: Any = None, **overrides: Any
                    ) -> tuple[ServingServer, int]:
        srv, bound = await create_server(
            f"127.0.0.1:{port}", serving=serving_settings(**overrides),
            stack=candle_topics.settings, topics=candle_topics.topics, history=history)
        await srv.start()
        started.append(srv)
        return srv, bound

    yield start
    for srv in started:
        await srv.stop(0)
