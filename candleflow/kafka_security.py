"""Kafka client security from CANDLEFLOW_KAFKA_*, for every client of the project.

- `security_config` / `client_config`: librdkafka properties (the Python clients).
- `flink_kafka_options`: the same settings as the Java client's properties, as the
  `properties.*` options of a Flink Kafka table (every Kafka table of the jobs).

The chart's ConfigMap sets the protocol, mechanism and user; SASL credentials come from
Secrets as env (CANDLEFLOW_KAFKA_SASL_PASSWORD, ..._OAUTHBEARER_CLIENT_SECRET). The
returned dicts (and any DDL built from them) hold secrets: hand them to the client, never
log them (use `describe()` or `redacted()` for a log line).
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from candleflow.env_settings import EnvSettings

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")


class KafkaSecurity(EnvSettings):
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


# --- the Java client (Flink's Kafka tables) ------------------------------------------------

# flink-sql-connector-kafka (the jar the jobs ship, locally and in the job image) shades
# kafka-clients under this prefix: JAAS login modules and callback handlers must be named by
# their shaded class names, or the client fails with "No LoginModule found".
FLINK_KAFKA_SHADED = "org.apache.flink.kafka.shaded."
_SECURITY = "org.apache.kafka.common.security."
LOGIN_MODULES = {
    "PLAIN": _SECURITY + "plain.PlainLoginModule",
    "SCRAM-SHA-256": _SECURITY + "scram.ScramLoginModule",
    "SCRAM-SHA-512": _SECURITY + "scram.ScramLoginModule",
    "OAUTHBEARER": _SECURITY + "oauthbearer.OAuthBearerLoginModule",
}
OAUTHBEARER_LOGIN_HANDLER = _SECURITY + "oauthbearer.OAuthBearerLoginCallbackHandler"
# Flink hides option values whose key contains one of these (GlobalConfiguration's
# SENSITIVE_KEYS in flink-dist 2.1.3, used for logged configs and the "Table options are"
# of factory errors); redacted() applies the same rule to our own log lines.
SENSITIVE_KEY_PARTS = (
    "password",
    "secret",
    "fs.azure.account.key",
    "apikey",
    "api-key",
    "auth-params",
    "service-key",
    "token",
    "basic-auth",
    "jaas.config",
    "http-headers",
)


def _jaas_value(value: str) -> str:
    """A JAAS option value, double-quoted (Kafka's JaasConfig parser reads \\ and \\")."""
    if "\n" in value or "\r" in value:
        raise ValueError("a Kafka credential must not contain a line break")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _jaas(module: str, options: dict[str, str]) -> str:
    opts = "".join(f" {k}={_jaas_value(v)}" for k, v in options.items() if v)
    return f"{module} required{opts};"


def java_client_properties(
    sec: KafkaSecurity | None = None, *, class_prefix: str = FLINK_KAFKA_SHADED
) -> dict[str, str]:
    """The Java Kafka client's security properties for `sec` (default: the environment).

    The same settings and the same checks as `security_config` (it validates first), named
    as kafka-clients names them: the CA bundle becomes a PEM truststore, the client
    certificate + key a PEM keystore (one file holding both: the Java client cannot take
    them as two files), SASL credentials a `sasl.jaas.config` with the login module of the
    mechanism, OAUTHBEARER the client-credentials login handler with the token endpoint.
    `class_prefix` is where the client's classes live (Flink's SQL connector shades them).
    The shaded kafka-clients (3.9.1 in flink-sql-connector-kafka 4.0.1-2.0) allows every
    token endpoint unless the JVM sets the (shaded) system property
    org.apache.flink.kafka.shaded.org.apache.kafka.sasl.oauthbearer.allowed.urls.
    """
    lib = security_config(sec)
    sec = sec or KafkaSecurity()
    out = {"security.protocol": lib["security.protocol"]}
    if "ssl.ca.location" in lib:
        out["ssl.truststore.type"] = "PEM"
        out["ssl.truststore.location"] = lib["ssl.ca.location"]
    cert, key = lib.get("ssl.certificate.location"), lib.get("ssl.key.location")
    if cert or key:
        if cert != key:
            raise ValueError(
                "the Flink jobs' Java Kafka client reads the client certificate and its key "
                "from one PEM file: point CANDLEFLOW_KAFKA_SSL_CERTIFICATE_LOCATION and "
                "CANDLEFLOW_KAFKA_SSL_KEY_LOCATION at the same file holding both (librdkafka "
                "reads that file too)"
            )
        out["ssl.keystore.type"] = "PEM"
        out["ssl.keystore.location"] = str(cert)
    if "ssl.key.password" in lib:
        out["ssl.key.password"] = lib["ssl.key.password"]
    if "ssl.endpoint.identification.algorithm" in lib:
        algorithm = lib["ssl.endpoint.identification.algorithm"].strip().lower()
        # librdkafka says "none" where the Java client wants an empty value.
        out["ssl.endpoint.identification.algorithm"] = "" if algorithm == "none" else algorithm
    mechanism = lib.get("sasl.mechanism")
    if mechanism is None:
        return out
    out["sasl.mechanism"] = mechanism
    module = class_prefix + LOGIN_MODULES[mechanism]
    if mechanism != "OAUTHBEARER":
        out["sasl.jaas.config"] = _jaas(
            module, {"username": lib["sasl.username"], "password": lib["sasl.password"]}
        )
        return out
    out["sasl.login.callback.handler.class"] = class_prefix + OAUTHBEARER_LOGIN_HANDLER
    out["sasl.oauthbearer.token.endpoint.url"] = lib["sasl.oauthbearer.token.endpoint.url"]
    out["sasl.jaas.config"] = _jaas(
        module,
        {
            "clientId": sec.sasl_oauthbearer_client_id,
            "clientSecret": sec.sasl_oauthbearer_client_secret.get_secret_value(),
            "scope": sec.sasl_oauthbearer_scope,
        },
    )
    return out


def flink_kafka_options(sec: KafkaSecurity | None = None) -> dict[str, str]:
    """`java_client_properties` as options of a Flink Kafka table (`properties.<name>`)."""
    return {f"properties.{k}": v for k, v in java_client_properties(sec).items()}


def is_sensitive(key: str) -> bool:
    low = key.lower()
    return any(part in low for part in SENSITIVE_KEY_PARTS)


def redacted(options: dict[str, str]) -> dict[str, str]:
    """`options` fit for a log line: sensitive values hidden as Flink hides them."""
    return {k: "******" if is_sensitive(k) else v for k, v in options.items()}
