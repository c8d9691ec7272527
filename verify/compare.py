"""Our candles against the exchange's, window by window, field by field (pure).

Only the fields the exchange publishes are compared (exchange_candles.COMPARABLE), at the
exchange's precision. A window counts when at least one side traded in it:
- both sides have it: each comparable field, FIELD mismatch per differing field;
- the exchange traded in it and we have no candle: MISSING_OURS (field "window");
- we traded in it and the exchange has no candle although its answer covers that time:
  MISSING_EXCHANGE (field "window");
- neither traded (an empty candle of ours, a zero-volume kline, or a window Coinbase and
  Kraken leave out): nothing to compare.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from candleflow.domain import Candle
from verify.exchange_candles import COMPARABLE, ExchangeCandle, FieldRule, Market

FIELD, MISSING_OURS, MISSING_EXCHANGE = "FIELD", "MISSING_OURS", "MISSING_EXCHANGE"


@dataclass(frozen=True, slots=True)
class Mismatch:
    market: Market
    interval: str
    window_start_us: int
    field: str  # a candle field, or "window" for a window missing on one side
    ours: str | None  # both values as printed (None: that side has no candle)
    theirs: str | None
    kind: str = FIELD
    revision: int | None = None  # the revision of our candle that was compared


@dataclass
class WindowsResult:
    checked: list[int] = field(default_factory=list)  # window starts compared
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def matched(self) -> int:
        return len(set(self.checked) - {m.window_start_us for m in self.mismatches})


def field_matches(rule: FieldRule, ours: Decimal | int, theirs: Decimal | int) -> bool:
    if rule.match == "exact" or isinstance(theirs, int):
        return Decimal(ours) == Decimal(theirs)
    exponent = theirs.as_tuple().exponent
    assert isinstance(exponent, int)
    unit = Decimal(1).scaleb(exponent)  # the last decimal the exchange printed
    got = Decimal(ours).quantize(unit, rounding=ROUND_HALF_UP)
    return abs(got - theirs) <= unit * rule.tolerance_units


def _traded(values: Mapping[str, Decimal | int]) -> bool:
    return Decimal(values["volume"]) != 0


def compare_window(ours: Candle, theirs: ExchangeCandle) -> list[Mismatch]:
    out = []
    for rule in COMPARABLE[theirs.market.exchange]:
        want = theirs.values[rule.name]
        got = getattr(ours, rule.name)
        if got is None:  # our empty window has no VWAP; the exchange's zero-volume one is moot
            if not _traded(theirs.values):
                continue
            ok = False
        else:
            ok = field_matches(rule, got, want)
        if not ok:
            out.append(
                Mismatch(
                    theirs.market,
                    theirs.interval,
                    theirs.window_start_us,
                    rule.name,
                    None if got is None else str(got),
                    str(want),
                    FIELD,
                    ours.revision,
                )
            )
    return out


def compare_windows(
    market: Market,
    interval: str,
    ours: Mapping[int, Candle],
    theirs: Iterable[ExchangeCandle],
    start_us: int,
    end_us: int,
    covered_from_us: int | None = None,
) -> WindowsResult:
    """Compare the windows starting in [start_us, end_us). The exchange's answer covers
    [covered_from_us (default start_us), end_us): before that (Kraken keeps only its 720
    most recent entries) a window of ours the exchange lacks is not counted."""
    result = WindowsResult()
    by_start = {c.window_start_us: c for c in theirs if start_us <= c.window_start_us < end_us}
    covered = start_us if covered_from_us is None else covered_from_us
    mine = {s: c for s, c in ours.items() if start_us <= s < end_us}
    for start in sorted(set(by_start) | set(mine)):
        t, o = by_start.get(start), mine.get(start)
        if t is not None and o is not None:
            result.checked.append(start)
            result.mismatches += compare_window(o, t)
        elif t is not None and _traded(t.values):
            result.checked.append(start)
            volume = str(t.values["volume"])
            result.mismatches.append(
                Mismatch(market, interval, start, "window", None, volume, MISSING_OURS)
            )
        elif o is not None and not o.is_empty and start >= covered:
            result.checked.append(start)
            result.mismatches.append(
                Mismatch(
                    market, interval, start, "window", str(o.volume), None, MISSING_EXCHANGE,
                    o.revision,
                )
            )  # fmt: skip
    return result
