"""The anomalies job on the real stack: candles.v1 (Avro, registry) -> anomalies.v1
(exactly-once, read_committed) + Iceberg gold.anomalies (v2 upsert). The same candles twice
in the topic give the same ids and no duplicates in either sink."""

from __future__ import annotations

from collections import Counter

import pytest
from confluent_kafka import Producer
from pyflink.table import EnvironmentSettings, TableEnvironment

from adapters import avro
from adapters.catalog import flink_catalog_ddl
from candleflow.config import Topics
from devstack.testing import unique_name
from explainer.service import read_topic_to_end
from jobs.anomalies import build, make_stream_table_env, production_config
from jobs.flink_env import connector_jars
from jobs.operator_uids import execute
from tests.anomalies.test_job_local import crafted

pytestmark = [pytest.mark.integration, pytest.mark.flink]


def produce_candles(settings, topic, candles):
    ser = avro.serializer(avro.registry_client(settings), "candle")
    p = Producer({"bootstrap.servers": settings.bootstrap_servers, "enable.idempotence": True})
    for c in candles:
        p.produce(
            topic, key=f"{c.exchange}:{c.symbol}".encode(), value=ser(c, avro.value_context(topic))
        )
    assert p.flush(30) == 0


def gold_rows(settings, namespace):
    """Read gold.anomalies with Flink's Iceberg source (it applies the equality deletes)."""
    t_env = TableEnvironment.create(EnvironmentSettings.in_batch_mode())
    jars = ";".join(p.as_uri() for p in connector_jars(settings))
    t_env.get_config().set("pipeline.jars", jars)
    t_env.execute_sql(flink_catalog_ddl(settings))
    q = f"SELECT anomaly_id, status, rule FROM `{settings.catalog_name}`.`{namespace}`.`anomalies`"
    with t_env.execute_sql(q).collect() as rows:
        return [(r[0], r[1], r[2]) for r in rows]


def test_job_on_kafka_and_iceberg_twice_the_same_candles(stack, unique_topic, unique_namespace):
    from candleflow.anomaly_rules import active_after, detect_all

    s = stack.settings
    topics = Topics(
        candles=unique_topic("candles", partitions=3), anomalies=unique_topic("anomalies")
    )
    stream = crafted()
    produce_candles(s, topics.candles, stream + stream)  # a replay: every candle twice
    expected = sorted((a.anomaly_id, a.status) for a in detect_all(stream))

    t_env = make_stream_table_env(parallelism=2, checkpoint_interval_ms=1000, stack=s)
    config = production_config(
        s,
        topics,
        bounded=True,
        iceberg_database=unique_namespace,
        group_id=unique_name("anomalies"),
        transactional_id_prefix=unique_name("anomalies-tx"),
        startup_mode="earliest-offset",
    )
    execute(t_env, build(t_env, config)).wait()

    got = read_topic_to_end(s, topics.anomalies, "anomaly")
    pairs = [(a.anomaly_id, a.status) for a in got]
    assert Counter(pairs).most_common(1)[0][1] == 1, "a duplicate in anomalies.v1"
    assert sorted(pairs) == expected
    final = active_after(detect_all(stream))
    gold = gold_rows(s, unique_namespace)
    assert len(gold) == len({i for i, _ in expected}), "one row per anomaly_id"
    assert sorted((i, st) for i, st, _ in gold) == sorted(
        (i, "ACTIVE" if i in final else "RETRACTED") for i in {i for i, _ in expected}
    )
