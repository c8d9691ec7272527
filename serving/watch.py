"""`candleflow watch`: a live terminal candlestick chart with volume, anomalies and their
explanations; plain text lines when stdout is not a terminal.

`render` is a pure function of the state (tested without a terminal); `watch` runs the
two resuming streams (candles, anomalies) and redraws with rich.Live.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from candleflow.domain import Candle
from serving import convert
from serving.client import MarketDataClient

BLOCKS = " ▁▂▃▄▅▆▇█"


@dataclass
class WatchState:
    symbol: str
    interval: str
    candles: dict[tuple[str, int], Candle] = field(default_factory=dict)
    anomalies: dict[str, Any] = field(default_factory=dict)  # id -> AnomalyWithExplanation
    corrections: int = 0
    status: str = "connecting"

    def add_candle(self, c: Candle) -> bool:
        """Keep the latest revision per window; True if it changed the state."""
        key = (c.exchange, c.window_start_us)
        old = self.candles.get(key)
        if old is not None and old.revision >= c.revision:
            return False
        if old is not None:
            self.corrections += 1
        self.candles[key] = c
        return True

    def add_anomaly(self, msg: Any) -> None:
        prev = self.anomalies.get(msg.anomaly.anomaly_id)
        if prev is not None and not msg.anomaly.rule:
            prev.explanation.CopyFrom(msg.explanation)
        else:
            self.anomalies[msg.anomaly.anomaly_id] = msg

    def series(self) -> list[Candle]:
        return [self.candles[k] for k in sorted(self.candles, key=lambda k: (k[1], k[0]))]


def _ts(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, tz=UTC).strftime("%Y-%m-%d %H:%M")


def line(c: Candle) -> str:
    """One candle as a plain text line (non-terminal output)."""
    d = convert.dec_str
    return (
        f"{_ts(c.window_start_us)} {c.exchange} {c.symbol} {c.interval} O={d(c.open)} "
        f"H={d(c.high)} L={d(c.low)} C={d(c.close)} V={d(c.volume)} n={c.trade_count} "
        f"rev={c.revision}"
    )


def anomaly_line(msg: Any) -> str:
    a, e = msg.anomaly, msg.explanation
    text = e.summary if e.summary else "(explanation pending)"
    return f"ANOMALY {_ts(a.window_start_us)} {a.symbol} {a.interval} {a.rule} {a.severity}: {text}"


def chart(candles: list[Candle], width: int, height: int = 16, vol_rows: int = 4) -> Text:
    """Candlesticks (one column each, newest right), a price axis and volume bars."""
    cols = max(1, (width - 14) // 2)
    shown = candles[-cols:]
    out = Text()
    if not shown:
        return Text("waiting for candles…", style="dim")
    lo = min(c.low for c in shown)
    hi = max(c.high for c in shown)
    span = (hi - lo) or Decimal(1)

    def row_of(price: Decimal) -> int:  # 0 = top
        return int((hi - price) / span * (height - 1))

    for r in range(height):
        for c in shown:
            top, bottom = row_of(c.high), row_of(c.low)
            body_top, body_bottom = sorted((row_of(c.open), row_of(c.close)))
            style = "green" if c.close >= c.open else "red"
            if c.is_empty:
                ch, style = ("─" if r == row_of(c.close) else " "), "grey50"
            elif body_top <= r <= body_bottom:
                ch = "█"
            elif top <= r <= bottom:
                ch = "│"
            else:
                ch = " "
            out.append(ch + " ", style=style)
        if r in (0, height // 2, height - 1):
            price = hi - span * Decimal(r) / Decimal(height - 1)
            out.append(f" {price:.2f}", style="cyan")
        out.append("\n")
    vmax = max(c.volume for c in shown) or Decimal(1)
    for r in range(vol_rows):
        for c in shown:
            level = float(c.volume / vmax) * vol_rows - (vol_rows - 1 - r)
            idx = max(0, min(8, int(level * 8)))
            out.append(BLOCKS[idx] + " ", style="blue")
        if r == 0:
            out.append(f" vol {convert.dec_str(vmax)}", style="blue")
        out.append("\n")
    return out


def render(state: WatchState, width: int = 100) -> Group:
    series = state.series()
    last = series[-1] if series else None
    title = f"{state.symbol} {state.interval}"
    if last is not None:
        title += (
            f"  close {convert.dec_str(last.close)}  at {_ts(last.window_start_us)}  "
            f"rev {last.revision}"
        )
    sub = f"{len(series)} candles, {state.corrections} corrections · {state.status}"
    table = Table(show_header=True, header_style="bold", expand=True, box=None)
    for col in ("time", "rule", "sev", "explanation"):
        table.add_column(col, overflow="fold")
    for msg in list(state.anomalies.values())[-5:]:
        a, e = msg.anomaly, msg.explanation
        table.add_row(
            _ts(a.window_start_us),
            a.rule,
            a.severity,
            e.summary or Text("explaining…", style="dim"),
        )
    return Group(
        Panel(chart(series, width - 4), title=title, subtitle=sub), Panel(table, title="anomalies")
    )


async def watch(
    client: MarketDataClient,
    symbol: str,
    interval: str,
    *,
    start_time_us: int | None = None,
    plain: bool | None = None,
    max_candles: int | None = None,
    out: TextIO | None = None,
    until: Callable[[WatchState], bool] | None = None,
) -> WatchState:
    """Run until cancelled, `max_candles` candle events arrived, or `until(state)`."""
    out = out or sys.stdout
    plain = (not out.isatty()) if plain is None else plain
    state = WatchState(symbol, interval)
    done = asyncio.Event()
    count = 0

    async def candles() -> None:
        nonlocal count
        async for ev in client.stream_candles([symbol], [interval], start_time_us=start_time_us):
            state.status = "live" if not ev.replay else "replaying"
            if not ev.HasField("candle"):
                continue
            c = convert.candle_from_pb(ev.candle)
            if state.add_candle(c) and plain:
                print(line(c), file=out, flush=True)
            count += 1
            if (max_candles is not None and count >= max_candles) or (until and until(state)):
                done.set()

    async def anomalies() -> None:
        async for ev in client.stream_anomalies([symbol], start_time_us=start_time_us):
            msg = (
                ev.anomaly
                if ev.HasField("anomaly")
                else (ev.explanation_update if ev.HasField("explanation_update") else None)
            )
            if msg is None:
                continue
            state.add_anomaly(msg)
            if plain:
                print(anomaly_line(msg), file=out, flush=True)
            if until and until(state):
                done.set()

    tasks = [asyncio.create_task(candles()), asyncio.create_task(anomalies())]
    try:
        if plain:
            await done.wait()
        else:
            console = Console(file=out)
            with Live(render(state, console.width), console=console, refresh_per_second=4) as live:
                while not done.is_set():
                    live.update(render(state, console.width))
                    await asyncio.sleep(0.25)
                live.update(render(state, console.width))
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return state
