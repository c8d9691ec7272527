"""Settings of Iceberg table maintenance (CANDLEFLOW_MAINTAIN_*): which tables, how long a
snapshot stays reachable by time travel, and when a file counts as small or orphaned.

The Trino it runs on is the one serving uses (CANDLEFLOW_SERVING_TRINO_URL, _USER, _PASSWORD,
_ACCESS_TOKEN; empty URL = the local stack's Trino): in the chart both point at the same
service. Durations use Trino's unit syntax (`500ms`, `30s`, `15m`, `6h`, `7d`).
"""

from __future__ import annotations

import re
from datetime import timedelta

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from candleflow.env_settings import EnvSettings

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SIZE = re.compile(r"^\d+(?:\.\d+)?(B|kB|MB|GB)$")
_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")


def duration(text: str) -> timedelta:
    """A Trino duration (`7d`, `30s`) as a timedelta; ValueError names the expected form."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a duration: expected a number and ms, s, m, h or d")
    return timedelta(seconds=float(match.group(1)) * _UNIT_S[match.group(2)])


class MaintenanceSettings(EnvSettings):
    """What `candleflow lakehouse maintain` does to each table, in this order:

    1. optimize: rewrite data files smaller than `small_file` and every data file that has
       delete files, which folds the upsert's equality deletes into the new files;
    2. optimize_manifests: rewrite the manifests (one per checkpoint otherwise);
    3. expire_snapshots: drop snapshots older than `retention`, but never the last `keep_last`;
       time travel reaches exactly the snapshots this keeps;
    4. remove_orphan_files: delete files of the table's location that no snapshot references
       and that are older than `orphan_retention` (longer than any write in flight).
    """

    model_config = SettingsConfigDict(env_prefix="CANDLEFLOW_MAINTAIN_", extra="ignore")

    tables: list[str] = Field(
        default=["silver.candles", "bronze.trades", "gold.anomalies", "gold.explanations"],
        description="namespace.table, JSON list in the environment",
    )
    retention: str = "3d"
    keep_last: int = Field(default=100, ge=1)
    orphan_retention: str = "3d"
    small_file: str = "64MB"
    # A step that loses a commit race with a streaming writer is run again, this many times.
    attempts: int = Field(default=3, ge=1)

    @field_validator("retention", "orphan_retention")
    @classmethod
    def _duration(cls, value: str) -> str:
        duration(value)
        return value.strip()

    @field_validator("small_file")
    @classmethod
    def _size(cls, value: str) -> str:
        if not _SIZE.match(value.strip()):
            raise ValueError("expected a data size such as 64MB, 512kB or 1GB")
        return value.strip()

    @field_validator("tables")
    @classmethod
    def _tables(cls, value: list[str]) -> list[str]:
        bad = [t for t in value if not _TABLE.match(t)]
        if bad or not value:
            raise ValueError(f"expected namespace.table names, got {bad or 'none'}")
        return value

    @model_validator(mode="after")
    def _orphans_not_before_snapshots(self) -> MaintenanceSettings:
        # A file a kept snapshot references is never an orphan, but a file written by an
        # in-flight commit is one until it commits: a short orphan_retention deletes it.
        if duration(self.orphan_retention) < timedelta(seconds=1):
            raise ValueError(
                "CANDLEFLOW_MAINTAIN_ORPHAN_RETENTION must be at least 1s (files of commits "
                "still in flight look orphaned; in production keep it above a day)"
            )
        return self

    @property
    def retention_td(self) -> timedelta:
        return duration(self.retention)

    @property
    def orphan_retention_td(self) -> timedelta:
        return duration(self.orphan_retention)
