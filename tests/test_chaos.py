"""The short chaos run (bench/chaos): a few faults with a fixed seed over a few hours of the
real COIN-M day, through the whole pipeline, compared with a fault-free run of the same
input: no trade lost, no revision, row or model call duplicated, every subscriber complete.

It starts two private stacks of its own (free ports, a temporary data dir), one after the
other, because it kills their processes: never the shared test stack.
"""

from __future__ import annotations

import socket

import pytest

from bench.chaos.run import main
from devstack.sample_data import COINM_DAY

pytestmark = [pytest.mark.integration, pytest.mark.flink, pytest.mark.slow]

SEED = 15
KINDS = "taskmanager,ingest,serving,explainer"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.skipif(not COINM_DAY.exists(), reason="shared data not present")
def test_short_chaos_run_loses_and_duplicates_nothing(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("CANDLEFLOW_DATA_DIR", str(tmp_path))
    rest = _free_port()
    while rest + 1 > 65535 or not _port_free(rest + 1):  # Flink RPC is REST + 1
        rest = _free_port()
    for name in (
        "KAFKA_PORT",
        "KAFKA_CONTROLLER_PORT",
        "KAFKA_SASL_PORT",
        "KAFKA_SASL_SSL_PORT",
        "REGISTRY_PORT",
        "GRPC_PORT",
    ):
        monkeypatch.setenv(f"CANDLEFLOW_{name}", str(_free_port()))
    monkeypatch.setenv("CANDLEFLOW_FLINK_REST_PORT", str(rest))
    for name in ("CANDLEFLOW_KAFKA_BOOTSTRAP", "CANDLEFLOW_REGISTRY"):
        monkeypatch.delenv(name, raising=False)
    code = main(
        [
            "--seed",
            str(SEED),
            "--faults",
            "4",
            "--kinds",
            KINDS,
            "--trades",
            "20000",
            "--subscribers",
            "5",
            "--duration",
            "80",
            "--quiet-s",
            "20",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out[-6000:]
    assert f"seed {SEED}: 4 faults, 4 recovered, trades lost 0, rows duplicated 0" in out


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
