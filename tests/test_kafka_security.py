"""Kafka client security from CANDLEFLOW_KAFKA_*: exact librdkafka properties, accepted by
librdkafka itself, used by the clients, and secrets kept out of descriptions."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, Producer
from pydantic import SecretStr

from candleflow.config import StackSettings
from candleflow.kafka_security import (
    FLINK_KAFKA_SHADED,
    LOGIN_MODULES,
    OAUTHBEARER_LOGIN_HANDLER,
    KafkaSecurity,
    client_config,
    flink_kafka_options,
    java_client_properties,
    redacted,
    security_config,
)

SECRET = "pw-" + "x7" * 4  # built at runtime: not a literal secret for scanners


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("CANDLEFLOW_KAFKA_") and name != "CANDLEFLOW_KAFKA_BOOTSTRAP":
            monkeypatch.delenv(name)


def test_default_is_plaintext_and_nothing_else():
    assert security_config() == {"security.protocol": "PLAINTEXT"}
    assert client_config("k:9092", **{"acks": "all"}) == {
        "bootstrap.servers": "k:9092",
        "security.protocol": "PLAINTEXT",
        "acks": "all",
    }


def test_sasl_ssl_scram_from_env(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CANDLEFLOW_KAFKA_SECURITY_PROTOCOL", "sasl_ssl")
    monkeypatch.setenv("CANDLEFLOW_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("CANDLEFLOW_KAFKA_SASL_USERNAME", "svc-serving")
    monkeypatch.setenv("CANDLEFLOW_KAFKA_SASL_PASSWORD", SECRET)
    monkeypatch.setenv("CANDLEFLOW_KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM", "https")
    assert security_config() == {
        "security.protocol": "SASL_SSL",
        "ssl.endpoint.identification.algorithm": "https",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "svc-serving",
        "sasl.password": SECRET,
    }
    # librdkafka accepts every property (an unknown key or value raises here).
    Producer(client_config("127.0.0.1:1")).flush(0)


def test_oauthbearer_oidc(monkeypatch: pytest.MonkeyPatch):
    sec = KafkaSecurity(
        security_protocol="SASL_SSL",
        sasl_mechanism="OAUTHBEARER",
        sasl_oauthbearer_token_endpoint_url="https://idp.example/token",
        sasl_oauthbearer_client_id="candleflow",
        sasl_oauthbearer_client_secret=SECRET,
    )
    assert security_config(sec) == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "OAUTHBEARER",
        "sasl.oauthbearer.method": "oidc",
        "sasl.oauthbearer.token.endpoint.url": "https://idp.example/token",
        "sasl.oauthbearer.client.id": "candleflow",
        "sasl.oauthbearer.client.secret": SECRET,
    }
    Consumer(client_config("127.0.0.1:1", sec, **{"group.id": "g"})).close()


def test_ssl_only_keys_are_ignored_for_plaintext():
    sec = KafkaSecurity(ssl_ca_location="/etc/ca.pem", sasl_mechanism="PLAIN")
    assert security_config(sec) == {"security.protocol": "PLAINTEXT"}
    sec = KafkaSecurity(security_protocol="SSL", ssl_ca_location="/etc/ca.pem")
    assert security_config(sec) == {"security.protocol": "SSL", "ssl.ca.location": "/etc/ca.pem"}


@pytest.mark.parametrize(
    ("fields", "names"),
    [
        ({"security_protocol": "SASL"}, "CANDLEFLOW_KAFKA_SECURITY_PROTOCOL"),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "GSSAPI"}, "SASL_MECHANISM"),
        (
            {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": "u"},
            "SASL_PASSWORD",
        ),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "OAUTHBEARER"}, "TOKEN_ENDPOINT"),
    ],
)
def test_misconfiguration_names_the_setting(fields, names):
    with pytest.raises(ValueError, match=names):
        security_config(KafkaSecurity(**fields))


def test_secrets_stay_out_of_descriptions():
    sec = KafkaSecurity(
        security_protocol="SASL_SSL",
        sasl_mechanism="PLAIN",
        sasl_username="u",
        sasl_password=SECRET,
        sasl_oauthbearer_client_secret=SECRET,
    )
    assert SECRET not in repr(sec) and SECRET not in str(sec.describe())
    assert sec.describe() == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "PLAIN",
        "sasl.username": "u",
    }


def test_every_client_config_carries_the_security(monkeypatch: pytest.MonkeyPatch):
    from serving.kafka_io import consumer_config

    monkeypatch.setenv("CANDLEFLOW_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("CANDLEFLOW_KAFKA_SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("CANDLEFLOW_KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("CANDLEFLOW_KAFKA_SASL_PASSWORD", SECRET)
    stack = StackSettings(kafka_bootstrap="kafka.svc:9092")
    want = {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "PLAIN",
        "sasl.username": "svc",
        "sasl.password": SECRET,
    }
    for conf in (
        stack.kafka_config(**{"group.id": "g"}),
        consumer_config("kafka.svc:9092", **{"fetch.wait.max.ms": 10}),
    ):
        assert {k: conf[k] for k in want} == want
        assert conf["bootstrap.servers"] == "kafka.svc:9092"
    assert consumer_config("b:1", **{"fetch.wait.max.ms": 10})["fetch.wait.max.ms"] == 10
    assert consumer_config("b:1")["isolation.level"] == "read_committed"


# --- the Java client's properties (every Kafka table of the Flink jobs) --------------------

SHADED = "org.apache.flink.kafka.shaded.org.apache.kafka.common.security."


def test_java_plaintext_is_only_the_protocol():
    assert java_client_properties() == {"security.protocol": "PLAINTEXT"}
    assert flink_kafka_options() == {"properties.security.protocol": "PLAINTEXT"}


@pytest.mark.parametrize(
    ("mechanism", "module"),
    [
        ("PLAIN", "plain.PlainLoginModule"),
        ("SCRAM-SHA-256", "scram.ScramLoginModule"),
        ("SCRAM-SHA-512", "scram.ScramLoginModule"),
    ],
)
def test_java_sasl_password_mechanisms(monkeypatch: pytest.MonkeyPatch, mechanism, module):
    monkeypatch.setenv("CANDLEFLOW_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("CANDLEFLOW_KAFKA_SASL_MECHANISM", mechanism.lower())
    monkeypatch.setenv("CANDLEFLOW_KAFKA_SASL_USERNAME", "svc-jobs")
    monkeypatch.setenv("CANDLEFLOW_KAFKA_SASL_PASSWORD", SECRET)
    monkeypatch.setenv("CANDLEFLOW_KAFKA_SSL_CA_LOCATION", "/etc/kafka/ca.pem")
    assert flink_kafka_options() == {
        "properties.security.protocol": "SASL_SSL",
        "properties.ssl.truststore.type": "PEM",
        "properties.ssl.truststore.location": "/etc/kafka/ca.pem",
        "properties.sasl.mechanism": mechanism,
        "properties.sasl.jaas.config": (
            f'{SHADED}{module} required username="svc-jobs" password="{SECRET}";'
        ),
    }


def test_java_jaas_values_are_quoted():
    sec = KafkaSecurity(
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_username="u",
        sasl_password='a"b\\c; d',
    )
    jaas = java_client_properties(sec, class_prefix="")["sasl.jaas.config"]
    module = "org.apache.kafka.common.security.plain.PlainLoginModule"
    assert jaas == f'{module} required username="u" password="a\\"b\\\\c; d";'
    with pytest.raises(ValueError, match="line break"):
        java_client_properties(sec.model_copy(update={"sasl_password": SecretStr("a\nb")}))


def test_java_oauthbearer_client_credentials():
    sec = KafkaSecurity(
        security_protocol="SASL_SSL",
        sasl_mechanism="OAUTHBEARER",
        sasl_oauthbearer_token_endpoint_url="https://idp.example/token",
        sasl_oauthbearer_client_id="candleflow",
        sasl_oauthbearer_client_secret=SECRET,
        sasl_oauthbearer_scope="kafka",
    )
    assert java_client_properties(sec) == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "OAUTHBEARER",
        "sasl.login.callback.handler.class": SHADED + "oauthbearer.OAuthBearerLoginCallbackHandler",
        "sasl.oauthbearer.token.endpoint.url": "https://idp.example/token",
        "sasl.jaas.config": (
            f"{SHADED}oauthbearer.OAuthBearerLoginModule required "
            f'clientId="candleflow" clientSecret="{SECRET}" scope="kafka";'
        ),
    }


def test_java_mtls_and_hostname_check():
    sec = KafkaSecurity(
        security_protocol="SSL",
        ssl_certificate_location="/etc/kafka/client.pem",
        ssl_key_location="/etc/kafka/client.pem",
        ssl_key_password=SECRET,
        ssl_endpoint_identification_algorithm="none",
    )
    assert java_client_properties(sec) == {
        "security.protocol": "SSL",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": "/etc/kafka/client.pem",
        "ssl.key.password": SECRET,
        "ssl.endpoint.identification.algorithm": "",
    }
    two_files = sec.model_copy(update={"ssl_key_location": "/etc/kafka/client.key"})
    with pytest.raises(ValueError, match="same file"):
        java_client_properties(two_files)


def test_java_properties_check_like_librdkafka():
    with pytest.raises(ValueError, match="SASL_PASSWORD"):
        flink_kafka_options(KafkaSecurity(security_protocol="SASL_SSL", sasl_mechanism="PLAIN"))


def test_login_classes_exist_in_the_shipped_kafka_connector():
    """The JAAS and handler class names are the shaded ones in flink-sql-connector-kafka."""
    import zipfile

    from jobs.flink_env import connector_jars

    jars = [p for p in connector_jars() if p.name.startswith("flink-sql-connector-kafka-")]
    if not jars:
        pytest.skip("Flink connector jars missing: run scripts/setup_jars.sh")
    names = set(zipfile.ZipFile(jars[0]).namelist())
    for cls in [*set(LOGIN_MODULES.values()), OAUTHBEARER_LOGIN_HANDLER]:
        assert (FLINK_KAFKA_SHADED + cls).replace(".", "/") + ".class" in names, cls


def test_redacted_hides_what_flink_hides():
    sec = KafkaSecurity(
        security_protocol="SASL_SSL",
        sasl_mechanism="PLAIN",
        sasl_username="u",
        sasl_password=SECRET,
    )
    shown = redacted(flink_kafka_options(sec))
    assert SECRET not in str(shown)
    assert shown["properties.sasl.jaas.config"] == "******"
    assert shown["properties.sasl.mechanism"] == "PLAIN"


def test_every_flink_kafka_table_carries_the_security(monkeypatch: pytest.MonkeyPatch):
    """Sources and exactly-once sinks of both jobs, as their production configs build them
    from the environment; the DDL holds the JAAS config, the builders' repr does not."""
    from candleflow.config import CandleSettings, Topics
    from jobs import anomalies, candles

    monkeypatch.setenv("CANDLEFLOW_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("CANDLEFLOW_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("CANDLEFLOW_KAFKA_SASL_USERNAME", "svc-jobs")
    monkeypatch.setenv("CANDLEFLOW_KAFKA_SASL_PASSWORD", SECRET)
    stack = StackSettings(kafka_bootstrap="kafka.svc:9092", registry="http://r:8080")
    job = candles.CandleJobSettings(iceberg=False)
    cc = candles.production_config(stack, Topics(), CandleSettings(), job)
    ac = anomalies.production_config(stack, Topics(), iceberg=False)
    ddls = [
        cc.source.ddl("src"),
        *[s.ddl("sink", []) for s in cc.sinks.candles + cc.sinks.late],  # type: ignore[union-attr]
        ac.source.ddl("src"),
        *[s.ddl("sink") for s in ac.sinks],  # type: ignore[union-attr]
    ]
    assert len(ddls) == 5
    want = flink_kafka_options()
    for ddl in ddls:
        assert "'connector' = 'kafka'" in ddl
        for key, value in want.items():
            assert f"'{key}' = '{value}'" in ddl, (key, ddl)
    builders = [cc.source, *cc.sinks.candles, *cc.sinks.late, ac.source, *ac.sinks]
    assert all(SECRET not in repr(b) for b in builders)
