"""The batch reference: what a correct candles job must output, in plain Python.

Two entry points:

- `batch_candles(trades, intervals)`: the simple bounded aggregation (no lateness):
  deduplicate, bucket by event time, one candle per window from each market's first
  to its last trade's window, empty windows flat at the previous close.
- `stream_reference(trades, intervals, settings)`: trades in ARRIVAL order through the
  per-market clock of docs/semantics.md — dedup, the single late decision per
  interval, emission at window end + grace, corrections within the allowed lateness,
  the DLQ beyond it — giving every emitted candle revision and every late trade.

Candle math (shared with the job; see docs/semantics.md):

- open/close: price of the smallest/largest (event_time_us, trade_id); high/low: max/min.
- volume: sum of quantities (contracts for INVERSE).
- quote_volume: sum of each trade's quote amount (`quote_amount`): price x quantity for
  SPOT/LINEAR (exact); quantity x contract_size / price for INVERSE, each trade's amount
  rounded to 18 decimals HALF_UP (the Avro/Iceberg DECIMAL(38,18) scale, Java
  BigDecimal.divide(x, 18, HALF_UP)), then summed exactly.
- trade_count: raw trades (an aggregate trade counts last - first + 1).
- taker_buy_*: volume and quote amount of trades whose taker bought.
- vwap: quote_volume / volume (SPOT/LINEAR); volume x contract_size / quote_volume
  (INVERSE: notional / base volume); 18 decimals HALF_UP; None when empty.
- first/last_trade_id: smallest/largest raw trade id in the window.

Decisions the semantics leave open, made here (the job must match them):

- Dedup has no TTL in the reference (tests stay within the job's TTL).
- A window is emitted when its market's clock reaches window end + grace (`>=`); a
  trade is late for interval i when the clock before it is >= window end + grace(i)
  + allowed lateness.
- Empty windows are flat at the close of the previous non-empty window. When a
  correction (or a new window inserted before already-emitted ones) changes that
  close, or fills a gap, the affected empty windows are (re-)emitted with revision + 1
  (new ones revision 0), so that the last revision of every window always equals
  `batch_candles` over the accepted trades.
- At the end of the input every pending window is emitted (a bounded run's global
  watermark is +infinity); empty windows never extend past a market's last window.
"""

from __future__ import annotations

import decimal
import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from candleflow.config import CandleSettings
from candleflow.domain import Candle, InstrumentKind, LateTrade, Side, Trade
from candleflow.intervals import Interval, parse_intervals

SCALE = Decimal("1E-18")
BEYOND_ALLOWED_LATENESS = "BEYOND_ALLOWED_LATENESS"
# Wide enough that sums and products of DECIMAL(38,18) values are exact.
_CTX = decimal.Context(prec=80, rounding=decimal.ROUND_HALF_UP, Emax=999, Emin=-999)
_ZERO = Decimal(0)

WindowKey = tuple[str, str, str, int]  # exchange, symbol, interval, window_start_us


def quote_amount(trade: Trade) -> Decimal:
    """A trade's contribution to quote_volume (base-asset amount for INVERSE)."""
    if trade.kind is InstrumentKind.INVERSE and trade.contract_size is None:
        raise ValueError(f"INVERSE trade {trade.trade_id} has no contract_size")
    return trade.quote_quantity  # the math lives in the domain, one definition


def _raw_ids(trade: Trade) -> tuple[int, int]:
    first = trade.first_trade_id if trade.first_trade_id is not None else trade.trade_id
    last = trade.last_trade_id if trade.last_trade_id is not None else trade.trade_id
    return first, last


@dataclass(slots=True)
class _Acc:
    """A window's aggregate; independent of the order trades are added in."""

    open_key: tuple[int, int]
    open: Decimal
    close_key: tuple[int, int]
    close: Decimal
    high: Decimal
    low: Decimal
    volume: Decimal
    quote: Decimal
    count: int
    buy_volume: Decimal
    buy_quote: Decimal
    first_id: int
    last_id: int
    kind: InstrumentKind
    contract_size: Decimal | None

    @classmethod
    def of(cls, t: Trade, quote: Decimal) -> _Acc:
        key = (t.event_time_us, t.trade_id)
        buy = t.side is Side.BUY
        first, last = _raw_ids(t)
        return cls(
            key,
            t.price,
            key,
            t.price,
            t.price,
            t.price,
            t.quantity,
            quote,
            t.trade_count,
            t.quantity if buy else _ZERO,
            quote if buy else _ZERO,
            first,
            last,
            t.kind,
            t.contract_size,
        )

    def add(self, t: Trade, quote: Decimal) -> None:
        key = (t.event_time_us, t.trade_id)
        if key < self.open_key:
            self.open_key, self.open = key, t.price
        if key > self.close_key:
            self.close_key, self.close = key, t.price
        self.high = max(self.high, t.price)
        self.low = min(self.low, t.price)
        self.volume = _CTX.add(self.volume, t.quantity)
        self.quote = _CTX.add(self.quote, quote)
        self.count += t.trade_count
        if t.side is Side.BUY:
            self.buy_volume = _CTX.add(self.buy_volume, t.quantity)
            self.buy_quote = _CTX.add(self.buy_quote, quote)
        first, last = _raw_ids(t)
        self.first_id = min(self.first_id, first)
        self.last_id = max(self.last_id, last)

    def vwap(self) -> Decimal:
        if self.kind is InstrumentKind.INVERSE:
            assert self.contract_size is not None
            notional = _CTX.multiply(self.volume, self.contract_size)
            return _CTX.divide(notional, self.quote).quantize(SCALE, context=_CTX)
        return _CTX.divide(self.quote, self.volume).quantize(SCALE, context=_CTX)

    def candle(
        self, exchange: str, symbol: str, interval: Interval, start: int, revision: int
    ) -> Candle:
        return Candle(
            exchange,
            symbol,
            interval.name,
            start,
            start + interval.micros,
            self.open,
            self.high,
            self.low,
            self.close,
            self.volume,
            self.quote,
            self.count,
            self.buy_volume,
            self.buy_quote,
            self.vwap(),
            self.first_id,
            self.last_id,
            revision,
            False,
        )


