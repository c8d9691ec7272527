"""The Flink jobs' Kafka tables through the broker's SASL_SSL listener: production's path
(SASL over TLS, the CA as a PEM truststore of the Java client, hostname verification on).

The shape of tests/jobs/test_kafka_sasl.py, over TLS. One in-process job (MiniCluster,
checkpoints on, exactly-once sinks) runs:
- the anomalies job as production builds it (`production_config`), its security taken from
  CANDLEFLOW_KAFKA_* (SASL_SSL, SCRAM-SHA-256, the stack's CA in
  CANDLEFLOW_KAFKA_SSL_CA_LOCATION): candles.v1 source -> anomalies.v1 exactly-once sink;
- the candles job's Kafka builders with an explicit SASL_SSL/PLAIN `KafkaSecurity`: the
  trades source (Avro, registry) -> an exactly-once raw sink.
The only bootstrap address given is the TLS listener, whose certificate no JVM trusts by
default (tests/test_kafka_sasl_ssl.py: not even librdkafka's system store): without the
`ssl.truststore.*` options of `flink_kafka_options` the job cannot reach Kafka at all.
Read back read_committed: every record exactly once.
"""

from __future__ import annotations

import pytest

from candleflow import avro
from candleflow.config import Topics
from candleflow.kafka_security import flink_kafka_options, java_client_properties
from candleflow.testing import unique_name
from jobs.anomalies import build, make_stream_table_env, production_config
from jobs.candle_tables import KafkaSink, KafkaSource
from serving.explainer.service import read_topic_to_end
from tests.jobs.test_kafka_sasl import _market, _produce, _read_raw, _trades, pod_env

pytestmark = [pytest.mark.integration, pytest.mark.flink]


def test_flink_kafka_tables_through_sasl_ssl_exactly_once(
    sasl_ssl_stack, unique_topic, monkeypatch
):
    from candleflow.anomaly_rules import detect_all
    from tests.anomalies.test_job_local import crafted

    s = sasl_ssl_stack.settings
    tls = s.sasl_ssl_bootstrap_servers
    ca = str(sasl_ssl_stack.tls_files().ca)
    scram = sasl_ssl_stack.sasl_ssl_security("SCRAM-SHA-256")
    plain = sasl_ssl_stack.sasl_ssl_security("PLAIN")
    # The process environment, as the chart gives it to the job's pods: SCRAM over TLS,
    # the CA mounted from a Secret; hostname verification left at the clients' default.
    pod_env(monkeypatch, scram)
    # What the Kafka tables get: the CA as a PEM truststore, hostname checks not disabled.
    for options in (flink_kafka_options(), flink_kafka_options(plain)):
        assert options["properties.security.protocol"] == "SASL_SSL"
        assert options["properties.ssl.truststore.type"] == "PEM"
        assert options["properties.ssl.truststore.location"] == ca
        assert "properties.ssl.endpoint.identification.algorithm" not in options
    assert "ssl.truststore.location" in java_client_properties(scram)

    on_tls = s.model_copy(update={"kafka_bootstrap": tls})
    topics = Topics(
        candles=unique_topic("candles", partitions=2), anomalies=unique_topic("anomalies")
    )
    trades_topic, copy_topic = unique_topic("trades", partitions=2), unique_topic("copy")

    registry = avro.registry_client(s)
    stream = crafted()
    _produce(on_tls.kafka_config(), topics.candles, "candle", registry, stream, _market)
    trades = _trades(40)
    _produce(on_tls.kafka_config(), trades_topic, "trade", registry, trades, _market)

    t_env = make_stream_table_env(parallelism=1, checkpoint_interval_ms=1000, stack=s)
    config = production_config(
        on_tls,
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
        tls,
        s.registry_url,
        group_id=unique_name("trades"),
        startup_mode="earliest-offset",
        bounded=True,
        security=plain,
    )
    sink = KafkaSink(
        copy_topic, "trade", tls, s.registry_url, unique_name("copy-tx"), security=plain
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
            "the job did not finish in 150 s through the SASL_SSL listener: do its Kafka "
            "tables carry the credentials and the CA as a PEM truststore (flink_kafka_options)?"
        ) from exc
    pod_env(monkeypatch, scram)  # the Python worker may have replaced it (pod_env)

    expected = sorted((a.anomaly_id, a.status) for a in detect_all(stream))
    got = read_topic_to_end(on_tls, topics.anomalies, "anomaly")
    assert sorted((a.anomaly_id, a.status) for a in got) == expected  # none twice, none lost
    copied = _read_raw(tls, copy_topic, len(trades))
    assert sorted(copied) == sorted(
        (_market(t).encode(), f"{t.trade_id}@{t.price:.18f}".encode()) for t in trades
    )
