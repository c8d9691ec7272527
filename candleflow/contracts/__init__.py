"""Avro contracts: versioned schema files, one folder per record, `vN.avsc` per version.

The newest version of each contract is what producers write; every version must be
BACKWARD compatible with the one before it (tests/test_contracts.py checks this).
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

CONTRACTS_DIR = Path(__file__).parent
CONTRACT_NAMES = ("trade", "candle", "late_trade", "anomaly", "explanation", "reconcile")

# Which contract each topic carries; the registry subject is "<topic>-value".
TOPIC_CONTRACTS = {
    "trades.v1": "trade",
    "trades.late.v1": "late_trade",
    "candles.v1": "candle",
    "anomalies.v1": "anomaly",
    "explanations.v1": "explanation",
    "reconcile.v1": "reconcile",
}

DECIMAL_SCALE = 18
DECIMAL_PRECISION = 38


def versions(name: str) -> list[int]:
    found = [
        int(m.group(1))
        for p in (CONTRACTS_DIR / name).glob("v*.avsc")
        if (m := re.fullmatch(r"v(\d+)\.avsc", p.name))
    ]
    if not found:
        raise FileNotFoundError(f"no versions of contract {name!r} in {CONTRACTS_DIR / name}")
    return sorted(found)


@cache
def schema(name: str, version: int | None = None) -> dict[str, Any]:
    """The parsed Avro schema of a contract (newest version by default)."""
    v = version if version is not None else versions(name)[-1]
    parsed: dict[str, Any] = json.loads((CONTRACTS_DIR / name / f"v{v}.avsc").read_text())
    return parsed


def schema_text(name: str, version: int | None = None) -> str:
    return json.dumps(schema(name, version), separators=(",", ":"))


def subject(topic: str) -> str:
    return f"{topic}-value"
