"""Exchange ingest: one module of pure parsing functions per exchange (binance, coinbase,
kraken), and the shared connection loop, producer and replay around them."""

from __future__ import annotations

from types import ModuleType

from ingest import binance, coinbase, kraken

ADAPTERS: dict[str, ModuleType] = {"binance": binance, "coinbase": coinbase, "kraken": kraken}
