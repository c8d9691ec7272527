"""The bronze job's upgrade path: stop with a savepoint, restore (`jobs run bronze
--from-savepoint`, what the operator does on `helm upgrade` with upgradeMode savepoint).

Trades go in, some twice; the job is stopped with a savepoint that must hold the dedup
memory and the source's offsets under their stable uids; the restored job (another
parallelism) gets the rest of the trades plus copies of trades from *before* the upgrade.
bronze.trades must then hold every trade exactly once: nothing lost, nothing written twice,
the ids seen before the upgrade still remembered after it.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from candleflow import binance_files
from devstack.sample_data import COINM_DAY
from devstack.stack import Stack
from jobs import bronze
from tests.jobs.harness import iceberg_trades
from tests.jobs.test_cli_cluster import (
    ROOT,
    T0_US,
    Cli,
    cancel_leftovers,  # noqa: F401 - fixture
    stack_env,
    stop_with_savepoint,
    submit,
    wait_tasks_running,
)
from tests.jobs.test_kafka_iceberg import produce

pytestmark = [pytest.mark.integration, pytest.mark.flink]


def _wait_landed(s, namespace: str, want: int, timeout: float = 120) -> list:
    deadline = time.monotonic() + timeout
    while True:
        try:
            landed = iceberg_trades(s, namespace)
        except Exception:  # noqa: BLE001 - the table appears with the job's first commit
            landed = []
        if len(landed) >= want or time.monotonic() > deadline:
            return landed
        time.sleep(2)


@pytest.mark.skipif(not COINM_DAY.exists(), reason="shared data not present")
def test_bronze_restores_its_dedup_memory_from_a_savepoint(
    flink_cluster: Stack,
    unique_topic: Callable[..., str],
    unique_namespace: str,
    tmp_path: Path,
    cancel_leftovers: list[str],  # noqa: F811
) -> None:
    s = flink_cluster.settings
    trades_topic = unique_topic("bronze-up-trades")
    env = {
        **os.environ,
        **stack_env(s),
        "CANDLEFLOW_TOPIC_TRADES": trades_topic,
        "CANDLEFLOW_BRONZE_GROUP_ID": trades_topic,
        "CANDLEFLOW_BRONZE_NAMESPACE": unique_namespace,
        "CANDLEFLOW_BRONZE_CHECKPOINT_INTERVAL_S": "2",
        "CANDLEFLOW_BRONZE_CHECKPOINT_DIR": (tmp_path / "checkpoints").as_uri(),
        "PYTHONPATH": str(ROOT),
    }
    cli = Cli(stack_env(s))
    day = [t for t in binance_files.read_trades(COINM_DAY) if t.event_time_us < T0_US + 240_000_000]
    half = len(day) // 2
    before, after = day[:half], day[half:]

    job1 = submit(env, "--startup-mode", "earliest-offset", "--parallelism", "2", job="bronze")
    cancel_leftovers.append(job1)
    wait_tasks_running(s, job1)
    produce(s, trades_topic, before + before[::7])  # every 7th trade twice
    assert len(_wait_landed(s, unique_namespace, len(before))) == len(before)
    savepoint = stop_with_savepoint(  # the stateful operators: dedup and the source
        cli, s, job1, tmp_path / "sp", bronze.DEDUP_UID, "pipeline/trades_src"
    )

    # Restored at another parallelism; copies of trades from before the upgrade come too.
    job2 = submit(env, "--parallelism", "1", "--from-savepoint", savepoint, job="bronze")
    cancel_leftovers.append(job2)
    wait_tasks_running(s, job2)
    produce(s, trades_topic, after + before[::5] + after[::11])
    landed = _wait_landed(s, unique_namespace, len(day))
    time.sleep(6)  # a few more checkpoints: a copy written twice would show by now
    landed = iceberg_trades(s, unique_namespace)
    counts = Counter(t.trade_id for t in landed)
    assert [k for k, n in counts.items() if n > 1] == []
    assert sorted(landed, key=lambda t: t.trade_id) == sorted(day, key=lambda t: t.trade_id)
