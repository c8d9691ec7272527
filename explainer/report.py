"""Anomalies with their explanations, read from anomalies.v1 and explanations.v1 (for the
demo and `candleflow explainer show`)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from candleflow.anomaly_rules import active_after
from candleflow.config import StackSettings, Topics
from candleflow.domain import Anomaly, Explanation
from explainer.context import utc
from explainer.service import read_topic_to_end


@dataclass(frozen=True)
class Explained:
    anomaly: Anomaly  # its last record (status ACTIVE or RETRACTED)
    explanation: Explanation | None


def explained_anomalies(stack: StackSettings, topics: Topics) -> list[Explained]:
    """Every anomaly id with its final status and its explanation (if written yet)."""
    events: list[Anomaly] = read_topic_to_end(stack, topics.anomalies, "anomaly")
    last: dict[str, Anomaly] = {a.anomaly_id: a for a in events}
    active = active_after(events)
    explanations = {
        e.anomaly_id: e for e in read_topic_to_end(stack, topics.explanations, "explanation")
    }
    out = [Explained(last[i], explanations.get(i)) for i in last]
    out.sort(key=lambda x: (x.anomaly.window_start_us, x.anomaly.rule, x.anomaly.symbol))
    assert all((x.anomaly.anomaly_id in active) == (x.anomaly.status != "RETRACTED") for x in out)
    return out


def wait_for_explanations(
    stack: StackSettings, topics: Topics, timeout_s: float = 60.0, settle_s: float = 15.0
) -> list[Explained]:
    """Poll until every ACTIVE anomaly has its explanation (and no new anomaly appeared for
    `settle_s`), or the timeout: the demo calls this before showing the table."""
    deadline = time.monotonic() + timeout_s
    seen, stable_since = -1, time.monotonic()
    while True:
        rows = explained_anomalies(stack, topics)
        if len(rows) != seen:
            seen, stable_since = len(rows), time.monotonic()
        pending = [x for x in rows if x.anomaly.status != "RETRACTED" and x.explanation is None]
        settled = time.monotonic() - stable_since >= settle_s
        if (not pending and rows and settled) or time.monotonic() > deadline:
            return rows
        time.sleep(2.0)


def render(rows: list[Explained], console: Console | None = None, limit: int = 50) -> None:
    table = Table(title=f"Anomalies and explanations ({len(rows)})", show_lines=True)
    for col in ("window (UTC)", "market", "rule", "severity", "status", "explanation"):
        table.add_column(col, overflow="fold")
    for x in rows[-limit:]:
        a, e = x.anomaly, x.explanation
        text = (
            "(not explained yet)"
            if e is None
            else (
                f"{e.summary}\n[dim]{'offline' if e.offline else e.model}, "
                f"confidence {e.confidence:.2f}[/dim]"
            )
        )
        table.add_row(
            utc(a.window_start_us)[:-4],
            f"{a.exchange} {a.symbol} {a.interval}",
            a.rule,
            a.severity,
            a.status,
            text,
        )
    (console or Console()).print(table)
