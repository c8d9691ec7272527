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

from candleflow.kafka_security import flink_kafka_options, java_client_properties
from tests.jobs.test_kafka_sasl import pod_env, run_jobs_through

pytestmark = [pytest.mark.integration, pytest.mark.flink]


def test_flink_kafka_tables_through_sasl_ssl_exactly_once(
    sasl_ssl_stack, unique_topic, monkeypatch
):
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

    run_jobs_through(s, tls, scram, plain, unique_topic, monkeypatch, "SASL_SSL")
