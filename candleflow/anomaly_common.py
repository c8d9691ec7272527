"""The anomaly rules' names, statuses, thresholds (DetectorConfig) and deterministic ids,
shared by the detectors (candleflow/anomaly_rules.py) and everything that reads anomalies."""

from __future__ import annotations

import hashlib
from decimal import Decimal

from pydantic_settings import SettingsConfigDict

from candleflow.env_settings import EnvSettings

VOLUME_SPIKE = "VOLUME_SPIKE"
PRICE_MOVE = "PRICE_MOVE"
VOLATILITY_SPIKE = "VOLATILITY_SPIKE"
GAP = "GAP"
CROSS_EXCHANGE_DIVERGENCE = "CROSS_EXCHANGE_DIVERGENCE"
RULES = (VOLUME_SPIKE, PRICE_MOVE, VOLATILITY_SPIKE, GAP, CROSS_EXCHANGE_DIVERGENCE)
ACTIVE = "ACTIVE"
RETRACTED = "RETRACTED"
# The exchange field of a cross-exchange anomaly: it belongs to the symbol, not to one venue,
# so its id does not change when a third exchange's candle arrives later.
ALL_EXCHANGES = "*"


class DetectorConfig(EnvSettings):
    """Thresholds and window sizes. Override with CANDLEFLOW_ANOMALY_<FIELD>.

    Each rule fires at its threshold with `*_severity` and is HIGH from `*_high`.
    """

    model_config = SettingsConfigDict(env_prefix="CANDLEFLOW_ANOMALY_", extra="ignore")

    window: int = 60  # baseline: the previous N windows (event time)
    min_samples: int = 20  # non-empty candles needed in the baseline before a z-score rule fires
    # Windows kept beyond the baseline so a correction can re-evaluate later windows.
    correction_horizon: int = 16
    volume_z: float = 6.0
    volume_severity: str = "MEDIUM"
    volume_high: float = 10.0
    price_z: float = 6.0
    price_pct: float = 0.2  # AND |close / previous close - 1| >= this many percent
    price_severity: str = "MEDIUM"
    price_high: float = 10.0
    volatility_z: float = 6.0
    volatility_severity: str = "MEDIUM"
    volatility_high: float = 10.0
    gap_windows: int = 3  # fires at the window where a run of empty windows reaches this
    gap_severity: str = "LOW"
    gap_high: float = 10.0
    divergence_bps: float = 50.0
    divergence_severity: str = "MEDIUM"
    divergence_high: float = 200.0


def anomaly_id(rule: str, exchange: str, symbol: str, interval: str, window_start_us: int) -> str:
    """Deterministic id: the same anomaly gets the same id on every run and replay."""
    key = f"{rule}|{exchange}|{symbol}|{interval}|{window_start_us}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _num(x: float | Decimal) -> str:
    """Numbers in `details` as stable text (same input, same string)."""
    if isinstance(x, Decimal):
        return format(x.normalize(), "f")
    return repr(round(x, 6))


def _severity(value: float, threshold: float, severity: str, high: float) -> str | None:
    if not value >= threshold:  # also False for NaN
        return None
    return "HIGH" if value >= high else severity
