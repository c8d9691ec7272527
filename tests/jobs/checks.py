"""Checks of a run's output, per market, so a batched run names the scenarios that fail.

`problems` maps a market (exchange, symbol) to what is wrong with it. Conservation is checked
from the trades, independently of candleflow.reference: per market, interval and window, the
final candle holds exactly the accepted trades of that window that are not in the DLQ for
that interval (count, volume, first and last raw id), every window with such trades has a
candle, and every DLQ row is an accepted trade, once per interval.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import astuple, fields

from candleflow.domain import Candle, LateTrade, Trade
from candleflow.intervals import Interval

Market = tuple[str, str]
WindowKey = tuple[str, str, str, int]
Problems = dict[Market, list[str]]

_FIELDS = [f.name for f in fields(Candle)]


def window_key(c: Candle) -> WindowKey:
    return (c.exchange, c.symbol, c.interval, c.window_start_us)


def final(candles: Iterable[Candle]) -> dict[WindowKey, Candle]:
    """The last revision of each window."""
    out: dict[WindowKey, Candle] = {}
    for c in candles:
        k = window_key(c)
        if k not in out or out[k].revision < c.revision:
            out[k] = c
    return out


def compare_final(got: dict[WindowKey, Candle], want: dict[WindowKey, Candle], p: Problems):
    """Field by field; revisions are compared only where `want` has them."""
    for k in sorted(set(got) | set(want)):
        market = k[:2]
        if k not in got:
            p[market].append(f"missing window {k[2:]}: {want[k]}")
        elif k not in want:
            p[market].append(f"extra window {k[2:]}: {got[k]}")
        else:
            diff = [
                f"{name}={a!r} want {b!r}"
                for name, a, b in zip(_FIELDS, astuple(got[k]), astuple(want[k]), strict=True)
                if name != "revision" and a != b
            ]
            if diff:
                p[market].append(f"window {k[2:]}: {', '.join(diff)}")


def revisions_contiguous(candles: Iterable[Candle], p: Problems) -> None:
    """Each window's emissions carry revisions 0, 1, 2, ... each once."""
    seen: dict[WindowKey, list[int]] = defaultdict(list)
    for c in candles:
        seen[window_key(c)].append(c.revision)
    for k, revs in seen.items():
        if sorted(revs) != list(range(len(revs))):
            p[k[:2]].append(f"window {k[2:]}: revisions {sorted(revs)}")


def conservation(
    accepted: Iterable[Trade],
    finals: dict[WindowKey, Candle],
    late: Iterable[LateTrade],
    intervals: Iterable[str],
    p: Problems,
) -> None:
    """Every accepted trade is in exactly one candle per interval or in the DLQ for that
    interval: never both, never neither (docs/semantics.md, Conservation)."""
    ivs = [Interval.parse(i) for i in intervals]
    by_id = {(t.exchange, t.symbol, t.trade_id): t for t in accepted}
    dlq: dict[tuple[str, str, int, str], int] = defaultdict(int)
    for lt in late:
        t = lt.trade
        dlq[(t.exchange, t.symbol, t.trade_id, lt.interval)] += 1
        if (t.exchange, t.symbol, t.trade_id) not in by_id:
            p[(t.exchange, t.symbol)].append(f"DLQ row of a trade never accepted: {lt}")
    for k, n in dlq.items():
        if n > 1:
            p[k[:2]].append(f"trade {k[2]} in the DLQ {n} times for {k[3]}")
    # (count, volume, first raw id, last raw id) per window from the trades themselves.
    want: dict[WindowKey, list] = {}
    for (exchange, symbol, tid), t in by_id.items():
        first = t.first_trade_id if t.first_trade_id is not None else tid
        last = t.last_trade_id if t.last_trade_id is not None else tid
        for iv in ivs:
            if (exchange, symbol, tid, iv.name) in dlq:
                continue
            k = (exchange, symbol, iv.name, iv.window_start(t.event_time_us))
            acc = want.setdefault(k, [0, 0, first, last])
            acc[0] += t.trade_count
            acc[1] += t.quantity
            acc[2], acc[3] = min(acc[2], first), max(acc[3], last)
    for k, (count, volume, first, last) in want.items():
        c = finals.get(k)
        got = None if c is None else [c.trade_count, c.volume, c.first_trade_id, c.last_trade_id]
        if got != [count, volume, first, last]:
            want_row = [count, volume, first, last]
            p[k[:2]].append(
                f"window {k[2:]}: trades (count, volume, first, last) {want_row} but candle {got}"
            )
    for k, c in finals.items():
        if k not in want and (c.trade_count or not c.is_empty):
            p[k[:2]].append(f"window {k[2:]} has a candle with trades no accepted trade made: {c}")


def late_key(lt: LateTrade) -> tuple:
    t = lt.trade
    return (t.exchange, t.symbol, t.trade_id, lt.interval, lt.window_start_us, lt.watermark_us)


def compare_late(got: Iterable[LateTrade], want: Iterable[LateTrade], p: Problems) -> None:
    g, w = sorted(map(late_key, got)), sorted(map(late_key, want))
    if g != w:
        for k in sorted(set(g) ^ set(w)):
            p[k[:2]].append(f"DLQ {'extra' if k in set(g) else 'missing'}: {k[2:]}")


def report(p: Problems, header: str, limit: int = 8) -> str:
    lines = [f"{header}: {len(p)} market(s) wrong"]
    for market in sorted(p)[:limit]:
        lines.append(f"  {market}:")
        lines.extend(f"    {line}" for line in p[market][:6])
    return "\n".join(lines)
