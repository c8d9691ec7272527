"""Epoch times as exchanges send them: milliseconds or microseconds, told apart by magnitude.

One rule for every path that reads an integer epoch time: the live frames (checked and
fast paths), the Avro lane, REST backfill, Binance's data files and the kline checks. A
positive value below MS_US_BOUNDARY is in ms, from it on in µs: 10^13 ms is the year 2286,
10^13 µs is 1970-04-26, so no time a trade can carry falls on the wrong side. (Binance
switched its spot files from ms to µs on 2025-01-01; its API answers µs when asked.)
"""

from __future__ import annotations

MS_US_BOUNDARY = 10**13


def is_us(value: int) -> bool:
    """True if the epoch value `value` is in µs, False if in ms."""
    return value >= MS_US_BOUNDARY


def to_us(value: int) -> int:
    """An epoch ms or µs value (told apart by magnitude) -> µs. No range check: callers
    check the type and the range (ingest.common.epoch_to_us names what is wrong)."""
    return value * 1000 if value < MS_US_BOUNDARY else value
