"""The invariants of published candles, as pure functions (no I/O): each returns Violations.

| invariant | rule |
| --- | --- |
| `ohlc` | low <= open <= high and low <= close <= high |
| `vwap` | low <= vwap <= high (non-empty candles; see VWAP_SLACK) |
| `trade_count` | trade_count = last_trade_id - first_trade_id + 1, for gap-free exchanges |
| `missing_window` | a market has a candle for every window from its first to its last |
| `volume` | per window, volume, taker_buy_volume, trade_count = the sums of bronze.trades |
| `revision` | no revision n of a window without its revision n - 1 |

A candle is identified by (exchange, symbol, interval, window_start); `Violation` names it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from candleflow.domain import Candle
from candleflow.intervals import Interval

INVARIANTS = ("ohlc", "vwap", "trade_count", "missing_window", "volume", "revision")

# Exchanges whose trade ids number a market's trades without holes (ingest/gaps.py): Binance
# trade and aggregate ids, Coinbase trade_id per product, Kraken v2 trade_id per book. Kraken
# v1 (recorded captures only) has no id; the derived one is not contiguous.
GAP_FREE_EXCHANGES = ("binance", "coinbase", "kraken")

# An INVERSE candle's vwap is notional / the sum of per-trade base amounts each rounded to 18
# decimals (docs/semantics.md), so it may sit a hair outside [low, high]: n x 0.5e-18 of
# base volume moves it by far less than this relative slack. Spot and linear are exact.
VWAP_SLACK = Decimal("1e-12")

Key = tuple[str, str, str, int]  # exchange, symbol, interval, window_start_us


@dataclass(frozen=True, slots=True, order=True)
class Violation:
    invariant: str
    exchange: str
    symbol: str
    interval: str
    window_start_us: int
    detail: str

    @property
    def window(self) -> str:
        return us_to_iso(self.window_start_us)

    def line(self) -> str:
        return (
            f"{self.invariant}: {self.exchange} {self.symbol} {self.interval} "
            f"window {self.window}: {self.detail}"
        )


@dataclass(frozen=True, slots=True)
class WindowTrades:
    """The sums of one window's trades in bronze.trades."""

    exchange: str
    symbol: str
    interval: str
    window_start_us: int
    volume: Decimal
    taker_buy_volume: Decimal
    trade_count: int  # raw trades (an aggregate trade counts last - first + 1)

    @property
    def key(self) -> Key:
        return (self.exchange, self.symbol, self.interval, self.window_start_us)


def us_to_iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def candle_key(c: Candle) -> Key:
    return (c.exchange, c.symbol, c.interval, c.window_start_us)


def _v(invariant: str, key: Key, detail: str) -> Violation:
    return Violation(invariant, key[0], key[1], key[2], key[3], detail)


def check_candle(c: Candle, gap_free: Iterable[str] = GAP_FREE_EXCHANGES) -> list[Violation]:
    """The invariants one candle holds on its own: ohlc, vwap, trade_count."""
    out = []
    key = candle_key(c)
    for name in ("open", "close"):
        value = getattr(c, name)
        if not c.low <= value <= c.high:
            out.append(_v("ohlc", key, f"{name} {value} outside [low {c.low}, high {c.high}]"))
    if c.low > c.high:
        out.append(_v("ohlc", key, f"low {c.low} above high {c.high}"))
    if not c.is_empty and c.vwap is not None:
        lo, hi = c.low * (1 - VWAP_SLACK), c.high * (1 + VWAP_SLACK)
        if not lo <= c.vwap <= hi:
            out.append(_v("vwap", key, f"vwap {c.vwap} outside [low {c.low}, high {c.high}]"))
    if (
        c.exchange in set(gap_free)
        and not c.is_empty
        and c.first_trade_id is not None
        and c.last_trade_id is not None
    ):
        span = c.last_trade_id - c.first_trade_id + 1
        if c.trade_count != span:
            out.append(
                _v(
                    "trade_count",
                    key,
                    f"trade_count {c.trade_count} != last_trade_id {c.last_trade_id} - "
                    f"first_trade_id {c.first_trade_id} + 1 = {span}",
                )
            )
    return out


def missing_windows(
    candles: Iterable[Candle], trades: Iterable[WindowTrades], intervals: Mapping[str, Interval]
) -> list[Violation]:
    """Per (exchange, symbol, interval): every window from the market's first window (with a
    candle or a trade) to its last must have a candle (an idle window has an empty one)."""
    have: dict[tuple[str, str, str], set[int]] = defaultdict(set)
    traded: dict[tuple[str, str, str], set[int]] = defaultdict(set)
    for c in candles:
        have[(c.exchange, c.symbol, c.interval)].add(c.window_start_us)
    for t in trades:
        if t.trade_count > 0:
            traded[(t.exchange, t.symbol, t.interval)].add(t.window_start_us)
    out = []
    for market in sorted(set(have) | set(traded)):
        size = intervals[market[2]].micros
        windows = have[market] | traded[market]
        for ws in range(min(windows), max(windows) + size, size):
            if ws not in have[market]:
                detail = (
                    "no candle, but bronze.trades has trades in it"
                    if ws in traded[market]
                    else "no candle between the market's first and last window"
                )
                out.append(_v("missing_window", (*market, ws), detail))
    return out


def volume_mismatches(candles: Iterable[Candle], trades: Iterable[WindowTrades]) -> list[Violation]:
    """Per window with a candle: its volumes and trade count equal bronze.trades' sums. A
    window with trades but no candle is a missing window, reported there."""
    sums = {t.key: t for t in trades}
    out = []
    for c in candles:
        key = candle_key(c)
        t = sums.get(key)
        got = {
            "volume": t.volume if t else Decimal(0),
            "taker_buy_volume": t.taker_buy_volume if t else Decimal(0),
            "trade_count": t.trade_count if t else 0,
        }
        diffs = [
            f"{name} {getattr(c, name)} in silver.candles != {value} in bronze.trades"
            for name, value in got.items()
            if getattr(c, name) != value
        ]
        if diffs:
            out.append(_v("volume", key, "; ".join(diffs)))
    return out


def revision_gaps(revisions: Mapping[Key, Iterable[int]]) -> list[Violation]:
    """For each window, every revision n > 0 seen needs n - 1 seen too."""
    out = []
    for key in sorted(revisions):
        seen = set(revisions[key])
        for n in sorted(seen):
            if n > 0 and n - 1 not in seen:
                out.append(_v("revision", key, f"revision {n} without revision {n - 1}"))
    return out


def check_all(
    candles: list[Candle],
    trades: list[WindowTrades],
    intervals: Mapping[str, Interval],
    revisions: Mapping[Key, Iterable[int]] | None = None,
    gap_free: Iterable[str] = GAP_FREE_EXCHANGES,
) -> list[Violation]:
    """Every invariant over one range's candles, trade sums and (if read) revisions."""
    gap_free = tuple(gap_free)
    out: list[Violation] = []
    for c in candles:
        out.extend(check_candle(c, gap_free))
    out.extend(missing_windows(candles, trades, intervals))
    out.extend(volume_mismatches(candles, trades))
    if revisions is not None:
        out.extend(revision_gaps(revisions))
    return sorted(out)


def by_invariant(violations: Iterable[Violation]) -> Iterator[tuple[str, int]]:
    counts = dict.fromkeys(INVARIANTS, 0)
    for v in violations:
        counts[v.invariant] += 1
    yield from counts.items()
