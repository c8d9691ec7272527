"""Ingest throughput, Candleflow vs cryptofeed, side by side in one run, one core each.

    bench/ingest/setup_cryptofeed.sh        # once: cryptofeed in bench/.venv-cryptofeed
    .venv/bin/python bench/ingest/run.py [--rounds 5] [--cpu 1] [--no-produce]

Frame sets (all real data):
  coinm-day:  the 105,280 BTCUSD_PERP aggregate trades of 2026-05-08 (data.binance.vision)
              as Binance combined-stream aggTrade frames, in the documented WS format
  captures:   every recorded trade frame both parsers understand (Binance aggTrade,
              Coinbase Advanced market_trades, Kraken v1 trade), repeated to ~50k frames
Sides: cryptofeed (its venv), candleflow-parse, and on coinm-day candleflow-produce (the
live loop's per-frame work, Connection.receive, to acked Kafka, default producer settings:
delivery reports for failures only), candleflow-produce-all (the same with a delivery
report per message, the opt-in) and candleflow-live (the same as produce
plus the WebSocket read from the fake Binance server: live.py).
Rounds alternate the sides (ABAB...) so machine load hits all alike; medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from candleflow.binance_files import read_trades  # noqa: E402
from devstack.fakes.exchange import binance_agg_frames  # noqa: E402
from devstack.sample_data import CAPTURES, COINM_DAY  # noqa: E402
from ingest.captures import read_frames  # noqa: E402

OURS = [str(ROOT / ".venv" / "bin" / "python"), str(ROOT / "bench" / "ingest" / "ours.py")]
LIVE = [str(ROOT / ".venv" / "bin" / "python"), str(ROOT / "bench" / "ingest" / "live.py")]
THEIRS = [
    str(ROOT / "bench" / ".venv-cryptofeed" / "bin" / "python"),
    str(ROOT / "bench" / "ingest" / "theirs.py"),
]


def frame_sets(tmp: Path) -> dict[str, Path]:
    coinm = binance_agg_frames(list(read_trades(COINM_DAY)), "BTCUSD_PERP")
    captured = []
    for name in ("BINANCE", "COINBASE", "KRAKEN"):
        for f in read_frames(CAPTURES / f"{name}.jsonl.zst"):
            if (
                '"aggTrade"' in f.data
                or '"market_trades"' in f.data
                or f.data.endswith('"trade","XMR/USD"]')
                or '"trade","SC/EUR"]' in f.data
            ):
                captured.append((f.exchange, f.data))
    reps = max(1, 50_000 // len(captured))
    out = {}
    for name, rows in (
        ("coinm-day", [("binance", f) for f in coinm]),
        ("captures", captured * reps),
    ):
        path = tmp / f"{name}.jsonl"
        path.write_text("".join(json.dumps({"x": x, "f": f}) + "\n" for x, f in rows))
        out[name] = path
    return out


def run(cmd: list[str]) -> dict:
    done = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cpu", type=int, default=1)
    ap.add_argument("--no-produce", action="store_true")
    args = ap.parse_args()
    results: dict[str, dict[str, list[dict]]] = {}
    stack = None
    if not args.no_produce:
        # the produce side needs Kafka + registry: the shared test stack, reused or started
        from devstack.testing import acquire_stack

        stack, started = acquire_stack(flink=False)
    try:
        measure(args, results)
    finally:
        if stack is not None:
            from devstack.testing import release_stack

            release_stack(stack, started)
    report(results)


def measure(args: argparse.Namespace, results: dict[str, dict[str, list[dict]]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sets = frame_sets(Path(tmp))
        for name, path in sets.items():
            sides = {
                "cryptofeed": THEIRS + [str(path), str(args.cpu)],
                "candleflow-parse": OURS + [str(path), str(args.cpu), "parse"],
            }
            if name == "coinm-day" and not args.no_produce:
                sides["candleflow-produce"] = OURS + [str(path), str(args.cpu), "produce"]
                # opt-in: a delivery report per message (ProducerSettings.delivery_reports)
                sides["candleflow-produce-all"] = OURS + [str(path), str(args.cpu), "produce-all"]
                # the same plus the WebSocket read, from the fake server on the other core
                sides["candleflow-live"] = LIVE + [str(path), str(args.cpu)]
            results[name] = {side: [] for side in sides}
            for r in range(args.rounds):
                for side, cmd in sides.items():
                    out = run(cmd)
                    results[name][side].append(out)
                    print(
                        f"{name} round {r + 1} {side}: {out['trades']} trades "
                        f"{out['trades'] / out['seconds']:,.0f}/s wall, "
                        f"{out['trades'] / out['cpu_seconds']:,.0f}/CPU-s "
                        f"(load {os.getloadavg()[0]:.1f})",
                        flush=True,
                    )


def _paired(runs: list[dict], base: list[dict], count: str, clock: str) -> float:
    """Median over rounds of each round's rate ratio to cryptofeed's run of the same round,
    so load swings between rounds cancel out."""
    return statistics.median(
        (o[count] / o[clock]) / (b[count] / b[clock]) for o, b in zip(runs, base, strict=True)
    )


def report(results: dict[str, dict[str, list[dict]]]) -> None:
    # Two clocks: wall time on the pinned core (what one core delivers, with whatever else
    # the machine runs on it), and the process's own CPU time, every thread included
    # (trades per CPU-second: less sensitive to other load on the core).
    summary: dict[str, dict] = {"load_average_at_end": list(os.getloadavg())}
    for name, sides in results.items():
        rows = {}
        base = sides["cryptofeed"]
        for side, runs in sides.items():
            rows[side] = {
                "trades": runs[0]["trades"],
                "frames": runs[0]["frames"],
                "trades_per_s": statistics.median(o["trades"] / o["seconds"] for o in runs),
                "frames_per_s": statistics.median(o["frames"] / o["seconds"] for o in runs),
                "trades_per_cpu_s": statistics.median(o["trades"] / o["cpu_seconds"] for o in runs),
                "ratio_trades": _paired(runs, base, "trades", "seconds"),
                "ratio_frames": _paired(runs, base, "frames", "seconds"),
                "ratio_trades_cpu": _paired(runs, base, "trades", "cpu_seconds"),
            }
        summary[name] = rows
    print(json.dumps(summary, indent=2))
    print(
        "| frames | side | trades | trades/s wall (median) | x cryptofeed (paired) "
        "| trades/CPU-s (median) | x cryptofeed, CPU (paired) | frames/s | x cryptofeed, frames/s |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, rows in summary.items():
        if name.startswith("load"):
            continue
        for side, row in rows.items():
            print(
                f"| {name} | {side} | {row['trades']:,} | {row['trades_per_s']:,.0f} | "
                f"{row['ratio_trades']:.2f} | {row['trades_per_cpu_s']:,.0f} | "
                f"{row['ratio_trades_cpu']:.2f} | {row['frames_per_s']:,.0f} | "
                f"{row['ratio_frames']:.2f} |"
            )
    print(f"load average at the end: {summary['load_average_at_end']}")


if __name__ == "__main__":
    main()