def empty_candle(
    exchange: str,
    symbol: str,
    interval: Interval,
    start: int,
    previous_close: Decimal,
    revision: int = 0,
) -> Candle:
    """A window without trades: flat at the previous close, zero volume."""
    p = previous_close
    return Candle(
        exchange,
        symbol,
        interval.name,
        start,
        start + interval.micros,
        p,
        p,
        p,
        p,
        _ZERO,
        _ZERO,
        0,
        _ZERO,
        _ZERO,
        None,
        None,
        None,
        revision,
        True,
    )


def _intervals(intervals: Sequence[Interval] | str | Sequence[str]) -> list[Interval]:
    if isinstance(intervals, str):
        return parse_intervals(intervals)
    return [i if isinstance(i, Interval) else Interval.parse(i) for i in intervals]


def _series(
    exchange: str, symbol: str, interval: Interval, windows: dict[int, _Acc], emit_empty: bool
) -> list[Candle]:
    """Candles of one market and interval from its first to its last non-empty window."""
    out: list[Candle] = []
    previous: _Acc | None = None
    for start in sorted(windows):
        acc = windows[start]
        if previous is not None and emit_empty:
            gap = out[-1].window_start_us + interval.micros
            while gap < start:
                out.append(empty_candle(exchange, symbol, interval, gap, previous.close))
                gap += interval.micros
        out.append(acc.candle(exchange, symbol, interval, start, 0))
        previous = acc
    return out


def dedup(trades: Iterable[Trade]) -> list[Trade]:
    """Trades with a new (exchange, symbol, trade_id), in order: the first arrival wins."""
    seen: set[tuple[str, str, int]] = set()
    out = []
    for t in trades:
        key = (t.exchange, t.symbol, t.trade_id)
        if key not in seen:
            seen.add(key)
            out.append(t)
    return out


def batch_candles(
    trades: Iterable[Trade],
    intervals: Sequence[Interval] | str | Sequence[str],
    *,
    emit_empty: bool = True,
) -> list[Candle]:
    """The bounded aggregation, no lateness: revision 0, sorted by key."""
    ivs = _intervals(intervals)
    windows: dict[tuple[str, str, Interval], dict[int, _Acc]] = {}
    for t in dedup(trades):
        quote = quote_amount(t)  # once per trade, not per interval
        for iv in ivs:
            per = windows.setdefault((t.exchange, t.symbol, iv), {})
            start = iv.window_start(t.event_time_us)
            acc = per.get(start)
            if acc is None:
                per[start] = _Acc.of(t, quote)
            else:
                acc.add(t, quote)
    out: list[Candle] = []
    for (exchange, symbol, iv), per in windows.items():
        out.extend(_series(exchange, symbol, iv, per, emit_empty))
    return sorted(out, key=candle_key)


def candle_key(c: Candle) -> WindowKey:
    return (c.exchange, c.symbol, c.interval, c.window_start_us)


@dataclass
class ReferenceResult:
    emissions: list[Candle] = field(default_factory=list)  # in emission order
    late: list[LateTrade] = field(default_factory=list)  # in arrival order
    duplicates: list[Trade] = field(default_factory=list)
    accepted: list[Trade] = field(default_factory=list)  # deduplicated, arrival order

    def final(self) -> dict[WindowKey, Candle]:
        """Last revision of each window."""
        out: dict[WindowKey, Candle] = {}
        for c in self.emissions:
            key = candle_key(c)
            if key not in out or out[key].revision < c.revision:
                out[key] = c
        return out

    def final_candles(self) -> list[Candle]:
        return sorted(self.final().values(), key=candle_key)

    def late_for(self, interval: str) -> list[LateTrade]:
        return [lt for lt in self.late if lt.interval == interval]


