"""Canonical symbols: BASE-QUOTE in upper case (BTC-USDT), whatever the exchange calls them."""

from __future__ import annotations

import re

# Quote assets of Binance's spot and futures markets (exchangeInfo's quoteAsset values over
# the years, fiat and stablecoins included), recognised when splitting a concatenated
# native symbol like BTCUSDT. Matched longest first, so USDT wins over USD and EURI over EUR.
_QUOTE_ASSETS = (
    # stablecoins
    "USDT", "USDC", "FDUSD", "TUSD", "BUSD", "USDP", "PAX", "USDS", "DAI", "UST", "VAI",
    "AEUR", "EURI", "XUSD", "USD1", "BFUSD", "USDE",
    # fiat and fiat tokens
    "USD", "EUR", "GBP", "JPY", "TRY", "BRL", "AUD", "RUB", "UAH", "NGN", "ZAR", "PLN",
    "RON", "ARS", "COP", "MXN", "CZK", "IDRT", "BIDR", "BKRW", "BVND", "KRW", "IDR",
    # crypto quote assets
    "BTC", "ETH", "BNB", "XRP", "TRX", "DOGE", "DOT", "SOL",
)  # fmt: skip
KNOWN_QUOTES = tuple(sorted(_QUOTE_ASSETS, key=len, reverse=True))
_CANONICAL = re.compile(r"^[A-Z0-9]{1,20}-[A-Z0-9]{1,20}$")
_KRAKEN_ALIASES = {"XBT": "BTC", "XDG": "DOGE"}


def is_canonical(symbol: str) -> bool:
    return bool(_CANONICAL.match(symbol))


def from_concatenated(native: str) -> str:
    """BTCUSDT -> BTC-USDT; BTCUSD_PERP -> BTC-USD-PERP is not canonical, see from_binance."""
    upper = native.upper()
    for quote in KNOWN_QUOTES:
        if upper.endswith(quote) and len(upper) > len(quote):
            return f"{upper[: -len(quote)]}-{quote}"
    raise ValueError(
        f"cannot split symbol {native!r} into base and quote (quote assets known: "
        f"{', '.join(sorted(KNOWN_QUOTES))}); give it as BASE-QUOTE, e.g. ETH-BRL"
    )


def from_binance(native: str) -> str:
    """Binance spot BTCUSDT -> BTC-USDT; COIN-M BTCUSD_PERP -> BTC-USD-PERP (a distinct market)."""
    upper = native.upper()
    if "_" in upper:
        pair, suffix = upper.split("_", 1)
        return f"{from_concatenated(pair)}-{suffix}"
    return from_concatenated(upper)


def to_binance(canonical: str) -> str:
    parts = canonical.upper().split("-")
    if len(parts) == 3:
        return f"{parts[0]}{parts[1]}_{parts[2]}"
    return "".join(parts)


def from_slash(native: str) -> str:
    """Kraken v2 "BTC/USD" (and v1 "XBT/USD") -> BTC-USD."""
    base, quote = native.upper().split("/", 1)
    return f"{_KRAKEN_ALIASES.get(base, base)}-{_KRAKEN_ALIASES.get(quote, quote)}"


def to_slash(canonical: str) -> str:
    base, quote = canonical.upper().split("-", 1)
    return f"{base}/{quote}"


def base_quote(canonical: str) -> tuple[str, str]:
    parts = canonical.split("-")
    return parts[0], parts[1]
