"""The Python Kafka clients against the test broker's SASL_SSL listener (the production
protocol), configured only through CANDLEFLOW_KAFKA_* as the chart configures the pods:

- with the stack's CA (CANDLEFLOW_KAFKA_SSL_CA_LOCATION) and hostname verification on
  (librdkafka's default, and explicitly "https"), admin, idempotent producer and
  read_committed consumer work for both SASL users;
- without the CA (the system store) the TLS handshake is refused, naming the certificate;
- the wrong password over TLS is still an authentication error;
- hostname verification really checks the certificate's subjectAltName: a server whose
  certificate (same kind of CA) lacks the SAN for 127.0.0.1 is refused, one with it is not.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import KafkaError
from pydantic import SecretStr

from adapters import topics
from candleflow.config import StackSettings
from candleflow.kafka_security import KafkaSecurity, client_config
from devstack.stack import SASL_USERS, Stack
from devstack.tls import tls_material
from tests.test_kafka_sasl import _refusal, round_trip

pytestmark = pytest.mark.integration

MECHANISMS = list(SASL_USERS)


def _env(monkeypatch: pytest.MonkeyPatch, sec: KafkaSecurity) -> None:
    """Set CANDLEFLOW_KAFKA_* exactly as a pod gets them (ConfigMap + Secret + CA mount)."""
    monkeypatch.setenv("CANDLEFLOW_KAFKA_SECURITY_PROTOCOL", sec.security_protocol)
    monkeypatch.setenv("CANDLEFLOW_KAFKA_SSL_CA_LOCATION", sec.ssl_ca_location)
    monkeypatch.setenv(
        "CANDLEFLOW_KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM",
        sec.ssl_endpoint_identification_algorithm,
    )
    monkeypatch.setenv("CANDLEFLOW_KAFKA_SASL_MECHANISM", sec.sasl_mechanism)
    monkeypatch.setenv("CANDLEFLOW_KAFKA_SASL_USERNAME", sec.sasl_username)
    monkeypatch.setenv("CANDLEFLOW_KAFKA_SASL_PASSWORD", sec.sasl_password.get_secret_value())


@pytest.mark.parametrize(
    ("mechanism", "endpoint_identification"),
    [("PLAIN", ""), ("SCRAM-SHA-256", ""), ("SCRAM-SHA-256", "https")],
)
def test_clients_work_through_the_sasl_ssl_listener(
    sasl_ssl_stack: Stack,
    unique_topic: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    mechanism: str,
    endpoint_identification: str,
) -> None:
    sec = sasl_ssl_stack.sasl_ssl_security(
        mechanism, endpoint_identification=endpoint_identification
    )
    _env(monkeypatch, sec)
    bootstrap = sasl_ssl_stack.settings.sasl_ssl_bootstrap_servers
    topic = unique_topic("sasl-ssl", partitions=2)
    admin = topics.admin(bootstrap)
    assert topic in admin.list_topics(timeout=10).topics
    settings = StackSettings(kafka_bootstrap=bootstrap)
    conf = settings.kafka_config(**{"enable.idempotence": True, "acks": "all"})
    assert conf["security.protocol"] == "SASL_SSL"
    assert conf["ssl.ca.location"] == str(sasl_ssl_stack.tls_files().ca)
    # Hostname verification is on: librdkafka's default unless "none" is configured.
    assert conf.get("ssl.endpoint.identification.algorithm", "https") == "https"
    round_trip(conf, bootstrap, topic)


def _ssl_errors(errors: list[KafkaError]) -> list[str]:
    return [e.str() for e in errors if e.code() == KafkaError._SSL]


def test_without_the_ca_the_handshake_is_refused(sasl_ssl_stack: Stack) -> None:
    sec = sasl_ssl_stack.sasl_ssl_security("PLAIN", ca=False)
    conf = client_config(sasl_ssl_stack.settings.sasl_ssl_bootstrap_servers, sec)
    assert "ssl.ca.location" not in conf  # the system store, which does not know our CA
    errors = _refusal(conf)
    failed = _ssl_errors(errors)
    assert failed, [e.str() for e in errors]
    assert "SSL handshake failed" in failed[0] and "certificate verify failed" in failed[0], failed


def test_a_wrong_password_over_tls_is_an_authentication_error(sasl_ssl_stack: Stack) -> None:
    sec = sasl_ssl_stack.sasl_ssl_security("SCRAM-SHA-256", password="not-" + "the-password")
    errors = _refusal(client_config(sasl_ssl_stack.settings.sasl_ssl_bootstrap_servers, sec))
    auth = [e for e in errors if e.code() == KafkaError._AUTHENTICATION]
    assert auth, [e.str() for e in errors]  # the TLS handshake itself succeeded
    assert not _ssl_errors(errors)
    assert "the-password" not in " ".join(e.str() for e in errors)


def test_plaintext_and_sasl_plaintext_clients_get_nothing_from_the_tls_listener(
    sasl_ssl_stack: Stack,
) -> None:
    bootstrap = sasl_ssl_stack.settings.sasl_ssl_bootstrap_servers
    for sec in (KafkaSecurity(), sasl_ssl_stack.sasl_security("PLAIN")):
        errors = _refusal(client_config(bootstrap, sec))
        assert errors, f"a {sec.security_protocol} client was not refused"


# --- hostname verification against the certificate's subjectAltName ----------------------


@contextlib.contextmanager
def _tls_server(tmp_path: Path, san: bool) -> Iterator[tuple[int, Path]]:
    """A bare TLS server on 127.0.0.1 (it completes handshakes, then hangs up) with a fresh
    CA's certificate, with or without the SAN; yields (port, CA file)."""
    ca_pem, server_pem = tls_material(["127.0.0.1"], san=san)
    ca, server = tmp_path / f"ca-{san}.pem", tmp_path / f"server-{san}.pem"
    ca.write_bytes(ca_pem)
    server.write_bytes(server_pem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(server)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    handshakes: list[bool] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                try:
                    with ctx.wrap_socket(conn, server_side=True) as tls:
                        handshakes.append(True)
                        tls.settimeout(0.5)
                        with contextlib.suppress(OSError):
                            tls.recv(1024)
                except (ssl.SSLError, OSError):
                    handshakes.append(False)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], ca
    finally:
        stop.set()
        thread.join(5)
        listener.close()


@pytest.mark.parametrize(
    ("san", "endpoint_identification", "refused"),
    [(True, "", False), (False, "", True), (False, "https", True), (False, "none", False)],
)
def test_hostname_verification_checks_the_san(
    tmp_path: Path, san: bool, endpoint_identification: str, refused: bool
) -> None:
    with _tls_server(tmp_path, san) as (port, ca):
        sec = KafkaSecurity(
            security_protocol="SASL_SSL",
            ssl_ca_location=str(ca),
            ssl_endpoint_identification_algorithm=endpoint_identification,
            sasl_mechanism="PLAIN",
            sasl_username="u",
            sasl_password=SecretStr("p"),
        )
        errors = _refusal(client_config(f"127.0.0.1:{port}", sec))  # not a Kafka broker
    failed = _ssl_errors(errors)
    if refused:
        # The chain is trusted (the CA is given): only the host check can refuse it.
        assert failed, [e.str() for e in errors]
        assert "certificate verify failed" in failed[0], failed
    else:
        # The handshake succeeds; what fails afterwards is the Kafka protocol.
        assert not failed, failed
        assert errors, "a bare TLS server answered like a Kafka broker?"
