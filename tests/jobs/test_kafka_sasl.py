"""The Flink jobs' Kafka tables through the broker's SASL_PLAINTEXT listener, for real.

One in-process job (MiniCluster, checkpoints on, exactly-once sinks) runs:
- the anomalies job as production builds it (`production_config`), its security taken from
  CANDLEFLOW_KAFKA_* (SCRAM-SHA-256): candles.v1 source -> anomalies.v1 exactly-once sink;
- the candles job's Kafka builders with an explicit SASL/PLAIN `KafkaSecurity`: the trades
  source (Avro, registry) -> an exactly-once raw sink.
The only bootstrap address given is the SASL listener, which refuses unauthenticated
clients (tests/test_kafka_sasl.py). Read back read_committed: every record exactly once.
Then a table with a broken option shows that Flink's error hides the JAAS config.
"""

from __future__ import annotations

import time
import uuid
from decimal import Decimal

import pytest
from confluent_kafka import Consumer, Producer

from adapters import avro
from candleflow.config import Topics
from candleflow.domain import Side, Trade
from candleflow.kafka_security import KafkaSecurity
from devstack.testing import unique_name
from explainer.service import read_topic_to_end
from jobs.anomalies import build, make_stream_table_env, production_config
from jobs.candle_tables import KafkaSink, KafkaSource
from serving.kafka_io import consumer_config

pytestmark = [pytest.mark.integration, pytest.mark.flink]

T0 = 1_778_198_400_000_000


def _trades(n: int) -> list[Trade]:
    return [
        Trade(
            exchange="binance",
            symbol="BTC-USDT" if i % 2 else "ETH-USDT",
            native_symbol="BTCUSDT" if i % 2 else "ETHUSDT",
            trade_id=1000 + i,
            price=Decimal("100.5") + i,
            quantity=Decimal("0.25"),
            side=Side.BUY,
            event_time_us=T0 + i * 1_000_000,
            ingest_time_us=T0 + i * 1_000_000 + 5,
        )
        for i in range(n)
    ]


def _produce(conf: dict, topic: str, contract: str, registry, items, key) -> None:
    ser = avro.serializer(registry, contract)
    producer = Producer({**conf, "enable.idempotence": True})
    for item in items:
        producer.produce(topic, key=key(item).encode(), value=ser(item, avro.value_context(topic)))
    assert producer.flush(30) == 0


def pod_env(monkeypatch: pytest.MonkeyPatch, sec: KafkaSecurity) -> None:
    """CANDLEFLOW_KAFKA_* as the chart gives them to the job's pods (ConfigMap + Secret).

    Set it again after an in-process job before reading back: PyFlink's loopback Python
    worker does os.environ.update() with the environment of the gateway JVM, which is the
    one of the test that launched the gateway (maybe another listener's, in this process)."""
    for name in (
        "security_protocol",
        "ssl_ca_location",
        "sasl_mechanism",
        "sasl_username",
    ):
        monkeypatch.setenv(f"CANDLEFLOW_KAFKA_{name.upper()}", getattr(sec, name))
    monkeypatch.setenv("CANDLEFLOW_KAFKA_SASL_PASSWORD", sec.sasl_password.get_secret_value())


def _read_raw(bootstrap: str, topic: str, want: int, timeout: float = 30) -> list[tuple]:
    consumer = Consumer(consumer_config(bootstrap, **{"group.id": f"g-{uuid.uuid4().hex}"}))
    consumer.subscribe([topic])
    out: list[tuple] = []
    deadline, quiet_until = time.monotonic() + timeout, None
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                if len(out) >= want:
                    quiet_until = quiet_until or time.monotonic() + 2
                    if time.monotonic() > quiet_until:  # 2 s with nothing more: done
                        break
                continue
            assert msg.error() is None, msg.error()
            out.append((msg.key(), msg.value()))
    finally:
        consumer.close()
    return out


