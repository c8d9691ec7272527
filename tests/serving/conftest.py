"""Fixtures of the serving tests: the shared stack, unique topics, a producer of real
candles (transactional, like Flink's exactly-once sink), a server on port 0, Trino."""

from __future__ import annotations

import contextlib
import operator
import os
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from adapters import avro
from candleflow.config import StackSettings, Topics
from candleflow.domain import CANDLE_DECIMAL_FIELDS
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
        self.producer = Producer(
            {
                "bootstrap.servers": env.settings.bootstrap_servers,
                "transactional.id": f"serving-test-{uuid.uuid4().hex}",
                "linger.ms": 5,
            }
        )
        self.producer.init_transactions(30)

    def _topic(self, contract: str) -> str:
        t = self.env.topics
        return {"candle": t.candles, "anomaly": t.anomalies, "explanation": t.explanations}[
            contract
        ]

    def send(
        self,
        records: Iterable[Any],
        contract: str = "candle",
        abort: bool = False,
        batch: int = 500,
    ) -> None:
        topic = self._topic(contract)
        items = list(records)
        for i in range(0, max(len(items), 1), batch):
            self.producer.begin_transaction()
            for obj in items[i : i + batch]:
                key = f"{obj.exchange}:{obj.symbol}" if hasattr(obj, "symbol") else obj.anomaly_id
                self.producer.produce(
                    topic,
                    key=key.encode(),
                    value=self.ser[contract](obj, avro.value_context(topic)),
                )
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
    topics = Topics(
        candles=f"test.candles.{suffix}",
        anomalies=f"test.anomalies.{suffix}",
        explanations=f"test.explanations.{suffix}",
    )
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    names = [topics.candles, topics.anomalies, topics.explanations]
    for fut in admin.create_topics([NewTopic(n, 3, 1) for n in names]).values():
        fut.result(30)
    avro.register_contracts(
        avro.registry_client(settings),
        {topics.candles: "candle", topics.anomalies: "anomaly", topics.explanations: "explanation"},
    )
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

    async def start(
        port: int = 0, history: Any = None, **overrides: Any
    ) -> tuple[ServingServer, int]:
        srv, bound = await create_server(
            f"127.0.0.1:{port}",
            serving=serving_settings(**overrides),
            stack=candle_topics.settings,
            topics=candle_topics.topics,
            history=history,
        )
        await srv.start()
        started.append(srv)
        return srv, bound

    yield start
    for srv in started:
        await srv.stop(0)


# --- Iceberg tables and Trino ---------------------------------------------------------------


@dataclass
class CandleTable:
    settings: StackSettings
    tables: Any  # serving.history.Tables
    snapshots: list[int]  # [revision-0 snapshot, ..., after the correction]
    first_commit_us: int  # a time between the first snapshot and the correction
    before: list[Any]  # candles as of the first snapshot
    after: list[Any]  # candles after the correction


def candle_arrow(candles: list[Any]) -> Any:
    import pyarrow as pa

    dec = pa.decimal128(38, 18)
    ts = pa.timestamp("us")
    cols = {
        "exchange": (pa.string(), lambda c: c.exchange),
        "symbol": (pa.string(), lambda c: c.symbol),
        "interval": (pa.string(), lambda c: c.interval),
        "window_start": (ts, lambda c: c.window_start_us),
        "window_end": (ts, lambda c: c.window_end_us),
        **{n: (dec, operator.attrgetter(n)) for n in CANDLE_DECIMAL_FIELDS},
        "trade_count": (pa.int64(), lambda c: c.trade_count),
        "first_trade_id": (pa.int64(), lambda c: c.first_trade_id),
        "last_trade_id": (pa.int64(), lambda c: c.last_trade_id),
        "revision": (pa.int32(), lambda c: c.revision),
        "is_empty": (pa.bool_(), lambda c: c.is_empty),
    }
    from candleflow.records import fit_decimal

    arrays, fields = [], []
    for name, (typ, get) in cols.items():
        values = [get(c) for c in candles]
        if typ == dec:
            values = [None if v is None else fit_decimal(v) for v in values]
        arrays.append(pa.array(values, typ))
        fields.append(
            pa.field(name, typ, nullable=name in ("vwap", "first_trade_id", "last_trade_id"))
        )
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


@pytest.fixture(scope="session")
def candle_table(kafka_stack: Any) -> Iterator[CandleTable]:
    """A silver.candles-shaped table in its own namespace, written in two commits: the
    real candles at revision 0, then corrections of ten of them (revision 1)."""
    import time

    from pyiceberg.expressions import And, EqualTo, GreaterThanOrEqual, LessThan

    from adapters.catalog import catalog
    from serving.history import Tables
    from tests.serving import data

    settings: StackSettings = kafka_stack.settings
    cat = catalog(settings)
    ns = f"test_serving_{uuid.uuid4().hex[:8]}"
    cat.create_namespace(ns)
    before = list(data.spot_candles()[:120]) + list(data.perp_candles()[:60])
    table = cat.create_table(f"{ns}.candles", schema=candle_arrow(before[:1]).schema)
    table.append(candle_arrow(before))
    first = table.current_snapshot().snapshot_id
    time.sleep(0.05)
    between_us = time.time_ns() // 1000
    time.sleep(0.05)
    fixed = [data.corrected(c) for c in before[10:20]]
    lo, hi = fixed[0].window_start_us, fixed[-1].window_end_us
    table.overwrite(
        candle_arrow(fixed),
        overwrite_filter=And(
            EqualTo("symbol", "BTC-USDT"),
            GreaterThanOrEqual("window_start", lo),
            LessThan("window_start", hi),
        ),
    )
    table = cat.load_table(f"{ns}.candles")
    snaps = [s.snapshot_id for s in table.snapshots()]
    after = before[:10] + fixed + before[20:]
    yield CandleTable(
        settings,
        Tables(
            candles=f"{ns}.candles", anomalies=f"{ns}.anomalies", explanations=f"{ns}.explanations"
        ),
        [first] + [s for s in snaps if s != first],
        between_us,
        before,
        after,
    )
    with contextlib.suppress(Exception):
        cat.drop_table(f"{ns}.candles")
        cat.drop_namespace(ns)


@pytest.fixture(scope="session")
def trino_server(kafka_stack: Any) -> Iterator[StackSettings]:
    """Trino on the stack's catalog, started once per session (reused if already up)."""
    from devstack import trino

    # Its own port, so a developer's Trino (on another catalog) is never mistaken for it.
    port = int(os.environ.get("CANDLEFLOW_TEST_TRINO_PORT", "28080"))
    settings: StackSettings = kafka_stack.settings.model_copy(update={"trino_port": port})
    pid = trino.start(settings)
    yield settings
    if pid:
        trino.stop(settings)
