"""What a run left behind, and how a chaos run's outputs compare with the fault-free run's.

`collect` reads every output of the pipeline once the run is quiet: candles.v1,
anomalies.v1 and explanations.v1 read_committed (in partition order), the Iceberg tables
silver.candles, bronze.trades and gold.anomalies, the fake model's calls, and each gRPC
subscriber's received revisions. `compare` checks the chaos run against the baseline and
the input, and counts losses and duplicates per output.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

from adapters import catalog
from candleflow.config import StackSettings, Topics
from candleflow.domain import Anomaly, Candle
from explainer.context import utc
from explainer.service import read_topic_to_end

CandleKey = tuple[str, str, str, int]  # exchange, symbol, interval, window_start_us
Revision = tuple[str, str, str, int, int]  # ... + revision
_DATA = re.compile(r"<data>\n(.*)\n</data>", re.S)


@dataclass
class RunOutputs:
    candles: list[Revision]  # candles.v1 read_committed, partition order
    final_candles: dict[CandleKey, Candle]  # the last revision of each window in candles.v1
    silver: dict[CandleKey, tuple[Any, ...]]  # the current row per window
    silver_written: Counter[Revision]  # rows written per window and revision
    bronze: Counter[int]  # trade_id -> rows in bronze.trades
    anomalies: list[tuple[str, str, int]]  # anomalies.v1: (anomaly_id, status, candle_revision)
    gold: dict[str, tuple[Any, ...]]  # the current row per anomaly_id
    gold_written: Counter[tuple[str, str, int]]  # rows written per (id, status, revision)
    explained: Counter[str]  # explanations.v1 records per anomaly_id
    model_calls: Counter[str]  # calls to the model per anomaly key
    active: set[str]  # anomaly keys whose final status is ACTIVE
    subscribers: dict[str, list[Revision]] = field(default_factory=dict)


def anomaly_key(rule: str, exchange: str, symbol: str, interval: str, window_start: str) -> str:
    """How a model call names its anomaly (the context has no id): rule and window."""
    return f"{rule}|{exchange}|{symbol}|{interval}|{window_start}"


def _key_of(a: Anomaly) -> str:
    return anomaly_key(a.rule, a.exchange, a.symbol, a.interval, utc(a.window_start_us))


def model_call_keys(bodies: list[dict[str, Any]]) -> Counter[str]:
    out: Counter[str] = Counter()
    for body in bodies:
        text = body["messages"][0]["content"]
        if isinstance(text, list):
            text = "".join(b.get("text", "") for b in text)
        found = _DATA.search(text)
        if found is None:
            out["<no data block>"] += 1
            continue
        a = json.loads(found.group(1))["anomaly"]
        out[
            anomaly_key(a["rule"], a["exchange"], a["symbol"], a["interval"], a["window_start"])
        ] += 1
    return out


def _rows(settings: StackSettings, table: str) -> list[tuple[int, dict[str, Any]]]:
    """(data sequence number, row) of every row in the live data files of the table's
    current snapshot. PyIceberg cannot apply the equality deletes of the upsert tables, so
    rows are read from the data files (DuckDB) and resolved by the caller; raw rows also
    show a row written twice, which the upsert would hide."""
    import duckdb

    from adapters import iceberg_files

    tbl = catalog.catalog(settings).load_table(table)
    snapshot = tbl.current_snapshot()
    if snapshot is None:
        return []
    files = iceberg_files.data_files(tbl, snapshot)
    if not files:
        return []
    seq = dict(files)
    con = duckdb.connect()
    try:
        cur = con.execute(
            "SELECT * FROM read_parquet($files, union_by_name = true, filename = true)",
            {"files": [f for f, _ in files]},
        )
        cols = [d[0] for d in cur.description]
        out = []
        for values in cur.fetchall():
            row = dict(zip(cols, values, strict=True))
            out.append((seq[row.pop("filename")], row))
        return out
    finally:
        con.close()


def _latest(rows: list[tuple[int, dict[str, Any]]], key: Any) -> dict[Any, tuple[Any, ...]]:
    """The current row per key of an upsert table: last committed, then highest revision."""
    best: dict[Any, tuple[tuple[int, int], dict[str, Any]]] = {}
    for seq, row in rows:
        k = key(row)
        rank = (seq, int(row.get("revision", row.get("candle_revision", 0)) or 0))
        if k not in best or best[k][0] < rank:
            best[k] = (rank, row)
    return {k: tuple(sorted(r.items())) for k, (_, r) in best.items()}


def _candle_key(row: dict[str, Any]) -> CandleKey:
    ws = row["window_start"]
    if not isinstance(ws, int):
        ws = ws if ws.tzinfo else ws.replace(tzinfo=UTC)
        ws = int(ws.timestamp()) * 1_000_000 + ws.microsecond
    us = ws
    return (row["exchange"], row["symbol"], row["interval"], us)


def read_subscribers(directory: Path) -> dict[str, list[Revision]]:
    out: dict[str, list[Revision]] = {}
    for path in sorted(directory.glob("sub-*.txt")):
        rows = []
        for line in path.read_text().splitlines():
            e, s, i, w, r = line.split()
            rows.append((e, s, i, int(w), int(r)))
        out[path.stem] = rows
    return out


def collect(
    settings: StackSettings, model_bodies: list[dict[str, Any]], subscriber_dir: Path
) -> RunOutputs:
    topics = Topics()
    candles: list[Candle] = read_topic_to_end(settings, topics.candles, "candle", timeout_s=300)
    final: dict[CandleKey, Candle] = {}
    for c in candles:
        k = (c.exchange, c.symbol, c.interval, c.window_start_us)
        if k not in final or final[k].revision < c.revision:
            final[k] = c
    anomalies: list[Anomaly] = read_topic_to_end(settings, topics.anomalies, "anomaly")
    last: dict[str, Anomaly] = {}
    for a in anomalies:
        last[a.anomaly_id] = a
    explanations = read_topic_to_end(settings, topics.explanations, "explanation")
    silver_rows = _rows(settings, "silver.candles")
    gold_rows = _rows(settings, "gold.anomalies")
    bronze: Counter[int] = Counter(r["trade_id"] for _, r in _rows(settings, "bronze.trades"))
    return RunOutputs(
        candles=[
            (c.exchange, c.symbol, c.interval, c.window_start_us, c.revision) for c in candles
        ],
        final_candles=final,
        silver=_latest(silver_rows, _candle_key),
        silver_written=Counter((*_candle_key(r), r["revision"]) for _, r in silver_rows),
        bronze=bronze,
        anomalies=[(a.anomaly_id, a.status, a.candle_revision) for a in anomalies],
        gold=_latest(gold_rows, lambda r: r["anomaly_id"]),
        gold_written=Counter(
            (r["anomaly_id"], r["status"], r["candle_revision"]) for _, r in gold_rows
        ),
        explained=Counter(e.anomaly_id for e in explanations),
        model_calls=model_call_keys(model_bodies),
        active={_key_of(a) for a in last.values() if a.status != "RETRACTED"},
        subscribers=read_subscribers(subscriber_dir),
    )


@dataclass
class Check:
    what: str
    lost: int  # expected but missing (or different)
    duplicated: int  # present more often than expected
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicated == 0


def _counter_diff(want: Counter[Any], got: Counter[Any]) -> tuple[int, int]:
    return sum((want - got).values()), sum((got - want).values())


def _multiset_diff(want: list[Any], got: list[Any]) -> tuple[int, int]:
    w, g = Counter(want), Counter(got)
    lost = sum((w - g).values())
    extra = sum((g - w).values())
    return lost, extra


def _dict_diff(want: dict[Any, Any], got: dict[Any, Any]) -> tuple[int, int, list[str]]:
    missing = [k for k in want if k not in got]
    differ = [k for k in want if k in got and got[k] != want[k]]
    extra = [k for k in got if k not in want]
    examples = [f"missing {k}" for k in missing[:2]] + [f"differs {k}" for k in differ[:2]]
    examples += [f"extra {k}" for k in extra[:2]]
    return len(missing) + len(differ), len(extra), examples


def compare(base: RunOutputs, chaos: RunOutputs, input_ids: set[int]) -> list[Check]:
    checks: list[Check] = []
    # candles.v1: the same revisions, each once, in the same order per market.
    lost, dup = _multiset_diff(base.candles, chaos.candles)
    dup_revs = sum(n - 1 for n in Counter(chaos.candles).values() if n > 1)
    order = _per_market(base.candles) == _per_market(chaos.candles)
    checks.append(
        Check(
            "candles.v1 revisions (read_committed)",
            lost,
            max(dup, dup_revs),
            "same order per market" if order else "ORDER DIFFERS",
        )
    )
    if not order:
        checks[-1].lost = max(checks[-1].lost, 1)
    lost, dup, ex = _dict_diff(base.final_candles, chaos.final_candles)
    checks.append(Check("candles.v1 final revision per window", lost, dup, "; ".join(ex)))
    lost, dup, ex = _dict_diff(base.silver, chaos.silver)
    checks.append(Check("silver.candles current rows", lost, dup, "; ".join(ex)))
    lost, dup = _counter_diff(base.silver_written, chaos.silver_written)
    checks.append(Check("silver.candles rows written", lost, dup))
    missing = len(input_ids - set(chaos.bronze))
    extra = sum(n - 1 for n in chaos.bronze.values() if n > 1) + len(set(chaos.bronze) - input_ids)
    checks.append(
        Check(
            "bronze.trades (every input trade once)", missing, extra, f"{len(input_ids):,} trades"
        )
    )
    lost, dup = _multiset_diff(base.anomalies, chaos.anomalies)
    checks.append(Check("anomalies.v1 records", lost, dup, f"{len(base.anomalies)} records"))
    lost, dup, ex = _dict_diff(base.gold, chaos.gold)
    checks.append(Check("gold.anomalies current rows", lost, dup, "; ".join(ex)))
    lost, dup = _counter_diff(base.gold_written, chaos.gold_written)
    checks.append(Check("gold.anomalies rows written", lost, dup))
    calls = chaos.model_calls
    missing = len(base.active - set(calls))
    extra = sum(n - 1 for n in calls.values() if n > 1) + len(set(calls) - base.active)
    checks.append(
        Check("model calls (one per active anomaly)", missing, extra, f"{len(base.active)} active")
    )
    missing_expl = len({k for k in base.explained} - set(chaos.explained))
    dup_expl = sum(n - 1 for n in chaos.explained.values() if n > 1)
    checks.append(Check("explanations.v1 (one per anomaly)", missing_expl, dup_expl))
    want = _per_market(base.candles)
    bad = []
    lost_total = dup_total = 0
    for name, got in sorted(chaos.subscribers.items()):
        lost, dup = _multiset_diff(base.candles, got)
        if _per_market(got) != want:
            lost = max(lost, 1)
        if lost or dup:
            bad.append(name)
        lost_total += lost
        dup_total += dup
    checks.append(
        Check(
            f"gRPC subscribers ({len(chaos.subscribers)}) saw every revision once, in order",
            lost_total,
            dup_total,
            ("incomplete: " + ", ".join(bad)) if bad else "",
        )
    )
    return checks


def _per_market(rows: list[Revision]) -> dict[tuple[str, str], list[Revision]]:
    out: dict[tuple[str, str], list[Revision]] = {}
    for r in rows:
        out.setdefault((r[0], r[1]), []).append(r)
    return out
