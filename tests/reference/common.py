"""Paths to the real data and a compact Trade builder for hand-written cases."""

from __future__ import annotations

from decimal import Decimal

from candleflow.domain import InstrumentKind, Side, Trade
from devstack.sample_data import BINANCE_FILES

KLINE_ZIPS = [BINANCE_FILES / f"BTCUSDT-1m-2020-01-0{d}.zip" for d in (1, 2, 3)]
T0 = 1_778_198_400_000_000  # 2026-05-08T00:00:00Z
S = 1_000_000  # one second in µs


def trade(
    tid: int,
    price: str,
    qty: str,
    at_s: float,
    side: Side = Side.BUY,
    *,
    symbol: str = "BTC-USDT",
    exchange: str = "binance",
    kind: InstrumentKind = InstrumentKind.SPOT,
    contract_size: str | None = None,
    first: int | None = None,
    last: int | None = None,
) -> Trade:
    """A trade `at_s` seconds after T0."""
    at = T0 + int(at_s * S)
    return Trade(
        exchange,
        symbol,
        symbol.replace("-", ""),
        tid,
        Decimal(price),
        Decimal(qty),
        side,
        at,
        at,
        first,
        last,
        kind,
        Decimal(contract_size) if contract_size else None,
    )
