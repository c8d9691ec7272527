"""Settings of the gRPC service (CANDLEFLOW_SERVING_*). Secrets (the token) only from env."""

from __future__ import annotations

from typing import Literal

from pydantic import NonNegativeFloat, PositiveFloat, PositiveInt, SecretStr
from pydantic_settings import SettingsConfigDict

from candleflow.env_settings import EnvSettings, PortOrOff


class ServingSettings(EnvSettings):
    model_config = SettingsConfigDict(env_prefix="CANDLEFLOW_SERVING_", extra="ignore")

    # Bearer tokens accepted (comma separated); required unless local mode.
    tokens: SecretStr = SecretStr("")
    local: bool = False  # local mode: no auth, plaintext allowed
    tls_cert: str = ""  # PEM server certificate chain; with tls_key enables TLS
    tls_key: str = ""
    tls_client_ca: str = ""  # PEM CA: clients must present a certificate it signed (mTLS)
    metrics_port: PortOrOff = 9464  # 0: no metrics endpoint
    history: Literal["duckdb", "trino"] = "duckdb"  # or trino
    # Trino for `history=trino` (the chart sets the URL); empty = the local stack's Trino.
    trino_url: str = ""  # http(s)://host[:port]
    trino_user: str = "candleflow"
    trino_password: SecretStr = SecretStr("")  # basic auth (Trino requires https for it)
    trino_access_token: SecretStr = SecretStr("")  # JWT bearer token, instead of a password
    candles_table: str = "silver.candles"
    anomalies_table: str = "gold.anomalies"
    explanations_table: str = "gold.explanations"
    queue_capacity: PositiveInt = 10_000  # events per subscriber before RESOURCE_EXHAUSTED
    heartbeat_seconds: PositiveFloat = 15.0
    history_timeout_seconds: PositiveFloat = 30.0  # a history call's own deadline
    shutdown_grace_seconds: NonNegativeFloat = 5.0
    # `serve`'s event loop: uvloop cuts the server's CPU per streamed message by ~15-20 %
    # (bench/fanout/server_cost.py --uvloop); "asyncio" is the standard loop.
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"

    def token_set(self) -> frozenset[str]:
        return frozenset(t.strip() for t in self.tokens.get_secret_value().split(",") if t.strip())
