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
import urllib.request
from dataclasses import dataclass, field


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
        "metrics.fetcher.update-interval": "500",
    }


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


@dataclass
class SourceProgress:
    """Polls the job's source vertex (`write-records`) until stopped."""

    port: int
    samples: list[tuple[float, int]] = field(default_factory=list)
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
        while not self._stop.is_set():
            try:
                jobs = _get(f"{base}/jobs/overview")["jobs"]
                running = [j for j in jobs if j["state"] == "RUNNING"]
                if running:
                    job = _get(f"{base}/jobs/{running[0]['jid']}")
                    # The source is the vertex nothing feeds: the first in topological order.
                    source = job["vertices"][0]
                    self.samples.append(
                        (time.monotonic(), int(source["metrics"].get("write-records", 0)))
                    )
            except (OSError, KeyError, IndexError, ValueError):
                pass  # REST not up yet, or the job just finished
            self._stop.wait(0.5)

    def sustained_rate(self, total: int, lo: float = 0.1, hi: float = 0.9) -> float | None:
        """Records/s between the first samples reaching lo·total and hi·total."""
        a = next(((t, n) for t, n in self.samples if n >= lo * total), None)
        b = next(((t, n) for t, n in self.samples if n >= hi * total), None)
        if a is None or b is None or b[0] <= a[0]:
            return None
        return (b[1] - a[1]) / (b[0] - a[0])
