"""`make demo`: the whole pipeline on replayed real trades, with the commands a user would run.

stack up -> candles, bronze and anomalies jobs on the local Flink -> gRPC server +
explainer -> replay of a recorded Binance day into Kafka -> live candles in the terminal ->
summary (every candle equals the batch reference; bronze.trades holds every trade once)
-> everything stopped. Each step is a real `candleflow` command in a subprocess, so the
demo also shows how to run the pieces by hand.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from candleflow.config import StackSettings, Topics, default_data_dir
from devstack.sample_data import COINM_DAY

console = Console()


@dataclass
class Demo:
    settings: StackSettings
    stop: threading.Event = field(default_factory=threading.Event)
    background: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def cli(
        self, *args: str, check: bool = True, timeout: float | None = None, quiet: bool = False
    ) -> subprocess.CompletedProcess[bytes]:
        """Run one `candleflow` command in the foreground, echoing it first."""
        console.print(f"[dim]$ candleflow {' '.join(args)}[/]")
        out = subprocess.PIPE if quiet else None
        done = subprocess.run(
            [sys.executable, "-m", "candleflow.cli", *args],
            env=self.env,
            check=False,
            timeout=timeout,
            stdout=out,
            stderr=out,
        )
        if check and done.returncode != 0:
            if quiet and done.stderr:
                console.print(done.stderr.decode(errors="replace")[-3000:])
            raise SystemExit(
                f"demo step failed: candleflow {' '.join(args)} (exit {done.returncode})"
            )
        return done

    def spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """Start a long-running `candleflow` command; its output goes to a log file."""
        log = self.settings.logs_dir / f"demo-{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        console.print(f"[dim]$ candleflow {' '.join(args)} &  (log: {log})[/]")
        handle = log.open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "candleflow.cli", *args],
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.background.append((name, proc))
        return proc

    def stop_background(self) -> None:
        for _name, proc in reversed(self.background):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in reversed(self.background):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                console.print(f"[yellow]{name} did not stop in 20 s; killing it[/]")
                proc.kill()
        self.background.clear()


def read_committed(settings: StackSettings, topic: str) -> list[bytes]:
    """Every record value a read_committed consumer sees in `topic`, from the beginning."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        settings.kafka_config(
            **{
                "group.id": f"demo-read-{time.time_ns()}",
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
    )
    try:
        meta = consumer.list_topics(topic, timeout=10)
        consumer.assign([TopicPartition(topic, p, 0) for p in meta.topics[topic].partitions])
        values: list[bytes] = []
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < 3:
            real = [
                v
                for m in consumer.consume(1000, timeout=0.5)
                if m.error() is None and (v := m.value()) is not None
            ]
            if real:
                values.extend(real)
                idle_since = time.monotonic()
        return values
    finally:
        consumer.close()


def count_committed(settings: StackSettings, topic: str) -> int:
    return len(read_committed(settings, topic))


def verify_candles(settings: StackSettings, path: Path, intervals: str) -> list[str]:
    """Compare the last revision of every candle in candles.v1 with the batch reference."""
    from adapters import avro
    from candleflow.binance_files import read_trades
    from candleflow.domain import Candle
    from candleflow.reference import batch_candles

    decode = avro.deserializer(avro.registry_client(settings), "candle")
    ctx = avro.value_context(Topics().candles)
    got: dict[tuple[str, int], Candle] = {}
    for value in read_committed(settings, Topics().candles):
        candle = decode(value, ctx)
        assert isinstance(candle, Candle)
        key = (candle.interval, candle.window_start_us)
        if key not in got or got[key].revision < candle.revision:
            got[key] = candle
    problems = []
    for want in batch_candles(list(read_trades(path)), intervals):
        have = got.get((want.interval, want.window_start_us))
        if have is None:
            continue  # not final yet: the last windows of the file
        have = replace(have, revision=0)
        if have != want:
            problems.append(f"{want.interval} {want.window_start_us}: {have} != {want}")
    return problems


