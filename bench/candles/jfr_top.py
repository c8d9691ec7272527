"""Where a Flink operator's CPU goes, from a Java Flight Recorder file.

Record the bench's JVM (PyFlink starts it, so the variable reaches it):

    JAVA_TOOL_OPTIONS='-XX:StartFlightRecording=filename=/tmp/candles.jfr,settings=profile' \\
      .venv/bin/python -m bench.candles.bench --trades 1000000 --no-latency --no-iceberg

then: .venv/bin/python -m bench.candles.jfr_top /tmp/candles.jfr

Counts the execution samples of the threads whose name holds --thread (by default the PTF's
task thread, which is what the bench's "candles PTF" CPU line measures) and whose stack holds a
frame matching --frame, and prints, among them, the share of samples per method inclusive (the
method is anywhere on the stack) and self (top frame).
"""

from __future__ import annotations

import argparse
import json
import subprocess
from collections import Counter


def _frames(event: dict) -> list[str]:
    stack = event["values"].get("stackTrace") or {}
    out = []
    for f in stack.get("frames", []):
        m = f.get("method") or {}
        cls = (m.get("type") or {}).get("name", "?")
        out.append(f"{cls.replace('/', '.')}.{m.get('name', '?')}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("jfr")
    ap.add_argument("--thread", default="ProcessTableFunction", help="thread name filter")
    ap.add_argument("--frame", default="", help="stack filter (substring)")
    ap.add_argument("--top", type=int, default=40)
    args = ap.parse_args()
    out = subprocess.run(
        [
            "jfr",
            "print",
            "--json",
            "--stack-depth",
            "64",
            "--events",
            "jdk.ExecutionSample",
            args.jfr,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    events = json.loads(out)["recording"]["events"]
    total = len(events)
    inclusive: Counter[str] = Counter()
    self_: Counter[str] = Counter()
    matched = 0
    for e in events:
        thread = (e["values"].get("sampledThread") or {}).get("javaName") or ""
        frames = _frames(e)
        if args.thread not in thread or not any(args.frame in f for f in frames):
            continue
        matched += 1
        self_[frames[0]] += 1
        for f in set(frames):
            inclusive[f] += 1
    print(f"{total} samples, {matched} of threads {args.thread!r} with a frame {args.frame!r}")
    for title, counter in (("inclusive", inclusive), ("self", self_)):
        print(f"\n{title} (% of the matching samples):")
        for name, n in counter.most_common(args.top):
            print(f"  {100 * n / max(matched, 1):5.1f}  {name}")


if __name__ == "__main__":
    main()
