"""Exact decimal text, as candles are printed outside Avro (gRPC, the backfill CSV, the
terminal): no exponent, no float noise, no trailing zeros ("50000", "0.00012")."""

from __future__ import annotations

from decimal import Decimal


def plain(value: Decimal | None) -> str:
    """The exact text of `value`; "" for None. Not Decimal.normalize(): it rounds to the
    context precision (28 digits)."""
    if value is None:
        return ""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
