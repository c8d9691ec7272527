"""Maintenance while the candles job commits: the streaming commits go through (retried
by Iceberg when they race a maintenance commit), and silver.candles ends exactly as the
reference says.

The real candles job (Kafka -> candles -> Iceberg upsert, checkpoints every 300 ms) runs
over a day of real COIN-M trades (105,280) with corrections and duplicates, while a thread
runs `Maintainer.maintain` (optimize, optimize_manifests, expire_snapshots keeping 20,
remove_orphan_files) in a loop. Cost: about 1.5 min (the reference, the job, Trino).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from candleflow import binance_files, reference
from candleflow.config import CandleSettings, StackSettings
from devstack.sample_data import COINM_DAY
from devstack.upsert_commits import sequence_numbers
from jobs.candle_iceberg import ensure_silver_table
from jobs.candles import run
from lakehouse.maintain import Maintainer, TableReport
from lakehouse.settings import MaintenanceSettings
from serving.settings import ServingSettings
from tests.jobs.harness import job_config_for, stack_table_env
from tests.jobs.test_kafka_iceberg import arrival, iceberg_candles, produce
from tests.serving.conftest import kafka_stack, trino_server  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.integration, pytest.mark.flink, pytest.mark.trino, pytest.mark.slow]

SETTINGS = CandleSettings(intervals="1m,5m", allowed_lateness_seconds=120)


def _checkpoint(m: Maintainer, table: str) -> int:
    """The Flink checkpoint id of the table's newest Flink commit (0: none yet)."""
    ns, name = table.split(".")
    rows = m.query(
        "SELECT max(CAST(element_at(summary, 'flink.max-committed-checkpoint-id') AS bigint)) "
        f'FROM iceberg."{ns}"."{name}$snapshots"',
        table,
    )
    return int(rows[0][0] or 0)


class MaintenanceLoop(threading.Thread):
    """Runs maintenance on one table until stopped; records each run and whether the job
    committed while it ran (the Flink checkpoint id moved between its start and end)."""

    def __init__(self, m: Maintainer, table: str):
        super().__init__(daemon=True)
        self.m, self.table = m, table
        self.stop = threading.Event()
        self.reports: list[TableReport] = []
        self.overlapped = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                start = _checkpoint(self.m, self.table)
                if start == 0:  # no Flink commit yet: nothing to maintain
                    self.stop.wait(0.2)
                    continue
                self.reports.append(self.m.maintain(self.table))
                if _checkpoint(self.m, self.table) > start > 0:
                    self.overlapped += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc


@pytest.fixture
def loop_guard() -> Iterator[list[MaintenanceLoop]]:
    loops: list[MaintenanceLoop] = []
    yield loops
    for loop in loops:
        loop.stop.set()
        loop.join(120)


@pytest.mark.skipif(not COINM_DAY.exists(), reason="shared data not present")
def test_streaming_commits_survive_concurrent_maintenance(
    trino_server: StackSettings,  # noqa: F811
    unique_topic,
    unique_namespace,
    tmp_path,
    loop_guard,
):
    s = trino_server
    sent = arrival(list(binance_files.read_trades(COINM_DAY)))
    ref = reference.stream_reference(sent, settings=SETTINGS)
    topics = unique_topic("trades"), unique_topic("candles"), unique_topic("late")
    produce(s, topics[0], sent)
    table = f"{unique_namespace}.candles"
    ensure_silver_table(s, namespace=unique_namespace)
    maint = MaintenanceSettings(
        tables=[table], retention="0s", keep_last=20, orphan_retention="1h", attempts=5
    )
    loop = MaintenanceLoop(Maintainer(maint, s, ServingSettings(trino_url="")), table)
    loop_guard.append(loop)

    config = job_config_for(s, *topics, unique_namespace, SETTINGS)
    # No restarts: a streaming commit that failed against a concurrent maintenance commit
    # would fail the job and this test, instead of being retried by a restart.
    t_env = stack_table_env(
        s, tmp_path / "ckpt", checkpoint_interval_ms=300, extra={"restart-strategy.type": "none"}
    )
    loop.start()
    run(t_env, config).wait()
    loop.stop.set()
    loop.join(300)

    assert loop.error is None, repr(loop.error)
    assert loop.overlapped >= 1, f"no maintenance run overlapped a commit: {loop.reports}"
    assert iceberg_candles(s, unique_namespace) == ref.final()
    # A last run after the job: the table reads the same, compacted.
    final = Maintainer(maint, s, ServingSettings(trino_url="")).maintain(table)
    assert final.after is not None and final.after.data_files <= 1
    newest_delete, oldest_data = sequence_numbers(s, table)
    assert newest_delete <= oldest_data, "a delete file still applies after optimize"
    assert iceberg_candles(s, unique_namespace) == ref.final()
