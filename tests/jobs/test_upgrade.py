"""An upgrade that changes the job graph restores from a savepoint (stable operator uids).

The job runs with the Kafka outputs only, is stopped with a savepoint, and comes back with the
Iceberg output added: one more sink, a different graph. Restores refuse unclaimed state
(`jobs run --from-savepoint`), so the restore only starts if the Kafka source, the PTF and
both Kafka sinks find their state; the candles then continue exactly once, and the new
Iceberg table gets what happened after the upgrade. (The bronze job's own upgrade path:
tests/jobs/test_bronze_upgrade.py.) With Flink SQL's generated operator ids
the source and the sinks would be renamed by the added sinks and the restore refused.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from candleflow import binance_files, reference
from candleflow.config import StackSettings
from devstack.sample_data import COINM_DAY
from devstack.stack import Stack
from jobs.candles import PTF_UID
from tests.jobs.test_cli_cluster import (
    ROOT,
    T0_US,
    Cli,
    cancel_leftovers,  # noqa: F401 - fixture
    committed_candles,
    stack_env,
    stop_with_savepoint,
    submit,
    wait_tasks_running,
)
from tests.jobs.test_kafka_iceberg import iceberg_candles, produce

pytestmark = [pytest.mark.integration, pytest.mark.flink]


def job_env(s: StackSettings, topics: dict[str, str], tmp_path: Path, **extra: str) -> dict:
    """The environment of `candleflow jobs run candles` on its own topics, checkpointing every
    2 s into tmp_path."""
    return {
        **os.environ,
        **stack_env(s),
        **{f"CANDLEFLOW_TOPIC_{k.upper()}": v for k, v in topics.items()},
        "CANDLEFLOW_JOB_GROUP_ID": topics["trades"],
        "CANDLEFLOW_JOB_TRANSACTIONAL_ID_PREFIX": topics["candles"],
        "CANDLEFLOW_JOB_CHECKPOINT_INTERVAL_S": "2",
        "CANDLEFLOW_JOB_CHECKPOINT_DIR": (tmp_path / "checkpoints").as_uri(),
        "PYTHONPATH": str(ROOT),
        **extra,
    }


@pytest.mark.skipif(not COINM_DAY.exists(), reason="shared data not present")
def test_savepoint_restores_into_a_job_with_added_outputs(
    flink_cluster: Stack,
    unique_topic: Callable[..., str],
    unique_namespace: str,
    tmp_path: Path,
    cancel_leftovers: list[str],  # noqa: F811
) -> None:
    s = flink_cluster.settings
    topics = {k: unique_topic(f"upgrade-{k}") for k in ("trades", "candles", "late_trades")}
    env = job_env(s, topics, tmp_path, CANDLEFLOW_JOB_SILVER_NAMESPACE=unique_namespace)
    cli = Cli(stack_env(s))
    options = ("--intervals", "1m", "--startup-mode", "earliest-offset", "--parallelism", "1")

    day = [t for t in binance_files.read_trades(COINM_DAY) if t.event_time_us < T0_US + 270_000_000]
    want = reference.batch_candles(day, "1m")
    before = [t for t in day if t.event_time_us < T0_US + 150_000_000]
    after = [t for t in day if t.event_time_us >= T0_US + 150_000_000]

    # v1: Kafka outputs only. Windows 00:00 and 00:01 close; stop with a savepoint.
    job1 = submit(env, *options, "--no-iceberg")
    cancel_leftovers.append(job1)
    wait_tasks_running(s, job1)
    produce(s, topics["trades"], before)
    assert committed_candles(s, topics["candles"], 2) == want[:2]
    # the stateful operators, by name
    savepoint = stop_with_savepoint(cli, s, job1, tmp_path / "sp", PTF_UID, "pipeline/trades_src")

    # v2: the Iceberg output added (silver.candles), restored from v1.
    job2 = submit(env, *options, "--iceberg", "--from-savepoint", savepoint)
    cancel_leftovers.append(job2)
    wait_tasks_running(s, job2)
    produce(s, topics["trades"], after)
    # Offsets and candle state carried over: 00:02 and 00:03 follow, nothing twice.
    assert committed_candles(s, topics["candles"], 4) == want[:4]
    # The new output starts at the upgrade: the windows closed since.
    # (Each sink commits on the same checkpoint, in its own operator: allow a moment.)
    deadline = time.monotonic() + 60
    while True:
        silver = sorted(
            iceberg_candles(s, unique_namespace).values(), key=lambda c: c.window_start_us
        )
        if silver == want[2:4]:
            break
        assert time.monotonic() < deadline, (len(silver), len(after))
        time.sleep(2)
    assert committed_candles(s, topics["candles"], 5, timeout=10) == want[:4]

    # Back to v1 (the Iceberg output removed): its committer's state has nowhere to go,
    # so the restore is refused, in one line, and nothing is dropped.
    savepoint2 = stop_with_savepoint(cli, s, job2, tmp_path / "sp2")
    back = ("--no-iceberg", "--from-savepoint", savepoint2)
    refused = subprocess.run(
        [sys.executable, "-m", "candleflow.cli", "jobs", "run", "candles", *options, *back],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert refused.returncode == 1, refused.stdout + refused.stderr[-3000:]
    message = refused.stderr.strip().splitlines()[-1]
    assert message.startswith(f"error: {savepoint2} holds state of operator "), message
    assert "Traceback" not in refused.stderr
