"""Where the real recorded exchange data lives: `../shared/data` beside the checkout.

The demo, the tests and the benchmarks all replay these files; one place names them.
"""

from __future__ import annotations

from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
BINANCE_FILES = SHARED_DATA / "binance"
CAPTURES = SHARED_DATA / "captures"
# The COIN-M day: 105,280 BTCUSD_PERP aggregate trades of 2026-05-08 (data.binance.vision).
COINM_DAY = BINANCE_FILES / "BTCUSD_PERP-aggTrades-2026-05-08.zip"
