"""Candles job: sustained throughput with its ceiling, and close-to-visible latency, in one run.

1. Produce N real trades (the COIN-M day, repeated on following days with shifted ids) to a
   fresh 1-partition topic (or reuse one with --topic).
2. Ceiling: a Flink job reading that topic (the same Avro/registry source) into a blackhole.
3. Floor (unless --no-iceberg): every trade written to Iceberg `bronze.trades` (append,
   committed on checkpoints) straight from the same source, no dedup, times cast at ms
   precision (the cheapest): what landing raw trades costs at least on this machine.
4. The bronze job (unless --no-iceberg, jobs/bronze.py): the same landing, deduplicated by
   trade id and with exact µs times, compared with the floor.
5. The candles job with exactly-once Kafka sinks (+ Iceberg silver unless --no-iceberg),
   bounded over the same topic, compared with the ceiling.
   For 2-5, the sustained rate is read from the job's own REST metrics (source records/s
   between 10 % and 90 % of the input, bench/candles/flink_metrics.py); the end-to-end time
   with start-up is printed too.
6. Latency (unless --no-latency): the same job unbounded, trades produced live for several
   markets; p50/p99 from a window's close + grace to its first revision being visible to a
   read_committed consumer (bench/candles/latency.py).

Run: .venv/bin/python -m bench.candles.bench --trades 1000000
(uses the shared test stack: Kafka + registry, started if it is not running).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from adapters import topics
from bench.candles import bronze_sql
from bench.candles.data import bronze_sink, produce, production_sinks
from bench.candles.flink_metrics import SourceProgress, free_port, rest_options
from bench.candles.latency import describe, run_latency
from candleflow.config import CandleSettings, StackSettings
from devstack.testing import unique_name
from jobs import bronze
from jobs.candle_tables import TRADE_COLUMNS, KafkaSource
from jobs.candles import CandleJobConfig, build
from jobs.flink_env import make_table_env


@dataclass
class Run:
    seconds: float  # end to end, start-up included
    sustained: float | None  # source records/s over the middle of the run
    deciles: list[float | None] = field(default_factory=list)  # records/s per tenth
    cpu_us: dict[str, float] = field(default_factory=dict)  # JVM CPU µs/trade by threads
    # The steady state: STEADY (50 % → 90 % of the input), once the JIT has compiled the hot
    # paths. A short run spends much of 10 → 50 % warming up (the JIT line of cpu_us).
    steady: float | None = None
    steady_cpu_us: dict[str, float] = field(default_factory=dict)


STEADY = (0.5, 0.9)
RUNS = ("ceiling", "floor", "bronze-sql", "bronze", "job")


def _timed(t_env_factory, submit, trades: int) -> Run:
    port = free_port()
    # A job that keeps failing fails the bench instead of restarting for ever (a few
    # restarts stay allowed, as a deployment would).
    restarts = {
        "restart-strategy.type": "fixed-delay",
        "restart-strategy.fixed-delay.attempts": "3",
        "restart-strategy.fixed-delay.delay": "1 s",
    }
    t_env = t_env_factory({**rest_options(port), **restarts})
    statement = submit(t_env)
    progress = SourceProgress(port)
    progress.start()
    started = time.monotonic()
    try:
        statement.execute().wait()
    finally:
        progress.stop()
    if os.environ.get("BENCH_DEBUG"):
        print(f"REST samples: {len(progress.samples)}, last {progress.samples[-1:]}", flush=True)
    return Run(
        time.monotonic() - started,
        progress.sustained_rate(trades),
        progress.rate_by_decile(trades),
        progress.cpu_per_trade(trades),
        progress.sustained_rate(trades, *STEADY),
        progress.cpu_per_trade(trades, *STEADY),
    )


def _source(s: StackSettings, topic: str) -> KafkaSource:
    return KafkaSource(
        topic,
        s.bootstrap_servers,
        s.registry_url,
        startup_mode="earliest-offset",
        bounded=True,
        group_id=unique_name("b"),
    )


# Checkpoints go to files, as in production (CANDLEFLOW_JOB_CHECKPOINT_DIR): without a
# directory Flink keeps them in the JobManager's memory, at most 5 MB of state per operator,
# and the bronze job's dedup state passed that after ~1M trades ("Size of the state is larger
# than the maximum permitted memory-backed state"), failing every checkpoint and so the run.
CHECKPOINTS = tempfile.TemporaryDirectory(prefix="cf-bench-checkpoints-")


def _env(
    s: StackSettings, parallelism: int, checkpoint_ms: int | None, state_backend: str = "hashmap"
):
    """A factory of table environments for _timed (which adds the REST and restart options)."""

    def env(extra):
        return make_table_env(
            parallelism=parallelism,
            connectors=True,
            stack=s,
            checkpoint_interval_ms=checkpoint_ms,
            checkpoint_dir=Path(CHECKPOINTS.name).as_uri(),
            state_backend=state_backend,
            extra=extra,
        )

    return env


def run_ceiling(s: StackSettings, topic: str, parallelism: int, trades: int) -> Run:
    def submit(t_env):
        t_env.execute_sql(_source(s, topic).ddl("trades_src"))
        t_env.execute_sql(
            "CREATE TEMPORARY TABLE sink_bh WITH ('connector' = 'blackhole') "
            "LIKE trades_src (EXCLUDING ALL)"
        )
        cols = ", ".join(f"`{n}`" for n, _ in TRADE_COLUMNS)
        stmts = t_env.create_statement_set()
        stmts.add_insert_sql(f"INSERT INTO sink_bh SELECT {cols} FROM trades_src")
        return stmts

    return _timed(_env(s, parallelism, None), submit, trades)


def run_bronze_floor(
    s: StackSettings, topic: str, parallelism: int, checkpoint_ms: int, trades: int
) -> Run:
    """Source -> Iceberg bronze.trades only, committed on checkpoints, writers as the bronze
    job's, no dedup."""
    table, ddl = bronze_sink(s, "floor")
    # Kafka carries the µs times as BIGINT; the table has TIMESTAMP(6) (read in UTC). Flink
    # 2.1 converts numbers to timestamps at ms precision at most: the floor stores times
    # truncated to ms (the cheapest conversion; this run bounds the job, it is not its output).
    cols = ", ".join(
        f"CAST(TO_TIMESTAMP_LTZ(`{n}` / 1000, 3) AS TIMESTAMP(6))" if "TIMESTAMP" in t else f"`{n}`"
        for n, t in TRADE_COLUMNS
    )

    def submit(t_env):
        t_env.get_config().set("table.local-time-zone", "UTC")
        t_env.execute_sql(_source(s, topic).ddl("trades_src"))
        for statement in ddl:
            t_env.execute_sql(statement)
        writers = bronze.BronzeJobConfig.write_parallelism
        stmts = t_env.create_statement_set()
        stmts.add_insert_sql(
            f"INSERT INTO {table.qualified} /*+ OPTIONS('write-parallelism'='{writers}') */ "
            f"SELECT {cols} FROM trades_src"
        )
        return stmts

    return _timed(_env(s, parallelism, checkpoint_ms), submit, trades)


