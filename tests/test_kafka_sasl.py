"""The Python Kafka clients against the test broker's SASL_PLAINTEXT listener, configured
only through CANDLEFLOW_KAFKA_* (as the chart configures the pods): admin, idempotent
producer and read_committed consumer work with the right credentials, and the wrong
password or no SASL at all is refused with the broker's authentication error."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from adapters import topics
from candleflow.config import StackSettings
from candleflow.kafka_security import KafkaSecurity, client_config
from devstack.stack import SASL_USERS, Stack
from serving.kafka_io import consumer_config

pytestmark = pytest.mark.integration

MECHANISMS = list(SASL_USERS)


def _env(monkeypatch: pytest.MonkeyPatch, sec: KafkaSecurity) -> None:
    """Set CANDLEFLOW_KAFKA_* exactly as a pod gets them (ConfigMap + Secret)."""
    monkeypatch.setenv("CANDLEFLOW_KAFKA_SECURITY_PROTOCOL", sec.security_protocol)
    monkeypatch.setenv("CANDLEFLOW_KAFKA_SASL_MECHANISM", sec.sasl_mechanism)
    monkeypatch.setenv("CANDLEFLOW_KAFKA_SASL_USERNAME", sec.sasl_username)
    monkeypatch.setenv("CANDLEFLOW_KAFKA_SASL_PASSWORD", sec.sasl_password.get_secret_value())


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_clients_work_through_the_sasl_listener(
    sasl_stack: Stack,
    unique_topic: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    mechanism: str,
) -> None:
    _env(monkeypatch, sasl_stack.sasl_security(mechanism))
    bootstrap = sasl_stack.settings.sasl_bootstrap_servers
    topic = unique_topic("sasl", partitions=2)
    # admin (topics.admin reads the environment)
    admin = topics.admin(bootstrap)
    assert topic in admin.list_topics(timeout=10).topics
    # idempotent producer from the shared settings (StackSettings.kafka_config)
    settings = StackSettings(kafka_bootstrap=bootstrap)
    conf = settings.kafka_config(**{"enable.idempotence": True, "acks": "all"})
    assert conf["security.protocol"] == "SASL_PLAINTEXT" and conf["sasl.mechanism"] == mechanism
    round_trip(conf, bootstrap, topic)


def round_trip(conf: dict, bootstrap: str, topic: str) -> None:
    """20 messages through an idempotent producer with `conf` and back through the serving
    layer's read_committed consumer (its settings from the environment)."""
    producer = Producer(conf)
    for i in range(20):
        producer.produce(topic, key=f"k{i % 3}".encode(), value=f"v{i}".encode())
    assert producer.flush(30) == 0
    consumer = Consumer(consumer_config(bootstrap, **{"group.id": f"g-{uuid.uuid4().hex}"}))
    consumer.subscribe([topic])
    got: list[bytes] = []
    deadline = time.monotonic() + 30
    try:
        while len(got) < 20 and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None:
                assert msg.error() is None, msg.error()
                got.append(msg.value())
    finally:
        consumer.close()
    assert sorted(got) == sorted(f"v{i}".encode() for i in range(20))


def _refusal(conf: dict) -> list[KafkaError]:
    """Errors the client reports while trying to reach the cluster (list_topics must fail)."""
    errors: list[KafkaError] = []
    admin = AdminClient({**conf, "error_cb": errors.append, "log_level": 0})
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=5)
    admin.poll(1)
    return errors


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_a_wrong_password_is_refused_as_an_authentication_error(
    sasl_stack: Stack, mechanism: str
) -> None:
    sec = sasl_stack.sasl_security(mechanism, password="not-" + "the-password")
    errors = _refusal(client_config(sasl_stack.settings.sasl_bootstrap_servers, sec))
    auth = [e for e in errors if e.code() == KafkaError._AUTHENTICATION]
    assert auth, errors
    assert "Authentication failed" in auth[0].str(), auth[0].str()
    # librdkafka's message names the mechanism's failure, never the password
    assert "the-password" not in " ".join(e.str() for e in errors)


def test_plaintext_client_gets_nothing_from_the_sasl_listener(sasl_stack: Stack) -> None:
    errors = _refusal(client_config(sasl_stack.settings.sasl_bootstrap_servers, KafkaSecurity()))
    assert errors, "a PLAINTEXT client was not refused"
    assert all(e.code() != KafkaError.NO_ERROR for e in errors)
