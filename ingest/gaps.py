"""Trade-id continuity per (exchange, symbol): find gaps, drop what was already sent.

Exchanges number a market's trades without holes (Binance trade/agg ids, Coinbase
trade_id per product, Kraken v2 trade_id per book), so a jump in the ids means trades
were lost: in-stream (a dropped frame) or across a reconnect. Memory is bounded: per
market only the high-water id and the list of still-missing id ranges are kept. An id
at or below the high-water mark that is not in a missing range was already produced,
so a snapshot replayed after a reconnect, a duplicate frame or a backfill page that
overlaps what arrived live is not produced twice within the process lifetime (the
Flink job deduplicates by id across restarts).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from candleflow.domain import Trade

MAX_RANGES_PER_MARKET = 256  # beyond this the oldest missing range is given up on


@dataclass(slots=True)
class Gap:
    exchange: str
    symbol: str
    first_id: int  # inclusive
    last_id: int  # inclusive
    after_time_us: int  # time of the trade just before the gap (Kraken pages by time)

    @property
    def size(self) -> int:
        return self.last_id - self.first_id + 1


@dataclass(slots=True)
class _Market:
    high: int
    high_time_us: int
    missing: list[list[int]] = field(default_factory=list)  # sorted [lo, hi] ranges


class GapTracker:
    def __init__(self, max_ranges: int = MAX_RANGES_PER_MARKET) -> None:
        self._markets: dict[tuple[str, str], _Market] = {}
        self.max_ranges = max_ranges
        self.given_up = 0  # ids dropped from tracking because too many ranges were open

    def observe(self, trade: Trade) -> tuple[bool, Gap | None]:
        """(is this trade new, the gap it revealed if any)."""
        key = (trade.exchange, trade.symbol)
        market = self._markets.get(key)
        tid = trade.trade_id
        if market is None:
            self._markets[key] = _Market(tid, trade.event_time_us)
            return True, None
        if tid == market.high + 1:
            market.high, market.high_time_us = tid, trade.event_time_us
            return True, None
        if tid > market.high:
            gap = Gap(trade.exchange, trade.symbol, market.high + 1, tid - 1, market.high_time_us)
            market.missing.append([gap.first_id, gap.last_id])
            if len(market.missing) > self.max_ranges:
                lo, hi = market.missing.pop(0)
                self.given_up += hi - lo + 1
            market.high, market.high_time_us = tid, trade.event_time_us
            return True, gap
        return self._fill(market, tid), None

    @staticmethod
    def _fill(market: _Market, tid: int) -> bool:
        for i, (lo, hi) in enumerate(market.missing):
            if lo <= tid <= hi:
                if lo == hi:
                    del market.missing[i]
                elif tid == lo:
                    market.missing[i][0] = lo + 1
                elif tid == hi:
                    market.missing[i][1] = hi - 1
                else:
                    market.missing[i : i + 1] = [[lo, tid - 1], [tid + 1, hi]]
                return True
        return False

    def missing_in(self, exchange: str, symbol: str, first_id: int, last_id: int) -> list[int]:
        """The ids of [first_id, last_id] still missing."""
        market = self._markets.get((exchange, symbol))
        if market is None:
            return []
        out: list[int] = []
        for lo, hi in market.missing:
            out.extend(range(max(lo, first_id), min(hi, last_id) + 1))
        return out

    def give_up(self, exchange: str, symbol: str, first_id: int, last_id: int) -> int:
        """Stop waiting for [first_id, last_id] (REST did not have them); how many ids."""
        market = self._markets.get((exchange, symbol))
        if market is None:
            return 0
        dropped, kept = 0, []
        for lo, hi in market.missing:
            cut_lo, cut_hi = max(lo, first_id), min(hi, last_id)
            if cut_lo > cut_hi:
                kept.append([lo, hi])
                continue
            dropped += cut_hi - cut_lo + 1
            if lo < cut_lo:
                kept.append([lo, cut_lo - 1])
            if cut_hi < hi:
                kept.append([cut_hi + 1, hi])
        market.missing = kept
        return dropped

    def high_water(self, exchange: str, symbol: str) -> int | None:
        market = self._markets.get((exchange, symbol))
        return None if market is None else market.high