def verify_bronze(
    settings: StackSettings, path: Path, stop: threading.Event, timeout: float
) -> list[str]:
    """Wait until Iceberg bronze.trades (the bronze job's table) holds the file's trades;
    then every trade must be there exactly once, equal field by field."""
    from collections import Counter

    from adapters import catalog
    from candleflow.binance_files import read_trades

    want = {(t.exchange, t.symbol, t.trade_id): t for t in read_trades(path)}
    deadline = time.monotonic() + timeout
    rows: list[dict[str, Any]] = []
    while not stop.is_set() and time.monotonic() < deadline:
        table = catalog.catalog(settings).load_table("bronze.trades")
        rows = table.scan().to_arrow().to_pylist()
        if len(rows) >= len(want):
            break
        stop.wait(2)
    counts = Counter((r["exchange"], r["symbol"], r["trade_id"]) for r in rows)
    problems = [f"{k} landed {n} times" for k, n in counts.items() if n > 1]
    problems += [f"{k} missing" for k in want.keys() - counts.keys()]
    problems += [f"{k} is not in the file" for k in counts.keys() - want.keys()]
    for r in rows:
        t = want.get((r["exchange"], r["symbol"], r["trade_id"]))
        if t is not None and (
            r["price"] != t.price
            or r["quantity"] != t.quantity
            or r["side"] != t.side.value
            or _us(r["event_time"]) != t.event_time_us
        ):
            problems.append(f"{r['trade_id']}: {r} != {t}")
    return problems


def _us(ts: dt.datetime) -> int:  # a naive UTC datetime from PyIceberg -> epoch µs
    return int(ts.replace(tzinfo=dt.UTC).timestamp()) * 1_000_000 + ts.microsecond


def wait_for_candles(
    settings: StackSettings, expected: int, stop: threading.Event, timeout: float
) -> int:
    deadline = time.monotonic() + timeout
    seen = 0
    while not stop.is_set() and time.monotonic() < deadline:
        seen = count_committed(settings, Topics().candles)
        if seen >= expected:
            break
        stop.wait(2)
    return seen


def expected_final_candles(path: Path, intervals: str) -> int:
    """Candles the stream must have finalised once the replay is in (the batch reference).

    Streaming, a window is final when its market's clock passes window end + grace; the
    last windows of the file never are (no later trade moves the clock past them).
    """
    from candleflow.binance_files import read_trades
    from candleflow.config import CandleSettings
    from candleflow.reference import batch_candles

    trades = list(read_trades(path))
    settings = CandleSettings(intervals=intervals)
    clock: dict[tuple[str, str], int] = {}
    for t in trades:
        key = (t.exchange, t.symbol)
        clock[key] = max(clock.get(key, t.event_time_us), t.event_time_us)
    return sum(
        1
        for c in batch_candles(trades, intervals)
        if c.window_end_us + settings.grace_us(c.interval) <= clock[(c.exchange, c.symbol)]
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.demo",
        description="Run Candleflow end to end on a replayed real trading day, then stop.",
    )
    parser.add_argument(
        "--file",
        type=Path,
        default=Path(os.environ.get("DEMO_FILE", COINM_DAY)),
        help="data.binance.vision trades/aggTrades file to replay",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=float(os.environ.get("DEMO_SPEED", 0)),
        help="replay speed: 1 = real time, 600 = a day in 2.4 min, 0 = max",
    )
    parser.add_argument("--intervals", default=os.environ.get("DEMO_INTERVALS", "1m,5m,15m,1h"))
    parser.add_argument(
        "--watch",
        default=os.environ.get("DEMO_WATCH", "auto"),
        choices=["auto", "yes", "no"],
        help="show the live gRPC terminal view (auto: when stdout is a terminal)",
    )
    parser.add_argument("--keep", action="store_true", help="leave the stack running at the end")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.file.exists():
        console.print(f"[red]replay file not found:[/] {args.file} (pass --file or DEMO_FILE)")
        return 2
    # The demo has its own data directory, wiped at start, so two runs in a row give the
    # same result and never mix with a stack you run by hand.
    data_dir = Path(os.environ.get("CANDLEFLOW_DEMO_DATA_DIR", default_data_dir() / "demo"))
    env = dict(os.environ, CANDLEFLOW_DATA_DIR=str(data_dir))
    settings = StackSettings(data_dir=data_dir)
    demo = Demo(settings=settings, env=env)

    def interrupt(*_: object) -> None:
        demo.stop.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    started = time.monotonic()
    try:
        demo.cli("stack", "down", check=False, quiet=True)
        shutil.rmtree(data_dir, ignore_errors=True)
        console.rule("[bold]1. local stack")
        demo.cli("stack", "up")
        console.rule("[bold]2. Flink jobs")
        demo.cli("jobs", "run", "candles", "--intervals", args.intervals)
        demo.cli("jobs", "run", "bronze")
        demo.cli("jobs", "run", "anomalies")
        console.rule("[bold]3. services")
        demo.spawn("serve", "serve", "--local")
        demo.spawn("explainer", "explainer", "run")
        console.rule(f"[bold]4. replay {args.file.name}")
        expected = expected_final_candles(args.file, args.intervals)
        symbol = _file_symbol(args.file)
        watch = args.watch == "yes" or (args.watch == "auto" and sys.stdout.isatty())
        watcher = _start_watch(demo, symbol, watch)
        replay_started = time.monotonic()
        demo.cli("ingest", "replay", str(args.file), "--speed", str(args.speed))
        console.print(f"waiting for the {expected} final candles to be committed ...")
        got = wait_for_candles(settings, expected, demo.stop, timeout=300)
        pipeline_seconds = time.monotonic() - replay_started
        mismatches = verify_candles(settings, args.file, args.intervals)
        console.print("waiting for bronze.trades to hold every trade ...")
        bronze_problems = verify_bronze(settings, args.file, demo.stop, timeout=180)
        if watcher is not None and watcher.poll() is None:
            watcher.send_signal(signal.SIGINT)
            watcher.wait(timeout=10)
        console.rule("[bold]5. anomalies and their explanations")
        demo.cli("explainer", "show", "--limit", "10", "--wait", "90", check=False)
        console.rule("[bold]summary")
        _summary(settings, got, expected, pipeline_seconds, time.monotonic() - started)
        for line in bronze_problems[:20]:
            console.print(f"[red]bronze[/] {line}")
        if bronze_problems:
            console.print(f"[red]bronze.trades: {len(bronze_problems)} problems[/]")
        else:
            console.print("[green]bronze.trades holds every trade of the file exactly once[/]")
        for line in mismatches[:20]:
            console.print(f"[red]mismatch[/] {line}")
        if mismatches:
            console.print(f"[red]{len(mismatches)} candles differ from the batch reference[/]")
        else:
            console.print("[green]every candle equals the batch reference on every field[/]")
        return 0 if got >= expected and not mismatches and not bronze_problems else 1
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: stopping everything[/]")
        return 130
    finally:
        demo.stop_background()
        if not args.keep:
            demo.cli("jobs", "cancel", "--all", check=False, quiet=True)
            demo.cli("stack", "down", check=False)