def run_bronze_job(
    s: StackSettings,
    topic: str,
    parallelism: int,
    checkpoint_ms: int,
    trades: int,
    baseline: bool = False,
) -> Run:
    """The bronze job (jobs/bronze.py) over the topic into a fresh bronze.trades; `baseline`:
    the job as it was before BronzeFunction (bench/candles/bronze_sql.py)."""
    table, ddl = bronze_sink(s, "bronze")
    config = bronze.BronzeJobConfig(source=_source(s, topic), sink=table, catalog_ddl=ddl)
    env = _env(s, parallelism, checkpoint_ms)
    build_job = bronze_sql.build if baseline else bronze.build
    return _timed(env, lambda t_env: build_job(t_env, config), trades)


def run_job(
    s: StackSettings,
    topic: str,
    parallelism: int,
    iceberg: bool,
    checkpoint_ms: int,
    trades: int,
    state_backend: str,
) -> Run:
    sinks, ddl = production_sinks(s, "bench", iceberg)
    config = CandleJobConfig(
        source=_source(s, topic), sinks=sinks, candles=CandleSettings(), catalog_ddl=ddl
    )

    env = _env(s, parallelism, checkpoint_ms, state_backend)
    return _timed(env, lambda t_env: build(t_env, config), trades)


def _line(label: str, run: Run, trades: int) -> str:
    sustained = "n/a (run too short)" if run.sustained is None else f"{run.sustained:,.0f}"
    return (
        f"{label}: sustained {sustained} trades/s; end to end {run.seconds:.1f} s "
        f"= {trades / run.seconds:,.0f} trades/s with start-up\n"
        f"  by tenth of the input (k trades/s): "
        + " ".join("-" if r is None else f"{r / 1000:.0f}" for r in run.deciles)
        + _cpu_line(run.cpu_us, "10 %..90 %")
        + f"\n  steady state ({STEADY[0]:.0%}..{STEADY[1]:.0%} of the input, JIT warm): "
        + ("n/a" if run.steady is None else f"sustained {run.steady:,.0f} trades/s")
        + _cpu_line(run.steady_cpu_us, f"{STEADY[0]:.0%}..{STEADY[1]:.0%}")
    )


