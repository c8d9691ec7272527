"""`candleflow backfill` end to end, start-up included: the job reading the exchange files
itself (--direct, the default) against preparing every trade in Python first (--prepare, the
way before), in one run, with two ceilings of reading: the same Flink source into a blackhole
(a fresh process, start-up included: "flink-read") and the JVM reader alone ("reader").

Input: one monthly aggTrades zip of N in-order trades, the real COIN-M day (BTCUSD_PERP
2026-05-08) repeated on following days with shifted ids and times, as data.binance.vision
publishes it (header, ms). Each measurement is a fresh `python -m candleflow.cli backfill`
process (wall time from its start to its exit, intervals 1m,5m,15m,1h, CSV output); the
ways alternate within each repetition; medians over the repetitions. The candle CSVs of both
ways are compared byte for byte.

    /work/wt/heavy -x .venv/bin/python -m bench.backfill.e2e --trades 10000000 --reps 3
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from devstack.sample_data import COINM_DAY
from jobs import backfill_files

ROOT = Path(__file__).resolve().parents[2]
NAME = "BTCUSD_PERP-aggTrades-2026-05"
INTERVALS = "1m,5m,15m,1h"


def build(trades: int, out_dir: Path) -> Path:
    """A zip of `trades` aggTrades rows: the COIN-M day, then the day again on each next day."""
    with zipfile.ZipFile(COINM_DAY) as zf, zf.open(zf.namelist()[0]) as fh:
        lines = io.TextIOWrapper(fh).read().splitlines()
    header, day = lines[0], [r.split(",") for r in lines[1:]]
    path = out_dir / f"{NAME}.zip"
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf,
        zf.open(f"{NAME}.csv", "w", force_zip64=True) as raw,
        io.TextIOWrapper(raw, encoding="ascii", newline="") as out,
    ):
        out.write(header + "\n")
        k = written = 0
        while written < trades:
            shift_ms, shift_id = k * 86_400_000, k * 10_000_000_000
            chunk = day[: trades - written]
            out.write(
                "".join(
                    f"{int(f[0]) + shift_id},{f[1]},{f[2]},{int(f[3]) + shift_id},"
                    f"{int(f[4]) + shift_id},{int(f[5]) + shift_ms},{f[6]}\n"
                    for f in chunk
                )
            )
            written += len(chunk)
            k += 1
    return path


# way -> (the command's option, extra JVM options of its in-process Flink)
WAYS = {
    "direct": ("--direct", ""),
    "direct-parallelgc": ("--direct", "-XX:+UseParallelGC"),
    "prepare": ("--prepare", ""),
}


def backfill(way: str, src: Path, out: Path) -> dict:
    option, jvm_args = WAYS[way]
    env = {**os.environ, "JVM_ARGS": jvm_args} if jvm_args else None
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "candleflow.cli", "backfill", str(src), option]
        + ["--intervals", INTERVALS, "-o", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
    )
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"backfill --{way} failed:\n{proc.stderr[-3000:]}")
    notes = [line for line in proc.stderr.splitlines() if line.startswith("backfill:")]
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    out.unlink()
    return {"seconds": seconds, "sha256": digest, "notes": notes}


def flink_ceiling(src: Path, tmp: Path) -> dict:
    """A fresh process like the command's: the job's own file source into a blackhole
    (no candle operator, no sinks): what reading the files in Flink costs, start-up included."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "bench.backfill.e2e", "--child-ceiling", str(src), str(tmp)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"ceiling job failed:\n{proc.stderr[-3000:]}")
    return {"seconds": time.perf_counter() - t0}


def child_ceiling(src: Path, tmp: Path) -> None:
    from jobs.candle_tables import BinanceFilesSource
    from jobs.flink_env import make_table_env

    entries = backfill_files.plan([src], "binance", None) or []
    manifest = backfill_files.write_manifest(entries, tmp / "c.manifest", check_first=False)
    t_env = make_table_env(
        parallelism=1, checkpoint_interval_ms=1000, extra={"restart-strategy.type": "none"}
    )
    t_env.execute_sql(BinanceFilesSource(manifest).ddl("trades_src"))
    t_env.execute_sql(
        "CREATE TEMPORARY TABLE sink WITH ('connector' = 'blackhole') "
        "LIKE trades_src (EXCLUDING ALL)"
    )
    cols = "exchange, symbol, native_symbol, trade_id, price, quantity, side, event_time, "
    cols += "ingest_time, first_trade_id, last_trade_id, kind, contract_size"
    t_env.execute_sql(f"INSERT INTO sink SELECT {cols} FROM trades_src").wait()