def _file_symbol(path: Path) -> str:
    from candleflow.binance_files import parse_file_name
    from candleflow.symbols import from_binance

    name = parse_file_name(path)
    if name is None:
        raise ValueError(f"{path.name} is not a data.binance.vision file name")
    return from_binance(name.native_symbol)


def _start_watch(demo: Demo, symbol: str, watch: bool) -> subprocess.Popen[bytes] | None:
    if not watch:
        return None
    # The live view writes to this terminal; it ends when the demo sends SIGINT.
    console.print(f"[dim]$ candleflow watch {symbol} --interval 1m --local[/]")
    proc = subprocess.Popen(
        [sys.executable, "-m", "candleflow.cli", "watch", symbol, "--interval", "1m"], env=demo.env
    )
    demo.background.append(("watch", proc))
    return proc


def _summary(
    settings: StackSettings, candles: int, expected: int, pipeline_s: float, total_s: float
) -> None:
    topics = Topics()
    table = Table(title="Candleflow demo")
    table.add_column("what")
    table.add_column("value", justify="right")
    trades = count_committed(settings, topics.trades)
    table.add_row("trades in (trades.v1)", f"{trades:,}")
    table.add_row("candles out (candles.v1, read_committed)", f"{candles:,}")
    table.add_row("candles expected by the batch reference", f"{expected:,}")
    table.add_row(
        "late trades (trades.late.v1)", f"{count_committed(settings, topics.late_trades):,}"
    )
    table.add_row("anomalies (anomalies.v1)", f"{count_committed(settings, topics.anomalies):,}")
    table.add_row(
        "explanations (explanations.v1)", f"{count_committed(settings, topics.explanations):,}"
    )
    table.add_row("replay -> last candle committed", f"{pipeline_s:.1f} s")
    table.add_row("whole demo", f"{total_s:.1f} s")
    console.print(table)
    if candles < expected:
        console.print(f"[red]only {candles} of {expected} candles arrived[/]")


if __name__ == "__main__":
    sys.exit(main())
