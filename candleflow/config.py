"""Configuration shared by every component, from environment variables (CANDLEFLOW_*).

Each area adds its own settings class next to its code (ingest, jobs, serving); this
module holds what they all share: where the stack runs and what the topics are called.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import (
    Field,
    NonNegativeFloat,
    PositiveFloat,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import SettingsConfigDict

from candleflow.env_settings import EnvSettings, Port


def default_cache_dir() -> Path:
    return Path(os.environ.get("CANDLEFLOW_CACHE", Path.home() / ".cache" / "candleflow"))


def default_data_dir() -> Path:
    state = os.environ.get("XDG_STATE_HOME", str(Path.home() / ".local" / "state"))
    return Path(state) / "candleflow"


class StackSettings(EnvSettings):
    """Where the local stack listens and keeps its data. Override with CANDLEFLOW_<FIELD>."""

    model_config = SettingsConfigDict(env_prefix="CANDLEFLOW_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir, description="logs, data, warehouse")
    cache_dir: Path = Field(default_factory=default_cache_dir, description="downloaded artifacts")
    host: str = "127.0.0.1"
    kafka_port: Port = 19092
    kafka_controller_port: Port = 19093
    # A second broker listener, SASL_PLAINTEXT with PLAIN and SCRAM-SHA-256 users whose
    # passwords the stack generates (Stack.sasl_security): the secured path is tested for real.
    kafka_sasl_port: Port = 19094
    # A third, SASL_SSL (the production protocol): the same users over TLS with a CA and
    # server certificate the stack generates per data dir (Stack.sasl_ssl_security).
    kafka_sasl_ssl_port: Port = 19095
    registry_port: Port = 18081
    flink_rest_port: Port = 18088
    trino_port: Port = 18080
    grpc_port: Port = 50051
    catalog_name: str = "candleflow"
    # Remote services (Kubernetes: set by the chart's ConfigMap); empty = the local stack.
    kafka_bootstrap: str = ""
    registry: str = ""
    # Production Iceberg catalog (e.g. jdbc:postgresql://... and gs://bucket/warehouse);
    # empty = the local SQLite catalog and warehouse under data_dir.
    catalog_jdbc_uri: str = ""
    warehouse: str = ""
    catalog_user: str = ""
    catalog_password: SecretStr = SecretStr("")

    @property
    def bootstrap_servers(self) -> str:
        return self.kafka_bootstrap or f"{self.host}:{self.kafka_port}"

    def kafka_config(self, **extra: Any) -> dict[str, Any]:
        """confluent-kafka config: brokers + security from CANDLEFLOW_KAFKA_* (holds secrets)."""
        from candleflow.kafka_security import client_config

        return client_config(self.bootstrap_servers, **extra)

    @property
    def sasl_bootstrap_servers(self) -> str:
        """The local broker's SASL_PLAINTEXT listener."""
        return f"{self.host}:{self.kafka_sasl_port}"

    @property
    def sasl_ssl_bootstrap_servers(self) -> str:
        """The local broker's SASL_SSL listener."""
        return f"{self.host}:{self.kafka_sasl_ssl_port}"

    @property
    def registry_url(self) -> str:
        """Confluent-compatible API of the schema registry."""
        return self.registry or f"http://{self.host}:{self.registry_port}/apis/ccompat/v7"

    @property
    def flink_rest_url(self) -> str:
        return f"http://{self.host}:{self.flink_rest_port}"

    @property
    def warehouse_dir(self) -> Path:
        return self.data_dir / "warehouse"

    @property
    def catalog_db(self) -> Path:
        return self.data_dir / "catalog.db"

    @property
    def catalog_uri(self) -> str:
        """The JDBC catalog URL: the configured one, or the local SQLite file."""
        return self.catalog_jdbc_uri or f"jdbc:sqlite:{self.catalog_db}"

    @property
    def warehouse_uri(self) -> str:
        return self.warehouse or self.warehouse_dir.as_uri()

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def jars_dir(self) -> Path:
        return self.cache_dir / "jars"


class Topics(EnvSettings):
    model_config = SettingsConfigDict(env_prefix="CANDLEFLOW_TOPIC_", extra="ignore")

    trades: str = "trades.v1"
    late_trades: str = "trades.late.v1"
    candles: str = "candles.v1"
    rejects: str = "ingest.rejects"
    anomalies: str = "anomalies.v1"
    explanations: str = "explanations.v1"
    reconcile: str = "reconcile.v1"  # candleflow verify live: differences from the exchanges


class CandleSettings(EnvSettings):
    """Candle semantics (see docs/semantics.md). Durations are in seconds."""

    model_config = SettingsConfigDict(env_prefix="CANDLEFLOW_CANDLES_", extra="ignore")

    intervals: str = "1m,5m,15m,1h"
    # Grace: how far the watermark trails the highest trade time seen, per interval.
    grace_seconds: dict[str, NonNegativeFloat] = {"1m": 10, "5m": 30, "15m": 60, "1h": 60}
    default_grace_seconds: NonNegativeFloat = 10
    # A trade this late after its window was emitted still corrects it (new revision);
    # later than that it goes to the DLQ.
    allowed_lateness_seconds: NonNegativeFloat = 300
    # The global watermark finalises an idle market's pending windows this long after
    # window end + grace (docs/semantics.md "Idle markets").
    idle_flush_delay_seconds: NonNegativeFloat = 60
    dedup_ttl_seconds: PositiveFloat = 86400
    emit_empty_windows: bool = True

    @field_validator("intervals")
    @classmethod
    def _intervals_parse(cls, value: str) -> str:
        from candleflow.intervals import parse_intervals

        parse_intervals(value)  # raises ValueError naming the bad part
        return value

    @model_validator(mode="after")
    def _dedup_outlives_corrections(self) -> CandleSettings:
        # A trade id forgotten while its window still takes corrections could be counted
        # twice: the dedup horizon must cover the longest window + grace + lateness.
        from candleflow.intervals import parse_intervals

        need = max(
            iv.micros / 1e6 + self.grace_us(iv.name) / 1e6 for iv in parse_intervals(self.intervals)
        )
        need += self.allowed_lateness_seconds
        if self.dedup_ttl_seconds < need:
            raise ValueError(
                f"dedup_ttl_seconds={self.dedup_ttl_seconds:g} is shorter than the longest "
                f"window + its grace + allowed_lateness_seconds = {need:g} s: a duplicate "
                "could be counted twice; raise CANDLEFLOW_CANDLES_DEDUP_TTL_SECONDS"
            )
        return self

    def grace_us(self, interval: str) -> int:
        return int(self.grace_seconds.get(interval, self.default_grace_seconds) * 1_000_000)

    @property
    def allowed_lateness_us(self) -> int:
        return int(self.allowed_lateness_seconds * 1_000_000)
