"""Candleflow's candles job against its peers: the same trades, topic and 1-minute candles.

In one run, on the same machine:

1. Throughput (unless --no-throughput). N real trades (the COIN-M day repeated on
   following days, bench/candles/data.py) on a fresh 1-partition topic, read by
   - the ceiling: the job's own Avro source into a blackhole (bench/candles);
   - the candles job (whatever jobs/candles.py is; 1m only; exactly-once Kafka sinks,
     + Iceberg silver with --iceberg; never bronze);
   - Spark Structured Streaming (bench/peers/spark_candles.py) once per --spark
     configuration (maxOffsetsPerTrigger:minPartitions; the first is the natural one, the
     others tuned), Kafka sink; with --spark-noop also the best one with the noop sink;
   - a plain Python read_committed consumer (bench/peers/plain_candles.py).
   Each: trades/s sustained (10 % -> 90 % of the input) and with start-up, CPU per trade.
   With --repeat R the runs are repeated R times in turn and medians printed.
2. Correctness (unless --no-correctness). The COIN-M day in order and shuffled within
   --jitter-s seconds, through every peer (and the job); each one's candles against the
   batch reference (bench/peers/correctness.py).

Run (the stack the bench starts uses CANDLEFLOW_TEST_* ports and data dir, see
docs/benchmarks.md; `make setup-peers` first):
    .venv/bin/python -m bench.peers.run --trades 2000000
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from adapters import topics
from bench.candles.bench import run_ceiling
from bench.candles.data import produce
from bench.peers import correctness as cx
from bench.peers.peers import PeerRun, candles_job, out_topic, plain, spark
from candleflow.config import StackSettings
from devstack.testing import unique_name


@dataclass
class Row:
    label: str
    runs: list[PeerRun] = field(default_factory=list)

    def median(self, get: Callable[[PeerRun], float | None]) -> float | None:
        values = [v for v in map(get, self.runs) if v is not None]
        return statistics.median(values) if values else None

    @property
    def sustained(self) -> float | None:
        return self.median(lambda r: r.run.sustained)

    def line(self, trades: int) -> str:
        sus = self.sustained
        e2e = self.median(lambda r: trades / r.run.seconds)
        cpu = self.median(lambda r: sum(r.run.cpu_us.values()) or None)
        startup = self.median(lambda r: r.startup_s)
        runs = " ".join(
            "-" if r.run.sustained is None else f"{r.run.sustained:,.0f}" for r in self.runs
        )
        return (
            f"| {self.label} | {'n/a' if sus is None else f'{sus:,.0f}'} | {e2e:,.0f} | "
            f"{'-' if cpu is None else f'{cpu:.1f}'} | "
            f"{'-' if startup is None else f'{startup:.1f}'} | {runs} |"
        )


def _details(label: str, r: PeerRun) -> str:
    deciles = " ".join("-" if x is None else f"{x / 1000:.0f}" for x in r.run.deciles)
    cpu = ", ".join(f"{g} {us:.1f}" for g, us in r.run.cpu_us.items() if us >= 0.05)
    extra = "" if r.dropped_late is None else f"; dropped as late: {r.dropped_late}"
    start = "" if r.startup_s is None else f"; start-up {r.startup_s:.1f} s"
    sus = "n/a" if r.run.sustained is None else f"{r.run.sustained:,.0f}"
    return (
        f"{label}: sustained {sus} trades/s; end to end {r.run.seconds:.1f} s{start}{extra}\n"
        f"  by tenth (k trades/s): {deciles}\n  CPU per trade (µs): {cpu or '-'}"
    )


def spark_configs(text: str) -> list[tuple[int, int]]:
    """'100000:0,500000:2' -> [(maxOffsetsPerTrigger, minPartitions)] (0 = unset)."""
    out = []
    for part in text.split(","):
        offsets, partitions = part.split(":")
        out.append((int(offsets), int(partitions)))
    return out


def _spark_label(offsets: int, partitions: int, sink: str) -> str:
    o = f"maxOffsetsPerTrigger {offsets:,}" if offsets else "no maxOffsetsPerTrigger"
    p = f"minPartitions {partitions}" if partitions else "1 read task"
    return f"Spark, {o}, {p}, {sink} sink"


def throughput(s: StackSettings, args: argparse.Namespace) -> None:
    n = args.trades
    topic = args.topic or unique_name("peers-trades")
    if not args.topic:
        topics.ensure_topics(topics.admin(s.bootstrap_servers), [topics.TopicSpec(topic)])
        t = time.monotonic()
        produce(s, topic, n)
        print(f"produced {n:,} trades in {time.monotonic() - t:.1f}s to {topic}", flush=True)
    configs = spark_configs(args.spark)
    rows: dict[str, Row] = {}

    def record(label: str, r: PeerRun) -> None:
        rows.setdefault(label, Row(label)).runs.append(r)
        print(_details(label, r), flush=True)

    sinks = "Kafka EOS" + (" + Iceberg silver" if args.iceberg else "")
    job_label = f"candles job (1m, {sinks}, p={args.parallelism})"
    for k in range(args.repeat):
        print(f"--- round {k + 1} of {args.repeat}", flush=True)
        record("ceiling (Kafka -> blackhole)", PeerRun(run_ceiling(s, topic, args.parallelism, n)))
        job, _ = candles_job(
            s,
            topic,
            n,
            parallelism=args.parallelism,
            checkpoint_ms=args.checkpoint_ms,
            iceberg=args.iceberg,
        )
        record(job_label, PeerRun(job))
        for offsets, partitions in configs:
            r = spark(
                s,
                topic,
                n,
                max_offsets=offsets,
                min_partitions=partitions,
                sink_topic=out_topic(s, "peers-spark"),
            )
            record(_spark_label(offsets, partitions, "Kafka"), r)
        if args.spark_noop:
            best = max(configs, key=lambda c: rows[_spark_label(*c, "Kafka")].sustained or 0)
            r = spark(s, topic, n, max_offsets=best[0], min_partitions=best[1], sink_topic=None)
            record(_spark_label(*best, "noop"), r)
        if not args.no_plain:
            record(
                "plain Python consumer (read_committed)",
                plain(s, topic, n, out_topic(s, "peers-plain")),
            )
    print(
        f"\n{n:,} trades, medians of {args.repeat} round(s); "
        f"load average now {os.getloadavg()[0]:.1f}"
    )
    print(
        "| run | sustained trades/s | with start-up trades/s | CPU µs/trade | start-up s "
        "| sustained per round |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for row in rows.values():
        print(row.line(n))
    job_rate = rows[job_label].sustained
    spark_kafka = {
        lbl: r.sustained for lbl, r in rows.items() if lbl.startswith("Spark") and "Kafka" in lbl
    }
    best_label = max(spark_kafka, key=lambda lbl: spark_kafka[lbl] or 0)
    natural = _spark_label(*configs[0], "Kafka")
    ceiling = rows["ceiling (Kafka -> blackhole)"].sustained
    if job_rate and ceiling:
        print(f"job / ceiling (sustained): {job_rate / ceiling:.2f}")
    if job_rate and spark_kafka[natural]:
        print(f"job / Spark as first configured ({natural}): {job_rate / spark_kafka[natural]:.2f}")
    if job_rate and spark_kafka[best_label]:
        print(f"job / Spark at its best ({best_label}): {job_rate / spark_kafka[best_label]:.2f}")
    per_round = [
        rj.run.sustained / max(rows[lbl].runs[k].run.sustained or 0 for lbl in spark_kafka)
        for k, rj in enumerate(rows[job_label].runs)
        if rj.run.sustained and all(rows[lbl].runs[k].run.sustained for lbl in spark_kafka)
    ]
    if per_round:
        print(
            "job / best Spark with Kafka sink, per round: "
            + " ".join(f"{x:.2f}" for x in per_round)
            + f" (median {statistics.median(per_round):.2f})"
        )


def _peers_on(s: StackSettings, args: argparse.Namespace, topic: str, n: int) -> dict:
    """Every peer on one input topic: name -> its candles (as dicts)."""
    offsets, partitions = spark_configs(args.spark)[0]
    out: dict[str, list[dict]] = {}
    _, candles = candles_job(
        s, topic, n, parallelism=args.parallelism, checkpoint_ms=args.checkpoint_ms, iceberg=False
    )
    out["candles job"] = cx.avro_candles(s, candles, cx.read_values(s, candles))
    for name, naive in (
        ("Spark, min_by/max_by on (event_time, trade_id)", False),
        ("Spark, first/last (arrival order)", True),
    ):
        sink = out_topic(s, "peers-spark")
        spark(
            s,
            topic,
            n,
            max_offsets=offsets,
            min_partitions=partitions,
            sink_topic=sink,
            naive=naive,
        )
        out[name] = cx.json_candles(cx.read_values(s, sink))
    sink = out_topic(s, "peers-plain")
    r = plain(s, topic, n, sink)
    print(f"  plain consumer dropped {r.dropped_late} trades as late", flush=True)
    out["plain Python consumer"] = cx.json_candles(cx.read_values(s, sink))
    return out


def correctness(s: StackSettings, args: argparse.Namespace) -> None:
    day = cx.day_trades()
    reference = cx.reference_candles(day)
    shuffled = f"shuffled within {args.jitter_s:g} s"
    inputs = {"in order": day, shuffled: cx.shuffled(day, args.jitter_s)}
    results: list[tuple[str, str, cx.Comparison]] = []
    for order, trades in inputs.items():
        topic = cx.produce_trades(s, trades, "peers-day")
        print(f"--- correctness, {order}: {len(trades):,} trades on {topic}", flush=True)
        for name, got in _peers_on(s, args, topic, len(trades)).items():
            c = cx.compare(reference, got)
            results.append((name, order, c))
            print(
                f"  {name}: {c.emissions} records, {c.windows} windows: {c.summary()}", flush=True
            )
    print(f"\ncorrectness on the COIN-M day ({len(day):,} trades, {len(reference)} 1m windows)")
    print("| peer | arrival | records | fields that differ from the batch reference |")
    print("| --- | --- | --- | --- |")
    for name, order, c in results:
        print(f"| {name} | {order} | {c.emissions} | {c.summary()} |")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--trades", type=int, default=2_000_000, help="input size (default 2M)")
    ap.add_argument("--topic", help="reuse a topic already holding --trades trades")
    ap.add_argument("--parallelism", type=int, default=2, help="the candles job's")
    ap.add_argument("--checkpoint-ms", type=int, default=5000)
    ap.add_argument("--iceberg", action="store_true", help="the job also writes Iceberg silver")
    ap.add_argument(
        "--spark",
        default="100000:0,500000:2,1000000:2",
        help="Spark configurations maxOffsetsPerTrigger:minPartitions (0 = unset), the "
        "first one the natural one (default %(default)s)",
    )
    ap.add_argument("--spark-noop", action="store_true", help="also Spark's best with noop sink")
    ap.add_argument("--repeat", type=int, default=1, help="throughput rounds (medians)")
    ap.add_argument("--jitter-s", type=float, default=5.0, help="shuffle of the correctness run")
    ap.add_argument("--no-throughput", action="store_true")
    ap.add_argument("--no-correctness", action="store_true")
    ap.add_argument(
        "--no-plain", action="store_true", help="throughput: leave out the plain consumer"
    )
    args = ap.parse_args()

    from devstack.testing import acquire_stack, release_stack

    stack, started = acquire_stack(flink=False)
    try:
        print(
            f"load average at start: {os.getloadavg()[0]:.1f}; {stack.settings.bootstrap_servers}",
            flush=True,
        )
        if not args.no_throughput:
            throughput(stack.settings, args)
        if not args.no_correctness:
            correctness(stack.settings, args)
    finally:
        release_stack(stack, started)


if __name__ == "__main__":
    main()
