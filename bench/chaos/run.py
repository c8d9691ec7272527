"""A seeded chaos run of the whole local pipeline, compared with a fault-free run.

    .venv/bin/python -m bench.chaos --seed 7 --faults 20            # the long run
    .venv/bin/python -m bench.chaos --seed 7 --faults 20 --reuse-baseline   # same input

Both runs replay the same input (the real COIN-M day repeated, >= 1M trades by default)
through ingest -> trades.v1 -> the Flink jobs -> explainer (fake Messages API) -> serving
with N live gRPC subscribers, each on a fresh stack in its own data dir (the ports are the
CANDLEFLOW_* ones of the environment). The fault-free run goes as fast as it can; the chaos
run paces the replay over --duration seconds and injects the seed's faults meanwhile. Then
every output is compared; the exit status is 1 on any loss or duplicate.
"""

from __future__ import annotations

import argparse
import pickle
import random
import shutil
import signal
import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.chaos import faults as fault_kinds
from bench.chaos.data import input_files
from bench.chaos.faults import Fault, Outcome
from bench.chaos.outputs import Check, RunOutputs, collect, compare
from bench.chaos.pipeline import JOBS, Pipeline, PipelineError
from candleflow.binance_files import read_trades
from candleflow.config import StackSettings
from devstack.fakes.anthropic_server import FakeAnthropic

console = Console()
POLL_S = 5.0  # how often the outputs are polled at the end of a run


@dataclass
class RunResult:
    outputs: RunOutputs
    outcomes: list[Outcome]
    seconds: float
    dropped_commits: list[str]  # the Kafka sink's "Unable to commit transaction" lines


def _offsets(p: Pipeline) -> tuple[object, ...]:
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import AdminClient

    from candleflow.config import Topics

    topics = Topics()
    admin = AdminClient({"bootstrap.servers": p.settings.bootstrap_servers})
    meta = admin.list_topics(timeout=10)
    from confluent_kafka import Consumer

    consumer = Consumer(
        {"bootstrap.servers": p.settings.bootstrap_servers, "group.id": "chaos-offsets"}
    )
    try:
        out = []
        for name in (topics.trades, topics.candles, topics.anomalies, topics.explanations):
            for part in sorted(meta.topics[name].partitions):
                out.append(consumer.get_watermark_offsets(TopicPartition(name, part), timeout=10))
    finally:
        consumer.close()
    lines = sum(len(f.read_text().splitlines()) for f in p.subscriber_dir.glob("sub-*.txt"))
    return (*out, lines)


def wait_quiet(p: Pipeline, want_candles: int | None, timeout: float, quiet_s: float) -> None:
    """Until the replay ended and nothing moved for `quiet_s` (and, for the chaos
    run, at least the baseline's number of candle revisions arrived), or the timeout."""
    deadline = time.monotonic() + timeout
    while not p.ingest_done():
        if time.monotonic() > deadline:
            raise PipelineError("the replay did not finish in time")
        time.sleep(2)
    p.note("replay finished; waiting until the pipeline is quiet")
    last, same = None, 0
    while time.monotonic() < deadline:
        try:
            now = _offsets(p)
        except Exception as exc:  # noqa: BLE001 - broker briefly unreachable: poll again
            p.note(f"offsets not readable yet: {exc}")
            now = None
        same = same + 1 if now is not None and now == last else 0
        last = now
        enough = want_candles is None or (
            now is not None and int(now[-1]) >= want_candles * p.subscribers
        )
        if same * POLL_S >= quiet_s and enough:
            return
        time.sleep(POLL_S)
    p.note("timed out waiting for the pipeline to be quiet: comparing what is there")


def run_pipeline(
    name: str,
    root: Path,
    files: list[Path],
    *,
    schedule: list[Fault],
    duration_s: float,
    subscribers: int,
    want_candles: int | None,
    transaction_timeout_ms: int,
    span_s: float,
    quiet_s: float,
) -> RunResult:
    base = StackSettings()
    settings = base.model_copy(update={"data_dir": root / name})
    shutil.rmtree(settings.data_dir, ignore_errors=True)
    speed = 0.0 if not schedule else span_s / duration_s
    fake = FakeAnthropic().start()
    p = Pipeline(
        settings,
        files,
        "BTC-USD-PERP",
        fake.base_url,
        subscribers=subscribers,
        speed=speed,
        transaction_timeout_ms=transaction_timeout_ms,
    )
    console.rule(f"[bold]{name} run: {len(schedule)} faults, replay speed {speed or 'max'}")
    outcomes: list[Outcome] = []
    t0 = time.monotonic()
    try:
        p.start_stack()
        p.submit_jobs()
        p.start_services()
        p.start_subscribers()
        fault_kinds._wait(lambda: fault_kinds._grpc_serving(p), 120, "gRPC serving")
        p.start_ingest()
        started = time.monotonic()
        for fault in schedule:
            delay = started + fault.at_s - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            outcomes.append(fault_kinds.inject(p, fault, started))
        wait_quiet(p, want_candles, timeout=max(1800.0, duration_s * 2), quiet_s=quiet_s)
        outputs = collect(settings, [r.body for r in fake.requests], p.subscriber_dir)
    finally:
        p.stop_all()
        fake.stop()
    (settings.data_dir / "chaos-log.txt").write_text("\n".join(p.log) + "\n")
    dropped = p.dropped_commits()
    for line in dropped:
        console.print(f"[yellow]Kafka sink commit failed:[/] {line}")
    return RunResult(outputs, outcomes, time.monotonic() - t0, dropped)