def _cpu_line(cpu_us: dict[str, float], span: str) -> str:
    """The JVM's CPU per trade by thread group, and the rate that budget allows on the
    machine's cores if nothing else ran (the JVM's own threads only)."""
    if not cpu_us:
        return ""
    total = sum(cpu_us.values())
    cores = len(os.sched_getaffinity(0))
    parts = ", ".join(f"{g} {us:.1f}" for g, us in cpu_us.items() if us >= 0.05)
    return (
        f"\n  JVM CPU per trade (µs, {span}): {total:.1f} = {parts}"
        f"\n  => {cores} cores / {total:.1f} µs = at most {cores / total * 1e6:,.0f} trades/s"
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--trades", type=int, default=1_000_000, help="input size (default 1M)")
    ap.add_argument("--parallelism", type=int, default=2)
    ap.add_argument("--checkpoint-ms", type=int, default=5000)
    ap.add_argument("--state-backend", default="hashmap", help="hashmap or rocksdb")
    ap.add_argument("--no-iceberg", action="store_true", help="Kafka sinks only")
    ap.add_argument("--no-bronze", action="store_true", help="skip the bronze job run")
    ap.add_argument(
        "--runs",
        default="ceiling,floor,bronze,job",
        help=f"comma-separated subset of {','.join(RUNS)} (default all but bronze-sql, the "
        "bronze job before BronzeFunction; a ratio needs both of its sides)",
    )
    ap.add_argument("--topic", help="reuse a topic already holding --trades trades")
    ap.add_argument(
        "--markets", type=int, default=1, help="spread the trades over N markets (default 1)"
    )
    ap.add_argument("--no-throughput", action="store_true", help="only the latency probe")
    ap.add_argument("--no-latency", action="store_true", help="only the throughput runs")
    ap.add_argument("--latency-seconds", type=float, default=200, help="live producing time")
    ap.add_argument("--latency-markets", type=int, default=16)
    ap.add_argument("--latency-rate", type=int, default=2000, help="trades/s, all markets")
    args = ap.parse_args()
    runs = set(args.runs.split(","))
    if runs - set(RUNS):
        ap.error(f"--runs: unknown {sorted(runs - set(RUNS))}")
    if args.no_iceberg:
        runs -= {"floor", "bronze", "bronze-sql"}
    if args.no_bronze:
        runs -= {"bronze", "bronze-sql"}

    from devstack.testing import acquire_stack, release_stack

    stack, started = acquire_stack(flink=False)
    s = stack.settings
    try:
        load = os.getloadavg()[0]
        print(f"load average at start: {load:.1f}", flush=True)
        if not args.no_throughput:
            topic = args.topic or unique_name("bench-trades")
            if not args.topic:
                topics.ensure_topics(topics.admin(s.bootstrap_servers), [topics.TopicSpec(topic)])
                t = time.monotonic()
                produce(s, topic, args.trades, args.markets)
                print(
                    f"produced {args.trades:,} trades in {time.monotonic() - t:.1f}s to {topic}",
                    flush=True,
                )
            ceiling = floor = bronze_job = job = None
            if "ceiling" in runs:
                ceiling = run_ceiling(s, topic, args.parallelism, args.trades)
                print(
                    _line(
                        f"ceiling (Kafka -> blackhole, p={args.parallelism})", ceiling, args.trades
                    )
                )
            if "floor" in runs:
                floor = run_bronze_floor(
                    s, topic, args.parallelism, args.checkpoint_ms, args.trades
                )
                print(
                    _line(
                        f"floor (Kafka -> Iceberg bronze only, p={args.parallelism}, "
                        f"checkpoint {args.checkpoint_ms} ms)",
                        floor,
                        args.trades,
                    )
                )
            for name, label in (
                ("bronze-sql", "bronze job before (SQL Deduplicate"),
                ("bronze", "bronze job (BronzeFunction"),
            ):
                if name not in runs:
                    continue
                bronze_job = run_bronze_job(
                    s,
                    topic,
                    args.parallelism,
                    args.checkpoint_ms,
                    args.trades,
                    baseline=name == "bronze-sql",
                )
                print(
                    _line(
                        f"{label}: Kafka -> dedup -> Iceberg bronze, p={args.parallelism}, "
                        f"checkpoint {args.checkpoint_ms} ms)",
                        bronze_job,
                        args.trades,
                    )
                )
                for span, mine, base in (
                    ("sustained", bronze_job.sustained, floor and floor.sustained),
                    ("steady state", bronze_job.steady, floor and floor.steady),
                ):
                    if mine and base:
                        print(f"{name} / floor ({span}): {mine / base:.2f}")
            if "job" in runs:
                job = run_job(
                    s,
                    topic,
                    args.parallelism,
                    not args.no_iceberg,
                    args.checkpoint_ms,
                    args.trades,
                    args.state_backend,
                )
                sinks = "Kafka EOS" + ("" if args.no_iceberg else " + Iceberg silver")
                print(
                    _line(
                        f"candles job (Kafka -> PTF -> {sinks}, p={args.parallelism}, "
                        f"checkpoint {args.checkpoint_ms} ms, {args.state_backend})",
                        job,
                        args.trades,
                    )
                )
            if job and ceiling and job.sustained and ceiling.sustained:
                print(f"candles job / ceiling (sustained): {job.sustained / ceiling.sustained:.2f}")
            if job and ceiling and job.steady and ceiling.steady:
                print(f"candles job / ceiling (steady state): {job.steady / ceiling.steady:.2f}")
        if not args.no_latency:
            settings = CandleSettings()
            r = run_latency(
                s,
                markets=args.latency_markets,
                rate=args.latency_rate,
                seconds=args.latency_seconds,
                checkpoint_ms=args.checkpoint_ms,
                parallelism=args.parallelism,
                iceberg=not args.no_iceberg,
                settings=settings,
            )
            print(
                f"latency run: {r.trades:,} live trades, {args.latency_markets} markets, "
                f"{args.latency_rate} trades/s"
            )
            for line in describe(r, settings, args.checkpoint_ms):
                print(line)
        print(f"load average at end: {os.getloadavg()[0]:.1f}")
    finally:
        release_stack(stack, started)


if __name__ == "__main__":
    main()
