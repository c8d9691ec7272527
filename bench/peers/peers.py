"""Running the peers and the candles job on one topic, measured the same way.

The peers run in their own environment ($CANDLEFLOW_CACHE/peers-venv, `make setup-peers`)
as child processes, each printing one JSON line of progress samples; the candles job runs
in this process through bench/candles' machinery. Every run becomes a
`bench.candles.bench.Run`: end-to-end seconds with start-up, the sustained rate over
10 % → 90 % of the input (`SourceProgress`, the rule used for the Flink jobs), the rate per
tenth, and CPU µs per trade over the same span.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters import topics
from bench.candles import thread_cpu
from bench.candles.bench import Run, _env, _source, _timed
from bench.candles.data import production_sinks
from bench.candles.flink_metrics import SourceProgress
from bench.peers.spark_env import cache_dir
from candleflow.config import CandleSettings, StackSettings
from devstack.testing import unique_name
from jobs.candles import CandleJobConfig, build

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class PeerRun:
    run: Run
    startup_s: float | None = None  # launch -> reading trades (JVM, session, query start)
    dropped_late: int | None = None  # trades the peer dropped as late (when it counts them)


def peers_python() -> Path:
    py = cache_dir() / "peers-venv" / "bin" / "python"
    if not py.exists():
        raise SystemExit(f"{py} not found: run `make setup-peers` first")
    return py


def out_topic(s: StackSettings, prefix: str) -> str:
    name = unique_name(prefix)
    topics.ensure_topics(topics.admin(s.bootstrap_servers), [topics.TopicSpec(name)])
    return name


def _child(module: str, args: list[str]) -> tuple[dict[str, Any], float]:
    """Run a peer; returns its JSON report and the wall-clock time it was launched."""
    launched = time.time()
    proc = subprocess.run(
        [str(peers_python()), "-m", module, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{module} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1]), launched


def _run(
    samples: list[tuple[float, int]], cpu: list[dict[int, tuple[str, float]]], trades: int
) -> Run:
    progress = SourceProgress(0, samples=samples, cpu=cpu)
    return Run(
        0.0,
        progress.sustained_rate(trades),
        progress.rate_by_decile(trades),
        progress.cpu_per_trade(trades),
    )


def spark(
    s: StackSettings,
    topic: str,
    trades: int,
    *,
    max_offsets: int,
    min_partitions: int,
    sink_topic: str | None,
    naive: bool = False,
) -> PeerRun:
    """The Spark peer (bench/peers/spark_candles.py); sink_topic None = the noop sink."""
    args = ["--bootstrap", s.bootstrap_servers, "--topic", topic]
    args += ["--max-offsets", str(max_offsets), "--min-partitions", str(min_partitions)]
    if sink_topic:
        args += ["--out-topic", sink_topic]
    if naive:
        args.append("--naive")
    report, launched = _child("bench.peers.spark_candles", args)
    samples, cpu, rows = [], [], 0
    for b in report["samples"]:  # one per micro-batch, at its end
        rows += b["rows"]
        samples.append((b["t"], rows))
        cpu.append({int(tid): (name, secs) for tid, (name, secs) in b["cpu"].items()})
    if rows != trades:
        raise RuntimeError(f"Spark read {rows} trades, expected {trades}")
    run = _run(samples, cpu, trades)
    if run.sustained is None:
        # Fewer than three micro-batches: the 10-90 % slope needs two batch ends inside the
        # input, so take the query's whole processing time (start-up of the query included).
        start = report["start_sample"]
        span = samples[-1][0] - start["t"]
        run.sustained = trades / span
        before = {int(tid): (name, secs) for tid, (name, secs) in start["cpu"].items()}
        run.cpu_us = thread_cpu.per_trade_us(before, cpu[-1], trades)
    run.seconds = report["ended"] - launched
    return PeerRun(run, report["query_started"] - launched)


def plain(s: StackSettings, topic: str, trades: int, sink_topic: str) -> PeerRun:
    """The plain read_committed consumer (bench/peers/plain_candles.py)."""
    args = ["--bootstrap", s.bootstrap_servers, "--topic", topic, "--out-topic", sink_topic]
    report, launched = _child("bench.peers.plain_candles", args)
    if report["rows"] != trades:
        raise RuntimeError(f"the plain consumer read {report['rows']} trades, expected {trades}")
    samples = [(t, n) for t, n, _ in report["samples"]]
    cpu = [{0: ("python consumer", c)} for _, _, c in report["samples"]]
    run = _run(samples, cpu, trades)
    run.seconds = report["ended"] - launched
    return PeerRun(run, report["ready"] - launched, report["late"])


def candles_job(
    s: StackSettings,
    topic: str,
    trades: int,
    *,
    parallelism: int,
    checkpoint_ms: int,
    iceberg: bool,
    intervals: str = "1m",
) -> tuple[Run, str]:
    """Whatever jobs/candles.py is, bounded over `topic`, with exactly-once Kafka sinks (+
    Iceberg silver.candles with `iceberg`; never bronze). Returns (run, candles topic).
    `seconds` counts from here: table environment, planning, the run; the PyFlink gateway
    JVM is started by the first Flink run of the process (the ceiling)."""
    started = time.monotonic()
    sinks, ddl = production_sinks(s, "peers", iceberg)
    config = CandleJobConfig(
        source=_source(s, topic),
        sinks=sinks,
        candles=CandleSettings(intervals=intervals),
        catalog_ddl=ddl,
    )
    env = _env(s, parallelism, checkpoint_ms)
    run = _timed(env, lambda t_env: build(t_env, config), trades)
    run.seconds = time.monotonic() - started
    return run, sinks.candles[0].topic