def run_jobs_through(
    s,
    bootstrap: str,
    env_security: KafkaSecurity,
    tables: KafkaSecurity,
    unique_topic,
    monkeypatch: pytest.MonkeyPatch,
    listener: str,
):
    """The anomalies job (security from CANDLEFLOW_KAFKA_*, `env_security`) and the candles
    job's Kafka builders (`tables`) in one in-process job whose only bootstrap address is
    `bootstrap`; asserts every record arrived exactly once. Returns (t_env, trades topic)."""
    from candleflow.anomaly_rules import detect_all
    from tests.anomalies.test_job_local import crafted

    on_listener = s.model_copy(update={"kafka_bootstrap": bootstrap})
    topics = Topics(
        candles=unique_topic("candles", partitions=2), anomalies=unique_topic("anomalies")
    )
    trades_topic, copy_topic = unique_topic("trades", partitions=2), unique_topic("copy")

    registry = avro.registry_client(s)
    stream = crafted()
    _produce(on_listener.kafka_config(), topics.candles, "candle", registry, stream, _market)
    trades = _trades(40)
    _produce(on_listener.kafka_config(), trades_topic, "trade", registry, trades, _market)

    t_env = make_stream_table_env(parallelism=1, checkpoint_interval_ms=1000, stack=s)
    config = production_config(
        on_listener,
        topics,
        bounded=True,
        iceberg=False,
        group_id=unique_name("anomalies"),
        transactional_id_prefix=unique_name("anomalies-tx"),
        startup_mode="earliest-offset",
    )
    stmts = build(t_env, config)
    source = KafkaSource(
        trades_topic,
        bootstrap,
        s.registry_url,
        group_id=unique_name("trades"),
        startup_mode="earliest-offset",
        bounded=True,
        security=tables,
    )
    sink = KafkaSink(
        copy_topic, "trade", bootstrap, s.registry_url, unique_name("copy-tx"), security=tables
    )
    t_env.execute_sql(source.ddl("trades_src"))
    t_env.execute_sql(sink.ddl("trades_copy", []))
    stmts.add_insert_sql(
        "INSERT INTO trades_copy SELECT CONCAT(exchange, ':', symbol), "
        "CAST(CONCAT(CAST(trade_id AS STRING), '@', CAST(price AS STRING)) AS BYTES) "
        "FROM trades_src"
    )
    result = stmts.execute()
    try:
        result.wait(150_000)
    except Exception as exc:
        client = result.get_job_client()
        if client is not None:
            client.cancel()
        raise AssertionError(
            f"the job did not finish in 150 s through the {listener} listener: do its Kafka "
            "tables carry the credentials (and the CA as a PEM truststore: "
            "flink_kafka_options)?"
        ) from exc
    pod_env(monkeypatch, env_security)  # the Python worker may have replaced it (pod_env)

    expected = sorted((a.anomaly_id, a.status) for a in detect_all(stream))
    got = read_topic_to_end(on_listener, topics.anomalies, "anomaly")
    assert sorted((a.anomaly_id, a.status) for a in got) == expected  # none twice, none lost
    copied = _read_raw(bootstrap, copy_topic, len(trades))
    assert sorted(copied) == sorted(
        (_market(t).encode(), f"{t.trade_id}@{t.price:.18f}".encode()) for t in trades
    )
    return t_env, trades_topic


def test_flink_kafka_tables_through_sasl_exactly_once(sasl_stack, unique_topic, monkeypatch):
    s = sasl_stack.settings
    sasl = s.sasl_bootstrap_servers
    scram, plain = sasl_stack.sasl_security("SCRAM-SHA-256"), sasl_stack.sasl_security("PLAIN")
    # The process environment, as the chart gives it to the job's pods: SCRAM.
    pod_env(monkeypatch, scram)
    t_env, trades_topic = run_jobs_through(
        s, sasl, scram, plain, unique_topic, monkeypatch, "SASL_PLAINTEXT"
    )

    # Flink hides the JAAS config (its sensitive-key list has "jaas.config") in the table
    # options it prints when a table cannot be created.
    bad = KafkaSource(trades_topic, sasl, s.registry_url, startup_mode="nowhere", security=plain)
    t_env.execute_sql(bad.ddl("bad_src"))
    with pytest.raises(Exception) as err:  # noqa: PT011 - a Py4J error wrapping Flink's
        t_env.execute_sql("EXPLAIN SELECT * FROM bad_src")
    text = str(err.value)
    assert "Table options are" in text and "'properties.sasl.jaas.config'='******'" in text, text
    assert plain.sasl_password.get_secret_value() not in text


def _market(item) -> str:
    return f"{item.exchange}:{item.symbol}"