def reader_ceiling(src: Path, tmp: Path) -> dict:
    """The JVM reader alone over the file (java start included): parse, check, count."""
    (entry,) = backfill_files.plan([src], "binance", None) or []
    manifest = backfill_files.write_manifest([entry], tmp / "m.manifest", check_first=False)
    t0 = time.perf_counter()
    (result,) = backfill_files.scan([manifest], count=True)
    return {"seconds": time.perf_counter() - t0, "trades": result.trades}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trades", type=int, default=10_000_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--ways", default="direct,prepare", help=f"comma-separated, of {[*WAYS]}")
    ap.add_argument(
        "--baseline-reps", type=int, help="run 'prepare' in the first N repetitions only"
    )
    ap.add_argument("--input-dir", type=Path, help="keep the built input here and reuse it")
    ap.add_argument("--child-ceiling", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_ceiling:
        child_ceiling(*args.child_ceiling)
        return
    ways = args.ways.split(",")
    with tempfile.TemporaryDirectory(prefix="bench-backfill-e2e-") as name:
        tmp = Path(name)
        t0 = time.perf_counter()
        keep = args.input_dir / str(args.trades) if args.input_dir else None
        if keep is not None and (keep / f"{NAME}.zip").exists():
            src = keep / f"{NAME}.zip"
        else:
            if keep is not None:
                keep.mkdir(parents=True, exist_ok=True)
            src = build(args.trades, keep or tmp)
        print(
            f"input: {args.trades:,} aggTrades rows in order (COIN-M day repeated), zip "
            f"{src.stat().st_size / 1e6:.1f} MB; built in {time.perf_counter() - t0:.1f}s; "
            f"load_avg_1m {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        runs: dict[str, list[dict]] = {w: [] for w in [*ways, "flink-read", "reader"]}
        for rep in range(args.reps):
            for way in ways:
                baseline_done = args.baseline_reps is not None and rep >= args.baseline_reps
                if way == "prepare" and baseline_done:
                    continue
                r = backfill(way, src, tmp / "candles.csv")
                r["trades_per_s"] = args.trades / r["seconds"]
                runs[way].append(r)
                print(json.dumps({"rep": rep, "way": way, **r}), flush=True)
            r = flink_ceiling(src, tmp)
            r["trades_per_s"] = args.trades / r["seconds"]
            runs["flink-read"].append(r)
            print(json.dumps({"rep": rep, "way": "flink-read", **r}), flush=True)
            r = reader_ceiling(src, tmp)
            r["trades_per_s"] = r["trades"] / r["seconds"]
            runs["reader"].append(r)
            print(json.dumps({"rep": rep, "way": "reader", **r}), flush=True)
        print(f"load_avg_1m at end {os.getloadavg()[0]:.1f}")
        print()
        print("| way | trades | seconds (median) | trades/s (median) |")
        print("| --- | --- | --- | --- |")
        for way, rs in runs.items():
            secs = statistics.median(r["seconds"] for r in rs)
            rate = statistics.median(r["trades_per_s"] for r in rs)
            print(f"| {way} | {args.trades:,} | {secs:.1f} s | {rate:,.0f} |")
        print()
        if "direct" in runs and "prepare" in runs:
            ratios = [
                p["seconds"] / d["seconds"]
                for d, p in zip(runs["direct"], runs["prepare"], strict=False)
            ]
            same = {r["sha256"] for w in ways for r in runs[w]}
            print(
                f"direct/prepare speed, per repetition: {[round(x, 2) for x in ratios]}, "
                f"median {statistics.median(ratios):.2f}x; candles of every way byte-identical: "
                f"{len(same) == 1}"
            )
        if "direct" in runs:
            for name in ("flink-read", "reader"):
                ceiling = [
                    d["trades_per_s"] / c["trades_per_s"]
                    for d, c in zip(runs["direct"], runs[name], strict=True)
                ]
                print(f"direct / {name} ceiling, median {statistics.median(ceiling):.2f}")


if __name__ == "__main__":
    main()
