"""CPU by thread group of every `candleflow backfill` run's in-process Flink JVM, while it runs.

Polls /proc once a second for PyFlink gateway JVMs whose parent is a `candleflow.cli
backfill` process, keeps the last CPU time seen for each thread (task threads end with the
job) and prints, per JVM, the seconds by thread name (first 15 characters), as JSON. Run it
next to bench/backfill/e2e.py:

    .venv/bin/python -m bench.backfill.threads 1500 > threads.json &
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import sys
import time

from bench.candles.thread_cpu import cpu_by_thread


def _backfill_jvms() -> dict[int, str]:
    out = {}
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{p}/cmdline", "rb") as fh:
                if b"PythonGatewayServer" not in fh.read():
                    continue
            with open(f"/proc/{p}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{ppid}/cmdline", "rb") as fh:
                parent = fh.read().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "candleflow.cli backfill" in parent:
            out[int(p)] = parent
    return out


def main() -> None:
    end = time.time() + float(sys.argv[1] if len(sys.argv) > 1 else 600)
    seen: dict[int, dict[int, tuple[str, float]]] = {}
    commands: dict[int, str] = {}
    while time.time() < end:
        for pid, command in _backfill_jvms().items():
            commands[pid] = command
            with contextlib.suppress(OSError):
                seen.setdefault(pid, {}).update(cpu_by_thread(pid))
        time.sleep(1)
    report = {}
    for pid, threads in seen.items():
        groups: dict[str, float] = collections.defaultdict(float)
        for name, seconds in threads.values():
            groups[name[:15]] += seconds
        report[pid] = {
            "cmd": commands[pid][-120:],
            "threads": dict(sorted(groups.items(), key=lambda g: -g[1])[:14]),
        }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
