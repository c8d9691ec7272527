"""librdkafka client settings shared by every Python Kafka client (CANDLEFLOW_KAFKA_*).

The chart's ConfigMap sets CANDLEFLOW_KAFKA_SECURITY_PROTOCOL; SASL credentials come from
Secrets as env (CANDLEFLOW_KAFKA_SASL_PASSWORD, ..._OAUTHBEARER_CLIENT_SECRET). The
returned dicts hold secrets: hand them to confluent-kafka, never log them (use
`describe()` for a log line).
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")


class KafkaSecurity(BaseSettings):
    """How the clients authenticate to Kafka. Empty fields are left to librdkafka."""

    model_config = SettingsConfigDict(env_prefix="CANDLEFLOW_KAFKA_", extra="ignore")

    security_protocol: str = "PLAINTEXT"
    # SSL: CA bundle to verify the brokers (empty: the system store); client cert for mTLS.
    ssl_ca_location: str = ""
    ssl_certificate_location: str = ""
    ssl_key_location: str = ""
    ssl_key_password: SecretStr = SecretStr("")
    ssl_endpoint_identification_algorithm: str = ""  # "none" disables hostname checks
    # SASL: PLAIN / SCRAM with username + password, or OAUTHBEARER through an OIDC token
    # endpoint (client credentials grant; librdkafka fetches and refreshes the token).
    sasl_mechanism: str = ""
    sasl_username: str = ""
    sasl_password: SecretStr = SecretStr("")
    sasl_oauthbearer_token_endpoint_url: str = ""
    sasl_oauthbearer_client_id: str = ""
    sasl_oauthbearer_client_secret: SecretStr = SecretStr("")
    sasl_oauthbearer_scope: str = ""

    def describe(self) -> dict[str, str]:
        """What is configured, without secret values (for logs and error messages)."""
        return {
            "security.protocol": self.security_protocol.upper(),
            "sasl.mechanism": self.sasl_mechanism.upper(),
            "sasl.username": self.sasl_username,
        }


def security_config(sec: KafkaSecurity | None = None) -> dict[str, str]:
    """The librdkafka security properties for `sec` (default: from the environment).

    Raises ValueError, naming the setting, for an unknown protocol or mechanism or a SASL
    mechanism without its credentials, so a misconfigured pod fails at start, not at the
    first broker handshake.
    """
    sec = sec or KafkaSecurity()
    protocol = sec.security_protocol.strip().upper() or "PLAINTEXT"
    if protocol not in PROTOCOLS:
        raise ValueError(f"CANDLEFLOW_KAFKA_SECURITY_PROTOCOL={protocol!r}: one of {PROTOCOLS}")
    out: dict[str, str] = {"security.protocol": protocol}
    if protocol.endswith("SSL"):
        for key, value in (
            ("ssl.ca.location", sec.ssl_ca_location),
            ("ssl.certificate.location", sec.ssl_certificate_location),
            ("ssl.key.location", sec.ssl_key_location),
            ("ssl.key.password", sec.ssl_key_password.get_secret_value()),
            ("ssl.endpoint.identification.algorithm", sec.ssl_endpoint_identification_algorithm),
        ):
            if value:
                out[key] = value
    if protocol.startswith("SASL"):
        out.update(_sasl(sec))
    return out


def _sasl(sec: KafkaSecurity) -> dict[str, str]:
    mechanism = sec.sasl_mechanism.strip().upper()
    if mechanism not in MECHANISMS:
        raise ValueError(f"CANDLEFLOW_KAFKA_SASL_MECHANISM={mechanism!r}: one of {MECHANISMS}")
    out = {"sasl.mechanism": mechanism}
    if mechanism != "OAUTHBEARER":
        if not sec.sasl_username or not sec.sasl_password.get_secret_value():
            raise ValueError(
                f"SASL {mechanism} needs CANDLEFLOW_KAFKA_SASL_USERNAME and _SASL_PASSWORD"
            )
        out["sasl.username"] = sec.sasl_username
        out["sasl.password"] = sec.sasl_password.get_secret_value()
        return out
    if not sec.sasl_oauthbearer_token_endpoint_url:
        raise ValueError(
            "SASL OAUTHBEARER needs CANDLEFLOW_KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL "
            "(and _CLIENT_ID / _CLIENT_SECRET)"
        )
    out["sasl.oauthbearer.method"] = "oidc"
    for key, value in (
        ("sasl.oauthbearer.token.endpoint.url", sec.sasl_oauthbearer_token_endpoint_url),
        ("sasl.oauthbearer.client.id", sec.sasl_oauthbearer_client_id),
        ("sasl.oauthbearer.client.secret", sec.sasl_oauthbearer_client_secret.get_secret_value()),
        ("sasl.oauthbearer.scope", sec.sasl_oauthbearer_scope),
    ):
        if value:
            out[key] = value
    return out


def client_config(bootstrap: str, sec: KafkaSecurity | None = None, **extra: Any) -> dict[str, Any]:
    """A confluent-kafka client config: brokers + security (+ the client's own `extra`)."""
    return {"bootstrap.servers": bootstrap, **security_config(sec), **extra}
