"""Per-minute and per-day budgets for LLM calls (and a daily dollar cap), on an injected clock."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

DAY_SECONDS = 86_400.0


@dataclass
class Budget:
    calls_per_minute: int
    calls_per_day: int
    usd_per_day: float
    clock: Callable[[], float] = time.time
    _minute: deque[float] = field(default_factory=deque)
    _day: deque[tuple[float, float]] = field(default_factory=deque)  # (time, usd)

    def _trim(self, now: float) -> None:
        while self._minute and self._minute[0] <= now - 60.0:
            self._minute.popleft()
        while self._day and self._day[0][0] <= now - DAY_SECONDS:
            self._day.popleft()

    def exhausted(self) -> str | None:
        """The window that is spent ("minute", "day", "usd_day"), or None if a call may go."""
        now = self.clock()
        self._trim(now)
        if len(self._minute) >= self.calls_per_minute:
            return "minute"
        if len(self._day) >= self.calls_per_day:
            return "day"
        if sum(usd for _, usd in self._day) >= self.usd_per_day:
            return "usd_day"
        return None

    def record(self, usd: float) -> None:
        now = self.clock()
        self._minute.append(now)
        self._day.append((now, usd))
