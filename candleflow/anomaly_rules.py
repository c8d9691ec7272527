"""Anomaly detectors over candle series: pure, deterministic, no Kafka or Flink.

Two stateful detectors, each fed one candle at a time by the anomalies job (or a test):

- `SeriesDetector`, one per (exchange, symbol, interval): VOLUME_SPIKE, PRICE_MOVE,
  VOLATILITY_SPIKE and GAP, from rolling statistics over the previous N windows.
- `DivergenceDetector`, one per (symbol, interval): CROSS_EXCHANGE_DIVERGENCE between the
  closes of the same symbol on different exchanges at the same window.

Determinism: the statistics of a window use the candles of the N windows *before it in
event time* (by window_start), never "the last N that arrived". A correction (a higher
revision) replaces the stored candle and re-evaluates that window and every later window
still held, emitting a RETRACTED record for an anomaly that no longer holds and an ACTIVE
one for a rule that newly fires; an anomaly that still holds is not emitted again. A
candle whose revision is not higher than the stored one is a no-op, so replaying the same
candles twice emits nothing the second time. See docs/semantics.md "Anomalies".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from candleflow.anomaly_common import (
    ACTIVE,
    ALL_EXCHANGES,
    CROSS_EXCHANGE_DIVERGENCE,
    GAP,
    PRICE_MOVE,
    RETRACTED,
    RULES,
    VOLATILITY_SPIKE,
    VOLUME_SPIKE,
    DetectorConfig,
    _num,
    _severity,
    anomaly_id,
)
from candleflow.domain import Anomaly, Candle
from candleflow.intervals import Interval

# The rule names and config live in anomaly_common.py; callers keep importing them here.
__all__ = [
    "ACTIVE",
    "ALL_EXCHANGES",
    "CROSS_EXCHANGE_DIVERGENCE",
    "DetectorConfig",
    "DivergenceDetector",
    "GAP",
    "PRICE_MOVE",
    "RETRACTED",
    "RULES",
    "SeriesDetector",
    "VOLATILITY_SPIKE",
    "VOLUME_SPIKE",
    "active_after",
    "anomaly_id",
    "detect_all",
]


@dataclass(frozen=True, slots=True)
class _Point:
    """What the series rules need of a candle."""

    window_start_us: int
    window_end_us: int
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    is_empty: bool
    revision: int

    @classmethod
    def of(cls, c: Candle) -> _Point:
        return cls(
            c.window_start_us,
            c.window_end_us,
            c.high,
            c.low,
            c.close,
            c.volume,
            c.is_empty,
            c.revision,
        )

    @property
    def range_ratio(self) -> float:
        return float((self.high - self.low) / self.close) if self.close > 0 else 0.0


def _anomaly_tuple(a: Anomaly) -> tuple[Any, ...]:
    return (
        a.anomaly_id,
        a.rule,
        a.severity,
        a.exchange,
        a.symbol,
        a.interval,
        a.window_start_us,
        a.window_end_us,
        a.value,
        a.threshold,
        a.status,
        a.candle_revision,
        a.details,
    )


# Keyed state is pickled on every candle: plain tuples pickle ~10x faster than slotted
# dataclasses (which go through dataclasses.fields()). The config is not part of the state:
# the owner sets it again after unpickling, so changed thresholds apply after a restore.


def _mean_std(xs: list[float]) -> tuple[float, float]:
    """Population mean and standard deviation, summed in the given (event-time) order."""
    n = len(xs)
    mean = math.fsum(xs) / n
    var = math.fsum((x - mean) ** 2 for x in xs) / n
    return mean, math.sqrt(var)


def _zscore(x: float, xs: list[float]) -> tuple[float, float, float] | None:
    """(z, mean, std) of x against xs; None when the baseline is flat (std 0: no scale)."""
    mean, std = _mean_std(xs)
    if std <= 0.0:
        return None
    return (x - mean) / std, mean, std


def _log_return(p: _Point, prev: _Point | None) -> float | None:
    if prev is None or prev.close <= 0 or p.close <= 0:
        return None
    return math.log(float(p.close / prev.close))


@dataclass
class SeriesDetector:
    """Rolling-statistics rules for one (exchange, symbol, interval) series."""

    exchange: str
    symbol: str
    interval: str
    config: DetectorConfig
    points: dict[int, _Point] = field(default_factory=dict)
    # window_start -> rule -> the ACTIVE anomaly emitted for it (so it is never emitted twice)
    active: dict[int, dict[str, Anomaly]] = field(default_factory=dict)
    ignored_too_old: int = 0

    def __getstate__(self) -> dict[str, Any]:
        return {
            "key": (self.exchange, self.symbol, self.interval),
            # Decimals as text: exact, and far cheaper to pickle than Decimal objects
            "points": {
                w: (
                    p.window_start_us,
                    p.window_end_us,
                    str(p.high),
                    str(p.low),
                    str(p.close),
                    str(p.volume),
                    p.is_empty,
                    p.revision,
                )
                for w, p in self.points.items()
            },
            "active": {
                w: {r: _anomaly_tuple(a) for r, a in rules.items()}
                for w, rules in self.active.items()
            },
            "ignored_too_old": self.ignored_too_old,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.exchange, self.symbol, self.interval = state["key"]
        self.config = None  # type: ignore[assignment]  # set by the owner
        self.points = {
            w: _Point(ws, we, Decimal(hi), Decimal(lo), Decimal(c), Decimal(v), empty, rev)
            for w, (ws, we, hi, lo, c, v, empty, rev) in state["points"].items()
        }
        self.active = {
            w: {r: Anomaly(*t) for r, t in rules.items()} for w, rules in state["active"].items()
        }
        self.ignored_too_old = state["ignored_too_old"]

    @property
    def step_us(self) -> int:
        return Interval.parse(self.interval).micros

    def update(self, candle: Candle) -> list[Anomaly]:
        """Take a final or corrected candle; return the ACTIVE/RETRACTED records to emit."""
        ws = candle.window_start_us
        stored = self.points.get(ws)
        if stored is not None and candle.revision <= stored.revision:
            return []  # a replayed or stale revision: already accounted for
        if self.points and ws <= self._horizon():
            self.ignored_too_old += 1  # older than the state keeps: its later windows are gone
            return []
        self.points[ws] = _Point.of(candle)
        out: list[Anomaly] = []
        for w in sorted(k for k in self.points if k >= ws):
            out.extend(self._reevaluate(w))
        self._prune()
        return out

    def _reevaluate(self, ws: int) -> list[Anomaly]:
        point = self.points[ws]
        fired = self.evaluate(ws)
        before = self.active.get(ws, {})
        out = [a for rule, a in sorted(fired.items()) if rule not in before]
        out += [
            replace(a, status=RETRACTED, candle_revision=point.revision)
            for rule, a in sorted(before.items())
            if rule not in fired
        ]
        kept = {rule: a for rule, a in before.items() if rule in fired}
        kept.update({rule: a for rule, a in fired.items() if rule not in before})
        if kept:
            self.active[ws] = kept
        else:
            self.active.pop(ws, None)
        return out

    def _horizon(self) -> int:
        """Windows at or before this are dropped (and ignored when they arrive late)."""
        keep = self.config.window + self.config.correction_horizon
        return max(self.points) - keep * self.step_us

    def _prune(self) -> None:
        horizon = self._horizon()
        for w in [w for w in self.points if w <= horizon]:
            del self.points[w]
            self.active.pop(w, None)

    def evaluate(self, ws: int) -> dict[str, Anomaly]:
        """Every rule that holds at window `ws`, from the candles held (pure)."""
        cfg, step, p = self.config, self.step_us, self.points[ws]
        fired: dict[str, Anomaly] = {}
        gap = self._gap(ws)
        if gap is not None:
            fired[GAP] = gap
        if p.is_empty:
            return fired
        base = [
            self.points[w]
            for w in range(ws - cfg.window * step, ws, step)
            if w in self.points and not self.points[w].is_empty
        ]
        if len(base) < cfg.min_samples:
            return fired
        n = str(len(base))
        vol = _zscore(float(p.volume), [float(b.volume) for b in base])
        if vol is not None:
            z, mean, std = vol
            sev = _severity(z, cfg.volume_z, cfg.volume_severity, cfg.volume_high)
            if sev:
                ratio = float(p.volume) / mean if mean > 0 else math.inf
                fired[VOLUME_SPIKE] = self._anomaly(
                    VOLUME_SPIKE,
                    sev,
                    p,
                    z,
                    cfg.volume_z,
                    {
                        "volume": _num(p.volume),
                        "mean_volume": _num(mean),
                        "std_volume": _num(std),
                        "ratio": _num(ratio),
                        "samples": n,
                    },
                )
        ret = _log_return(p, self.points.get(ws - step))
        rets = [
            r
            for b in base
            if (r := _log_return(b, self.points.get(b.window_start_us - step))) is not None
        ]
        if ret is not None and len(rets) >= cfg.min_samples:
            move = _zscore(abs(ret), [abs(r) for r in rets])
            pct = (math.exp(ret) - 1.0) * 100.0
            if move is not None and abs(pct) >= cfg.price_pct:
                z, mean, std = move
                sev = _severity(z, cfg.price_z, cfg.price_severity, cfg.price_high)
                if sev:
                    prev = self.points[ws - step]
                    fired[PRICE_MOVE] = self._anomaly(
                        PRICE_MOVE,
                        sev,
                        p,
                        z,
                        cfg.price_z,
                        {
                            "close": _num(p.close),
                            "previous_close": _num(prev.close),
                            "pct_change": _num(pct),
                            "log_return": _num(ret),
                            "mean_abs_log_return": _num(mean),
                            "samples": str(len(rets)),
                        },
                    )
        rng = _zscore(p.range_ratio, [b.range_ratio for b in base])
        if rng is not None:
            z, mean, std = rng
            sev = _severity(z, cfg.volatility_z, cfg.volatility_severity, cfg.volatility_high)
            if sev:
                fired[VOLATILITY_SPIKE] = self._anomaly(
                    VOLATILITY_SPIKE,
                    sev,
                    p,
                    z,
                    cfg.volatility_z,
                    {
                        "high": _num(p.high),
                        "low": _num(p.low),
                        "close": _num(p.close),
                        "range_pct": _num(p.range_ratio * 100),
                        "mean_range_pct": _num(mean * 100),
                        "samples": n,
                    },
                )
        return fired

    def _gap(self, ws: int) -> Anomaly | None:
        """A run of empty windows reaching the threshold fires once, at the window reaching it."""
        cfg, step = self.config, self.step_us
        run, w = 0, ws
        while w in self.points and self.points[w].is_empty and run <= cfg.gap_windows:
            run += 1
            w -= step
        if run != cfg.gap_windows:
            return None
        sev = _severity(float(run), float(cfg.gap_windows), cfg.gap_severity, cfg.gap_high)
        assert sev is not None
        p = self.points[ws]
        return self._anomaly(
            GAP,
            sev,
            p,
            float(run),
            float(cfg.gap_windows),
            {
                "empty_windows": str(run),
                "run_start_us": str(ws - (run - 1) * step),
                "last_close": _num(p.close),
            },
        )

    def _anomaly(
        self,
        rule: str,
        severity: str,
        p: _Point,
        value: float,
        threshold: float,
        details: dict[str, str],
    ) -> Anomaly:
        return Anomaly(
            anomaly_id=anomaly_id(
                rule, self.exchange, self.symbol, self.interval, p.window_start_us
            ),
            rule=rule,
            severity=severity,
            exchange=self.exchange,
            symbol=self.symbol,
            interval=self.interval,
            window_start_us=p.window_start_us,
            window_end_us=p.window_end_us,
            value=round(value, 6),
            threshold=threshold,
            status=ACTIVE,
            candle_revision=p.revision,
            details=details,
        )


@dataclass
class DivergenceDetector:
    """CROSS_EXCHANGE_DIVERGENCE for one (symbol, interval) across exchanges.

    Empty candles are left out: their close is the previous close, a stale price.
    """

    symbol: str
    interval: str
    config: DetectorConfig
    # window_start -> exchange -> (revision, close, window_end, empty)
    closes: dict[int, dict[str, tuple[int, Decimal, int, bool]]] = field(default_factory=dict)
    active: dict[int, Anomaly] = field(default_factory=dict)

    def __getstate__(self) -> dict[str, Any]:
        return {
            "key": (self.symbol, self.interval),
            "closes": {
                w: {
                    ex: (rev, str(close), end, empty) for ex, (rev, close, end, empty) in by.items()
                }
                for w, by in self.closes.items()
            },
            "active": {w: _anomaly_tuple(a) for w, a in self.active.items()},
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.symbol, self.interval = state["key"]
        self.config = None  # type: ignore[assignment]  # set by the owner
        self.closes = {
            w: {
                ex: (rev, Decimal(close), end, empty) for ex, (rev, close, end, empty) in by.items()
            }
            for w, by in state["closes"].items()
        }
        self.active = {w: Anomaly(*t) for w, t in state["active"].items()}

    def update(self, candle: Candle) -> list[Anomaly]:
        ws = candle.window_start_us
        by_exchange = self.closes.setdefault(ws, {})
        stored = by_exchange.get(candle.exchange)
        if stored is not None and candle.revision <= stored[0]:
            return []
        by_exchange[candle.exchange] = (
            candle.revision,
            candle.close,
            candle.window_end_us,
            candle.is_empty,
        )
        fired = self.evaluate(ws)
        before = self.active.get(ws)
        out: list[Anomaly] = []
        if fired is not None and before is None:
            self.active[ws] = fired
            out.append(fired)
        elif fired is None and before is not None:
            del self.active[ws]
            out.append(replace(before, status=RETRACTED, candle_revision=candle.revision))
        self._prune()
        return out

    def evaluate(self, ws: int) -> Anomaly | None:
        cfg = self.config
        live = {
            ex: (close, end)
            for ex, (_, close, end, empty) in self.closes[ws].items()
            if not empty and close > 0
        }
        if len(live) < 2:
            return None
        hi_ex = max(sorted(live), key=lambda ex: live[ex][0])
        lo_ex = min(sorted(live), key=lambda ex: live[ex][0])
        hi, lo = live[hi_ex][0], live[lo_ex][0]
        bps = float((hi - lo) / ((hi + lo) / 2) * 10_000)
        sev = _severity(bps, cfg.divergence_bps, cfg.divergence_severity, cfg.divergence_high)
        if sev is None:
            return None
        details = {f"close_{ex}": _num(live[ex][0]) for ex in sorted(live)}
        details.update({"high_exchange": hi_ex, "low_exchange": lo_ex, "bps": _num(bps)})
        return Anomaly(
            anomaly_id=anomaly_id(
                CROSS_EXCHANGE_DIVERGENCE, ALL_EXCHANGES, self.symbol, self.interval, ws
            ),
            rule=CROSS_EXCHANGE_DIVERGENCE,
            severity=sev,
            exchange=ALL_EXCHANGES,
            symbol=self.symbol,
            interval=self.interval,
            window_start_us=ws,
            window_end_us=live[hi_ex][1],
            value=round(bps, 6),
            threshold=cfg.divergence_bps,
            status=ACTIVE,
            candle_revision=0,
            details=details,
        )

    def _prune(self) -> None:
        step = Interval.parse(self.interval).micros
        horizon = max(self.closes) - 2 * self.config.correction_horizon * step
        for w in [w for w in self.closes if w <= horizon]:
            del self.closes[w]
            self.active.pop(w, None)


def detect_all(candles: list[Candle], config: DetectorConfig | None = None) -> list[Anomaly]:
    """Run both detectors over candles in the given arrival order (tests, batch reference)."""
    cfg = config or DetectorConfig()
    series: dict[tuple[str, str, str], SeriesDetector] = {}
    cross: dict[tuple[str, str], DivergenceDetector] = {}
    out: list[Anomaly] = []
    for c in candles:
        s = series.setdefault(
            (c.exchange, c.symbol, c.interval),
            SeriesDetector(c.exchange, c.symbol, c.interval, cfg),
        )
        out.extend(s.update(c))
        d = cross.setdefault((c.symbol, c.interval), DivergenceDetector(c.symbol, c.interval, cfg))
        out.extend(d.update(c))
    return out


def active_after(events: list[Anomaly]) -> dict[str, Anomaly]:
    """The anomalies still active after a sequence of ACTIVE/RETRACTED events, by id."""
    state: dict[str, Anomaly] = {}
    for a in events:
        if a.status == RETRACTED:
            state.pop(a.anomaly_id, None)
        else:
            state[a.anomaly_id] = a
    return state
