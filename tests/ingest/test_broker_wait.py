"""`ingest replay` started while the broker is away: it waits for it as long as a produced
trade would (CANDLEFLOW_INGEST_DELIVERY_TIMEOUT_MS), then fails with a clear error, never a
traceback. Found by the long chaos run (docs/reliability.md): a replay restarted with
`--resume` just before a broker kill died 30 s later in `list_topics` with a traceback, and
the rest of the input was never produced.

Cost (shared test stack): the unreachable case ~5 s, the comeback case ~15 s.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from devstack.sample_data import COINM_DAY
from devstack.stack import Stack

TRADES = 500
OUTAGE_S = 8.0  # how long the (proxied) broker is away when the replay starts


def _small_day(tmp_path: Path) -> Path:
    """The first TRADES trades of the real COIN-M day, as a data.binance.vision csv."""
    with zipfile.ZipFile(COINM_DAY) as z, z.open(z.namelist()[0]) as f:
        lines = [f.readline() for _ in range(TRADES + 1)]
    out = tmp_path / "BTCUSD_PERP-aggTrades-2026-05-08.csv"
    out.write_bytes(b"".join(lines))
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _replay(file: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "candleflow.cli", "ingest", "replay", str(file), *extra],
        env={**os.environ, "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.integration
@pytest.mark.skipif(not COINM_DAY.exists(), reason="shared data not present")
def test_replay_without_a_broker_says_so_after_the_delivery_timeout(
    stack: Stack, tmp_path: Path
) -> None:
    t0 = time.monotonic()
    proc = _replay(
        _small_day(tmp_path),
        {  # the registry of the shared stack, no broker at all
            "CANDLEFLOW_KAFKA_BOOTSTRAP": f"127.0.0.1:{_free_port()}",
            "CANDLEFLOW_REGISTRY_PORT": str(stack.settings.registry_port),
            "CANDLEFLOW_INGEST_DELIVERY_TIMEOUT_MS": "2000",
        },
    )
    took = time.monotonic() - t0
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "Kafka unreachable" in out and "within 2 s" in out, out
    assert "CANDLEFLOW_INGEST_DELIVERY_TIMEOUT_MS" in out
    assert "Traceback" not in out, out
    assert took < 25, f"waited {took:.0f} s, not the 2 s delivery timeout"


@contextmanager
def _late_proxy(port: int, target: tuple[str, int], after_s: float) -> Iterator[None]:
    """A TCP port that refuses connections for `after_s`, then forwards to `target`: a
    bootstrap broker that is away when the client starts and comes back."""
    stop = threading.Event()

    def pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                s.close()

    def serve() -> None:
        if stop.wait(after_s):
            return
        with socket.create_server(("127.0.0.1", port)) as srv:
            srv.settimeout(0.2)
            while not stop.is_set():
                try:
                    client, _ = srv.accept()
                except TimeoutError:
                    continue
                upstream = socket.create_connection(target)
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=pipe, args=(a, b), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


@pytest.mark.integration
@pytest.mark.skipif(not COINM_DAY.exists(), reason="shared data not present")
def test_replay_waits_for_a_broker_that_comes_back(
    stack: Stack, unique_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = unique_topic("trades", partitions=3)
    s = stack.settings
    port = _free_port()
    t0 = time.monotonic()
    with _late_proxy(port, (s.host, s.kafka_port), OUTAGE_S):
        proc = _replay(
            _small_day(tmp_path),
            {
                "CANDLEFLOW_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}",
                "CANDLEFLOW_KAFKA_PORT": str(s.kafka_port),
                "CANDLEFLOW_REGISTRY_PORT": str(s.registry_port),
                "CANDLEFLOW_INGEST_DELIVERY_TIMEOUT_MS": "60000",
            },
            "--topic",
            topic,
        )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert f"{TRADES} trades produced" in out, out
    assert time.monotonic() - t0 >= OUTAGE_S  # it did start while the broker was away
