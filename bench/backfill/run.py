"""Backfill's trade preparation, new (streamed) vs old (in memory), side by side in one run.

The preparation is everything `candleflow backfill` does before the Flink job starts: read
the data.binance.vision files and write the job's input CSV in exchange order.

- old: every trade of the files as a `Trade` in one list, sorted, `write_trades_csv`
  (the code before this change, kept here verbatim as the baseline);
- new: `jobs.backfill_prepare.prepare_trades` — straight through when the rows are in exchange
  order, an external merge sort (default run size) when they are not.

Input: a synthetic large aggTrades zip built from real rows, the COIN-M day
(BTCUSD_PERP 2026-05-08) repeated on following days with shifted ids and times, as
data.binance.vision publishes it (header, ms, in order), and a copy with its rows shuffled.
Each measurement is a fresh interpreter (modules imported before measuring): wall time of
the preparation and its peak RSS growth (VmHWM − VmRSS before). Modes alternate within each
repetition; medians over the repetitions, ratios new/old. Both ways' outputs are compared
byte for byte.

    .venv/bin/python -m bench.backfill.run --rows 1000000 --reps 3
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from devstack.sample_data import COINM_DAY

ROOT = Path(__file__).resolve().parents[2]
NAME = "BTCUSD_PERP-aggTrades-2026-05"  # a monthly file's name: symbol and kind from it


def build(rows: int, out_dir: Path) -> tuple[Path, Path]:
    """(in-order zip, shuffled zip) of `rows` real aggTrades rows."""
    with zipfile.ZipFile(COINM_DAY) as zf, zf.open(zf.namelist()[0]) as fh:
        lines = io.TextIOWrapper(fh).read().splitlines()
    header, day = lines[0], lines[1:]
    out: list[str] = []
    k = 0
    while len(out) < rows:
        shift_ms, shift_id = k * 86_400_000, k * 10_000_000_000
        for r in day[: rows - len(out)]:
            f = r.split(",")
            out.append(
                f"{int(f[0]) + shift_id},{f[1]},{f[2]},{int(f[3]) + shift_id},"
                f"{int(f[4]) + shift_id},{int(f[5]) + shift_ms},{f[6]}"
            )
        k += 1
    paths = []
    for tag, body in (("in-order", out), ("shuffled", random.Random(1).sample(out, len(out)))):
        d = out_dir / tag
        d.mkdir()
        path = d / f"{NAME}.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(f"{NAME}.csv", "\n".join([header, *body]) + "\n")
        paths.append(path)
    return paths[0], paths[1]


def _status(name: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(name + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(name)


def child(mode: str, src: Path, dest: Path) -> None:
    """One measurement in this (fresh) process; prints a JSON line."""
    from candleflow import binance_files
    from jobs.backfill_prepare import prepare_trades
    from jobs.candle_files import write_trades_csv

    def old() -> int:  # the preparation before this change (load_trades + write_trades_csv)
        trades = []
        for f in [src]:
            trades.extend(binance_files.read_trades(f, symbol=None, exchange="binance"))
        trades.sort(key=lambda t: (t.exchange, t.symbol, t.event_time_us, t.trade_id))
        write_trades_csv(trades, dest)
        return len(trades)

    before = _status("VmRSS")
    t0 = time.perf_counter()
    n = old() if mode == "old" else prepare_trades([src], "binance", None, dest).trades
    seconds = time.perf_counter() - t0
    growth = _status("VmHWM") - before
    print(json.dumps({"trades": n, "seconds": seconds, "rss_growth_mb": growth / 1e6}))


def measure(mode: str, src: Path, dest: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "bench.backfill.run", "--child", mode, str(src), str(dest)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["sha256"] = hashlib.sha256(dest.read_bytes()).hexdigest()
    dest.unlink()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--child", nargs=3, metavar=("MODE", "SRC", "DEST"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return
    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as tmp:
        t0 = time.perf_counter()
        ordered, shuffled = build(args.rows, Path(tmp))
        print(
            f"input: {args.rows:,} aggTrades rows (COIN-M day repeated), zip "
            f"{ordered.stat().st_size / 1e6:.1f} MB; built in {time.perf_counter() - t0:.1f}s; "
            f"load_avg_1m {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        cases = [(tag, src) for tag, src in (("in-order", ordered), ("shuffled", shuffled))]
        runs: dict[tuple[str, str], list[dict]] = {}
        for rep in range(args.reps):
            for tag, src in cases:
                for mode in ("old", "new"):
                    r = measure(mode, src, Path(tmp) / "trades.csv")
                    runs.setdefault((tag, mode), []).append(r)
                    print(
                        json.dumps({"rep": rep, "input": tag, "mode": mode, **r}),
                        flush=True,
                    )
        print(f"load_avg_1m at end {os.getloadavg()[0]:.1f}")
        print()
        print(
            "| input | way | trades | seconds (median) | peak RSS growth (median) | bytes/trade |"
        )
        print("| --- | --- | --- | --- | --- | --- |")
        for tag, _ in cases:
            for mode in ("old", "new"):
                rs = runs[(tag, mode)]
                secs = statistics.median(r["seconds"] for r in rs)
                mb = statistics.median(r["rss_growth_mb"] for r in rs)
                print(
                    f"| {tag} | {mode} | {rs[0]['trades']:,} | {secs:.1f} s | {mb:.1f} MB "
                    f"| {mb * 1e6 / rs[0]['trades']:.0f} |"
                )
        print()
        for tag, _ in cases:
            old, new = runs[(tag, "old")], runs[(tag, "new")]
            same = {r["sha256"] for r in old + new}
            ratio_t = statistics.median(r["seconds"] for r in new) / statistics.median(
                r["seconds"] for r in old
            )
            ratio_m = statistics.median(r["rss_growth_mb"] for r in old) / statistics.median(
                r["rss_growth_mb"] for r in new
            )
            print(
                f"{tag}: new/old time {ratio_t:.2f}x, old/new memory {ratio_m:.0f}x, "
                f"outputs byte-identical: {len(same) == 1}"
            )


if __name__ == "__main__":
    main()