@dataclass
class _Series:
    """One market and interval in the streaming reference."""

    market: tuple[str, str]
    interval: Interval
    emit_empty: bool
    windows: dict[int, _Acc] = field(default_factory=dict)
    # Emitted candles by window start (last revision), empty ones included.
    emitted: dict[int, Candle] = field(default_factory=dict)
    pending: list[int] = field(default_factory=list)  # heap of non-empty, not emitted
    lo: int | None = None  # first and last emitted window start
    hi: int | None = None

    def _emit(self, candle: Candle, out: list[Candle]) -> None:
        self.emitted[candle.window_start_us] = candle
        out.append(candle)

    def _fill(self, start: int, stop: int, price: Decimal, out: list[Candle]) -> None:
        """Empty windows in [start, stop), flat at `price`: new ones or re-priced ones."""
        if not self.emit_empty:
            return
        exchange, symbol = self.market
        for st in range(start, stop, self.interval.micros):
            old = self.emitted.get(st)
            if old is None:
                self._emit(empty_candle(exchange, symbol, self.interval, st, price), out)
            elif old.is_empty and old.close != price:
                self._emit(
                    empty_candle(exchange, symbol, self.interval, st, price, old.revision + 1), out
                )

    def _following_empties_end(self, start: int) -> int:
        """End of the run of emitted empty windows right after `start`."""
        st = start + self.interval.micros
        while st in self.emitted and self.emitted[st].is_empty:
            st += self.interval.micros
        return st

    def add(self, t: Trade, quote: Decimal, out: list[Candle]) -> None:
        start = self.interval.window_start(t.event_time_us)
        acc = self.windows.get(start)
        if acc is None:
            acc = self.windows[start] = _Acc.of(t, quote)
            if start not in self.emitted:  # an emitted empty window is corrected below
                heapq.heappush(self.pending, start)
        else:
            acc.add(t, quote)
        old = self.emitted.get(start)
        if old is None:
            return
        # A correction: this window at once, then the empties after it re-priced.
        exchange, symbol = self.market
        self._emit(acc.candle(exchange, symbol, self.interval, start, old.revision + 1), out)
        self._fill(start + self.interval.micros, self._following_empties_end(start), acc.close, out)

    def emit_due(self, due_start_below: int | None, out: list[Candle]) -> None:
        """Emit pending windows starting before `due_start_below` (all when None)."""
        exchange, symbol = self.market
        micros = self.interval.micros
        while self.pending and (due_start_below is None or self.pending[0] < due_start_below):
            start = heapq.heappop(self.pending)
            acc = self.windows[start]
            if self.hi is not None and start > self.hi:
                self._fill(self.hi + micros, start, self.emitted[self.hi].close, out)
            self._emit(acc.candle(exchange, symbol, self.interval, start, 0), out)
            if self.lo is not None and start < self.lo:
                # A window before the market's first emitted one: fill the gap after it.
                self._fill(start + micros, self.lo, acc.close, out)
            self.lo = start if self.lo is None else min(self.lo, start)
            self.hi = start if self.hi is None else max(self.hi, start)


def stream_reference(
    trades: Iterable[Trade],
    intervals: Sequence[Interval] | str | Sequence[str] | None = None,
    settings: CandleSettings | None = None,
) -> ReferenceResult:
    """What the streaming job emits for `trades` in arrival order (docs/semantics.md)."""
    settings = settings or CandleSettings()
    ivs = _intervals(intervals if intervals is not None else settings.intervals)
    grace = {iv: settings.grace_us(iv.name) for iv in ivs}
    lateness = settings.allowed_lateness_us
    emit_empty = settings.emit_empty_windows
    series: dict[tuple[str, str], list[_Series]] = {}
    clocks: dict[tuple[str, str], int] = {}
    seen: set[tuple[str, str, int]] = set()
    result = ReferenceResult()
    out = result.emissions
    for t in trades:
        ident = (t.exchange, t.symbol, t.trade_id)
        if ident in seen:
            result.duplicates.append(t)
            continue
        seen.add(ident)
        result.accepted.append(t)
        quote = quote_amount(t)
        market = (t.exchange, t.symbol)
        if market not in series:
            series[market] = [_Series(market, iv, emit_empty) for iv in ivs]
        clock_before = clocks.get(market)
        clock = t.event_time_us if clock_before is None else max(clock_before, t.event_time_us)
        clocks[market] = clock
        for s in series[market]:
            iv = s.interval
            start = iv.window_start(t.event_time_us)
            # The single late decision (docs/semantics.md step 2), against the clock
            # before this trade (t is inside its own window, so after would agree).
            if (
                clock_before is not None
                and clock_before >= start + iv.micros + grace[iv] + lateness
            ):
                result.late.append(
                    LateTrade(t, iv.name, start, BEYOND_ALLOWED_LATENESS, clock_before)
                )
                continue
            s.add(t, quote, out)
            # Step 3: every window with end + grace <= clock, i.e. start < clock - grace
            # - micros + 1.
            s.emit_due(clock - grace[iv] - iv.micros + 1, out)
    for per_market in series.values():  # end of input: a bounded run flushes everything
        for s in per_market:
            s.emit_due(None, out)
    return result
