"""Explainer configuration from the environment (CANDLEFLOW_EXPLAINER_*, ANTHROPIC_API_KEY)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from candleflow.env_settings import EnvSettings


class ExplainerSettings(EnvSettings):
    model_config = SettingsConfigDict(env_prefix="CANDLEFLOW_EXPLAINER_", extra="ignore")

    # Only ever read from the environment; SecretStr keeps it out of reprs and logs.
    api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("ANTHROPIC_API_KEY")
    )
    base_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("CANDLEFLOW_EXPLAINER_BASE_URL", "ANTHROPIC_BASE_URL"),
    )
    model: str = "claude-haiku-4-5"
    max_tokens: int = Field(default=512, ge=64, le=2048)
    timeout_seconds: float = 30.0
    # Our own retry loop (the SDK's is off) so each retry is logged and counted.
    max_retries: int = 4
    backoff_base_seconds: float = 1.0
    backoff_max_seconds: float = 30.0
    malformed_retries: int = 1  # a malformed answer is asked again this often, then offline
    calls_per_minute: int = 20
    calls_per_day: int = 2000
    usd_per_day: float = 5.0
    # USD per million tokens (Claude Haiku 4.5 list prices; 5-minute cache writes).
    price_input: float = 1.0
    price_output: float = 5.0
    price_cache_write: float = 1.25
    price_cache_read: float = 0.10
    # Context: candles before the anomaly's window, and other exchanges' candles of it.
    context_candles: int = 10
    # Service
    group_id: str = "candleflow-explainer"
    transactional_id: str = "candleflow-explainer-0"
    metrics_port: int = 9465
    iceberg_table: str = "gold.explanations"
    write_iceberg: bool = True
    candles_lookback_minutes: int = 180  # how far back the candle cache starts reading

    @property
    def online(self) -> bool:
        return self.api_key is not None and bool(self.api_key.get_secret_value())
