"""Settings of the invariant checker (CANDLEFLOW_CHECK_*); command-line options override."""

from __future__ import annotations

from typing import Literal

from pydantic import PositiveFloat, field_validator
from pydantic_settings import SettingsConfigDict

from candleflow.env_settings import EnvSettings, PortOrOff
from serving.check.invariants import GAP_FREE_EXCHANGES


class CheckSettings(EnvSettings):
    model_config = SettingsConfigDict(env_prefix="CANDLEFLOW_CHECK_", extra="ignore")

    via: Literal["trino", "embedded"] = "embedded"  # Trino: CANDLEFLOW_SERVING_TRINO_*
    candles_table: str = "silver.candles"
    trades_table: str = "bronze.trades"
    revisions: bool = True  # read candles.v1 (CANDLEFLOW_TOPIC_CANDLES) for the revision check
    gap_free_exchanges: str = ",".join(GAP_FREE_EXCHANGES)
    # The long-running checker: every `every_seconds`, the windows of the last
    # `lookback_seconds` that are settled (serving.check.runner.settle_us).
    every_seconds: PositiveFloat = 60
    lookback_seconds: PositiveFloat = 7200
    metrics_port: PortOrOff = 9467  # /metrics and /healthz; 0: none
    catch_up_timeout_seconds: PositiveFloat = 60

    @field_validator("gap_free_exchanges")
    @classmethod
    def _known(cls, value: str) -> str:
        from candleflow.domain import EXCHANGES

        bad = [e for e in gap_free_list(value) if e not in EXCHANGES]
        if bad:
            raise ValueError(f"unknown exchange(s) {', '.join(bad)}: use {', '.join(EXCHANGES)}")
        return value

    @property
    def gap_free(self) -> tuple[str, ...]:
        return gap_free_list(self.gap_free_exchanges)


def gap_free_list(text: str) -> tuple[str, ...]:
    return tuple(e.strip().lower() for e in text.split(",") if e.strip())
