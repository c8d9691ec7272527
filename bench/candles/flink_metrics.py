"""Sustained throughput of a running Flink job from its own REST metrics.

The in-process MiniCluster serves Flink's REST API on a port we choose; every second we
read how many records the source vertex has emitted. The sustained rate is the slope over
the middle of the run (10 % → 90 % of the input), so start-up, planning and the final drain
do not count — the figure a dashboard would show while the job keeps up with a backlog.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

from bench.candles import thread_cpu


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rest_options(port: int) -> dict[str, str]:
    """Table config that exposes the MiniCluster's REST API with fresh metrics."""
    return {
        "rest.bind-port": str(port),
        "rest.port": str(port),
        "rest.address": "127.0.0.1",
        "metrics.fetcher.update-interval": "1000",
    }


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


@dataclass
class SourceProgress:
    """Polls the job's source vertex (`write-records`) until stopped."""

    port: int
    samples: list[tuple[float, int]] = field(default_factory=list)
    # The JVM's per-thread CPU at each sample (bench/candles/thread_cpu.py), when found.
    cpu: list[dict[int, tuple[str, float]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(10)

    def _run(self) -> None:
        base = f"http://127.0.0.1:{self.port}"
        metric_url = None
        jvm = thread_cpu.gateway_jvm()
        while not self._stop.is_set():
            try:
                if metric_url is None:
                    metric_url = self._source_metric_url(base)
                if metric_url:
                    values = _get(metric_url)
                    self.samples.append((time.monotonic(), int(float(values[0]["sum"]))))
                    self.cpu.append(thread_cpu.cpu_by_thread(jvm) if jvm else {})
            except (OSError, KeyError, IndexError, ValueError):
                pass  # REST not up yet, or the job just finished
            self._stop.wait(1.0)

    @staticmethod
    def _source_metric_url(base: str) -> str | None:
        """The source operator's numRecordsOut, summed over subtasks. (The vertex-level
        record counts miss records handed to chained operators, e.g. a blackhole sink.)"""
        jobs = [j for j in _get(f"{base}/jobs/overview")["jobs"] if j["state"] == "RUNNING"]
        if not jobs:
            return None
        jid = jobs[0]["jid"]
        # The source is the vertex nothing feeds: the first in topological order.
        vid = _get(f"{base}/jobs/{jid}")["vertices"][0]["id"]
        url = f"{base}/jobs/{jid}/vertices/{vid}/subtasks/metrics"
        names = [m["id"] for m in _get(url)]
        wanted = [n for n in names if n.startswith("Source__") and n.endswith(".numRecordsOut")]
        return f"{url}?get={urllib.parse.quote(wanted[0])}&agg=sum" if wanted else None

    def _span(self, total: int, lo: float, hi: float) -> tuple[int, int] | None:
        """Sample indexes of the first samples reaching lo·total and hi·total (or, for a
        run that finishes between two metric refreshes, the last sample that moved)."""
        moving = [i for i, (_, n) in enumerate(self.samples) if n > 0]
        if not moving:
            return None
        a = next((i for i in moving if self.samples[i][1] >= lo * total), moving[0])
        later = [i for i in moving if self.samples[i][1] > self.samples[a][1]]
        if not later:
            return None
        b = next((i for i in later if self.samples[i][1] >= hi * total), later[-1])
        return a, b

    def sustained_rate(self, total: int, lo: float = 0.1, hi: float = 0.9) -> float | None:
        """Records/s between lo·total and hi·total of the input."""
        span = self._span(total, lo, hi)
        if span is None:
            return None
        (ta, na), (tb, nb) = self.samples[span[0]], self.samples[span[1]]
        return (nb - na) / (tb - ta)

    def cpu_per_trade(self, total: int, lo: float = 0.1, hi: float = 0.9) -> dict[str, float]:
        """The JVM's CPU µs per trade by thread group over the same span as sustained_rate."""
        span = self._span(total, lo, hi)
        if span is None or len(self.cpu) != len(self.samples) or not self.cpu[span[1]]:
            return {}
        a, b = span
        return thread_cpu.per_trade_us(
            self.cpu[a], self.cpu[b], self.samples[b][1] - self.samples[a][1]
        )

    def rate_by_decile(self, total: int) -> list[float | None]:
        """Records/s within each tenth of the input: shows the JIT warm-up and any slowdown
        (a JVM compiles the hot paths of a new job for the first minute or two)."""
        return [self.sustained_rate(total, k / 10, (k + 1) / 10) for k in range(10)]
