"""Where a job's CPU goes, per trade: the Flink JVM's threads read from /proc.

The in-process MiniCluster is a `java` child of the bench's Python process (PyFlink's
gateway). Its threads carry Flink's task names ("Source: trades_src...", "ProcessTable...",
"IcebergStreamWriter", ...), so CPU time per thread group between two moments of the run,
divided by the trades the source emitted in between, is the job's cost per trade by stage
— the budget that decides how many trades/s two cores can carry.
"""

from __future__ import annotations

import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# First matching prefix of the thread name (Linux keeps 15 characters) names its group.
GROUPS = (
    ("Source Data Fet", "Kafka fetch"),
    ("Source: ", "source (Kafka + Avro)"),
    ("ProcessTableFun", "candles PTF (+ chained filters)"),
    ("IcebergStreamWr", "Iceberg writer"),
    ("IcebergFilesCom", "Iceberg committer"),
    ("C2 CompilerThre", "JIT compiler"),
    ("C1 CompilerThre", "JIT compiler"),
    ("GC Thread", "garbage collector"),
    ("G1 ", "garbage collector"),
    ("kafka-producer-", "Kafka producers"),
    # the peers (bench/peers): Spark's tasks, and the CPU of a peer's Python process
    ("Executor task l", "Spark executor tasks"),
    ("python ", "Python process"),
)


GATEWAY_CLASS = b"org.apache.flink.client.python.PythonGatewayServer"


def gateway_jvm(parent: int | None = None) -> int | None:
    """PyFlink's gateway JVM among the java children of `parent` (default: this process).
    Not just any java child: when the bench starts the stack, Kafka and the registry are
    java children too."""
    parent = os.getpid() if parent is None else parent
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            comm, rest = text.split("(", 1)[1].rsplit(")", 1)
            fields = rest.split()
            if int(fields[1]) != parent or comm != "java":
                continue
            if GATEWAY_CLASS in (stat.parent / "cmdline").read_bytes():
                return int(stat.parent.name)
        except (OSError, IndexError, ValueError):
            continue  # the process ended, or not a stat line
    return None


def group_of(thread_name: str) -> str:
    for prefix, group in GROUPS:
        if thread_name.startswith(prefix):
            return group
    return "other JVM threads"


def cpu_by_thread(pid: int) -> dict[int, tuple[str, float]]:
    """thread id -> (name, CPU seconds so far)."""
    out: dict[int, tuple[str, float]] = {}
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # the thread ended
        name = text.split("(", 1)[1].rsplit(")", 1)[0]
        fields = text.rsplit(")", 1)[1].split()
        # utime and stime are fields 14 and 15 of stat; here offset by the two before ")".
        out[int(stat.parent.name)] = (name, (int(fields[11]) + int(fields[12])) / CLOCK_TICKS)
    return out


def per_trade_us(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], trades: int
) -> dict[str, float]:
    """CPU µs per trade by thread group between two snapshots (threads born in between
    count from zero)."""
    groups: dict[str, float] = {}
    for tid, (name, seconds) in after.items():
        spent = seconds - before.get(tid, (name, 0.0))[1]
        group = group_of(name)
        groups[group] = groups.get(group, 0.0) + spent
    return {g: s * 1e6 / trades for g, s in sorted(groups.items(), key=lambda x: -x[1])}
