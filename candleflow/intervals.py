"""Candle intervals ("1m", "5m", "15m", "1h", ...) and window arithmetic in UTC microseconds."""

from __future__ import annotations

import re
from dataclasses import dataclass

US_PER_SECOND = 1_000_000
_UNIT_US = {
    "s": US_PER_SECOND,
    "m": 60 * US_PER_SECOND,
    "h": 3600 * US_PER_SECOND,
    "d": 86400 * US_PER_SECOND,
}
_PATTERN = re.compile(r"^([1-9][0-9]*)([smhd])$")


@dataclass(frozen=True, slots=True, order=True)
class Interval:
    """A tumbling window length. Windows are aligned to the Unix epoch, as exchange klines are."""

    micros: int
    name: str

    @classmethod
    def parse(cls, text: str) -> Interval:
        match = _PATTERN.match(text.strip())
        if not match:
            raise ValueError(
                f"invalid interval {text!r}: expected a number and a unit s/m/h/d, e.g. 1m, 5m, 1h"
            )
        return cls(int(match.group(1)) * _UNIT_US[match.group(2)], text.strip())

    def window_start(self, event_time_us: int) -> int:
        return event_time_us - (event_time_us % self.micros)

    def window_end(self, event_time_us: int) -> int:
        return self.window_start(event_time_us) + self.micros

    def __str__(self) -> str:
        return self.name


def parse_intervals(text: str | list[str]) -> list[Interval]:
    """Parse "1m,5m,1h" (or a list) into sorted, de-duplicated intervals."""
    parts = text.split(",") if isinstance(text, str) else text
    parsed = {Interval.parse(p) for p in parts if p.strip()}
    if not parsed:
        raise ValueError("at least one interval is required, e.g. 1m")
    return sorted(parsed)


DEFAULT_INTERVALS = parse_intervals("1m,5m,15m,1h")