def fault_table(outcomes: list[Outcome]) -> Table:
    table = Table(title="faults")
    for col in ("kind", "injected", "recovered", "recovery s (median)", "recovery s (max)"):
        table.add_column(col, justify="right" if col != "kind" else "left")
    for kind in fault_kinds.KINDS:
        mine = [o for o in outcomes if o.fault.kind == kind]
        if not mine:
            continue
        times = [o.recovery_s for o in mine if o.recovered]
        table.add_row(
            kind,
            str(len(mine)),
            str(sum(o.recovered for o in mine)),
            f"{statistics.median(times):.1f}" if times else "-",
            f"{max(times):.1f}" if times else "-",
        )
    table.add_row(
        "all",
        str(len(outcomes)),
        str(sum(o.recovered for o in outcomes)),
        "",
        "",
    )
    return table


def check_table(checks: list[Check]) -> Table:
    table = Table(title="chaos run vs fault-free run")
    for col in ("output", "lost / differing", "duplicated", "ok", "note"):
        table.add_column(col)
    for c in checks:
        table.add_row(
            c.what, str(c.lost), str(c.duplicated), "yes" if c.ok else "[red]NO[/]", c.note[:80]
        )
    return table


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.chaos", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="replay this schedule (default: random)"
    )
    parser.add_argument("--faults", type=int, default=20)
    parser.add_argument(
        "--kinds", default=",".join(fault_kinds.KINDS), help="fault kinds to draw from"
    )
    parser.add_argument("--trades", type=int, default=1_000_000, help="at least this many trades")
    parser.add_argument("--subscribers", type=int, default=20)
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        help="replay seconds of the chaos run (default: 45 s per fault)",
    )
    parser.add_argument(
        "--transaction-timeout-s",
        type=float,
        default=60.0,
        help="the candles job's Kafka transaction timeout (a broker pause exceeds it once)",
    )
    parser.add_argument(
        "--quiet-s",
        type=float,
        default=40.0,
        help="a run is over when no output moved for this long after the replay",
    )
    parser.add_argument(
        "--baseline-only",
        action="store_true",
        help="only the fault-free run (for --reuse-baseline)",
    )
    parser.add_argument(
        "--reuse-baseline", action="store_true", help="reuse the last fault-free run of this input"
    )
    parser.add_argument(
        "--work-dir", type=Path, default=None, help="default: <CANDLEFLOW_DATA_DIR>/chaos"
    )
    return parser.parse_args(argv)


def _interrupted(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # unwinds: every run stops its processes


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGINT, _interrupted)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 1_000_000)
    console.print(f"[bold]chaos seed {seed}[/] (replay: --seed {seed})")
    root = args.work_dir or StackSettings().data_dir / "chaos"
    root.mkdir(parents=True, exist_ok=True)
    files = input_files(root / "input", args.trades)
    times = []
    ids = set()
    for f in files:
        for t in read_trades(f):
            ids.add(t.trade_id)
            times.append(t.event_time_us)
    span_s = (max(times) - min(times)) / 1e6
    console.print(f"input: {len(ids):,} trades in {len(files)} daily files")
    kinds = tuple(k for k in args.kinds.split(",") if k)
    duration = args.duration or 45.0 * args.faults
    plan = fault_kinds.schedule(seed, args.faults, duration, kinds, args.transaction_timeout_s)
    for f in plan:
        console.print(
            f"  {f.at_s:7.1f} s  {f.kind:<12} {f'pause {f.pause_s} s' if f.pause_s else ''}"
        )
    common = dict(
        subscribers=args.subscribers,
        transaction_timeout_ms=int(args.transaction_timeout_s * 1000),
        duration_s=duration,
        span_s=span_s,
        quiet_s=args.quiet_s,
    )
    cache = root / f"baseline-{len(ids)}.pkl"
    if args.reuse_baseline and cache.exists():
        baseline = pickle.loads(cache.read_bytes())
        console.print(f"fault-free run reused from {cache}")
    else:
        baseline = run_pipeline(
            "baseline", root, files, schedule=[], want_candles=None, **common
        ).outputs
        cache.write_bytes(pickle.dumps(baseline))
    if args.baseline_only:
        print(f"fault-free run saved to {cache}: {len(baseline.candles):,} candle revisions")
        return 0
    chaos = run_pipeline(
        "chaos", root, files, schedule=plan, want_candles=len(baseline.candles), **common
    )
    checks = compare(baseline, chaos.outputs, ids)
    base_check = compare(baseline, replace(baseline), ids)  # the baseline against itself
    console.print(fault_table(chaos.outcomes))
    console.print(check_table(checks))
    lost = next(c.lost for c in checks if c.what.startswith("bronze"))
    dup = sum(c.duplicated for c in checks)
    print(
        f"seed {seed}: {len(chaos.outcomes)} faults, "
        f"{sum(o.recovered for o in chaos.outcomes)} recovered, trades lost {lost}, "
        f"rows duplicated {dup}, candle revisions {len(baseline.candles):,}, "
        f"subscribers {args.subscribers}, jobs {', '.join(j.name for j in JOBS)}, "
        f"failed Kafka sink commits (log) {len(chaos.dropped_commits)}, "
        f"chaos run {chaos.seconds:.0f} s"
    )
    if not all(c.ok for c in base_check[:-1]):
        console.print("[yellow]note: the fault-free run is not consistent with itself[/]")
    ok = all(c.ok for c in checks) and all(o.recovered for o in chaos.outcomes)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
