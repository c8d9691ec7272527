"""A savepoint of the operator's earlier state layout restores into the current one.

Until the lean operator, the PTF kept each market's clock packed into bytes in a value state
(`state`); it now keeps it as a live object in map state (`clockState`, udfs/ MarketClock) and
moves a packed clock over on the market's first call after the restore. This test runs the
operator built from the last commit with the packed layout (git, `mvn -o`), stops it with a
savepoint after two closed windows, restores the current build from it and checks that the
candles continue exactly once: the windows already emitted are not emitted again (the clock's
emitted sequence came over), the next ones follow, equal to the batch reference.

Cost: one offline Maven build (~20 s) and two short jobs on the session cluster (~1 min).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from candleflow import binance_files, reference
from devstack.sample_data import COINM_DAY
from devstack.stack import Stack
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
from tests.jobs.test_kafka_iceberg import produce
from tests.jobs.test_upgrade import job_env

pytestmark = [pytest.mark.integration, pytest.mark.flink]

# The last commit of udfs/ with the packed value-state layout (Market.packed).
PACKED_LAYOUT_COMMIT = "eac9bc3"


@pytest.fixture(scope="module")
def packed_layout_jar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("mvn") is None:
        pytest.skip("mvn not installed")
    src = tmp_path_factory.mktemp("udfs-packed")
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", PACKED_LAYOUT_COMMIT, "udfs"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    built = subprocess.run(
        ["mvn", "-B", "-q", "-o", "-f", str(src / "udfs" / "pom.xml"), "package", "-DskipTests"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return src / "udfs" / "target" / "candleflow-udfs.jar"


@pytest.mark.skipif(not COINM_DAY.exists(), reason="shared data not present")
def test_packed_layout_savepoint_restores_into_live_state(
    flink_cluster: Stack,
    packed_layout_jar: Path,
    unique_topic: Callable[..., str],
    tmp_path: Path,
    cancel_leftovers: list[str],  # noqa: F811
) -> None:
    s = flink_cluster.settings
    topics = {k: unique_topic(f"layout-{k}") for k in ("trades", "candles", "late_trades")}
    env = job_env(s, topics, tmp_path)
    cli = Cli(stack_env(s))
    options = ("--intervals", "1m,5m", "--startup-mode", "earliest-offset", "--parallelism", "1")

    day = [t for t in binance_files.read_trades(COINM_DAY) if t.event_time_us < T0_US + 390_000_000]
    want_1m = reference.batch_candles(day, "1m")
    before = [t for t in day if t.event_time_us < T0_US + 150_000_000]
    after = [t for t in day if t.event_time_us >= T0_US + 150_000_000]

    # The packed layout: windows 00:00 and 00:01 (1m) close; stop with a savepoint.
    old = submit({**env, "CANDLEFLOW_UDF_JAR": str(packed_layout_jar)}, *options, "--no-iceberg")
    cancel_leftovers.append(old)
    wait_tasks_running(s, old)
    produce(s, topics["trades"], before)
    assert committed_candles(s, topics["candles"], 2) == want_1m[:2]
    savepoint = stop_with_savepoint(cli, s, old, tmp_path / "sp")

    # The current build, restored from it: 00:02 .. 00:05 (1m) and 00:00 (5m) follow, once.
    new = submit(env, *options, "--no-iceberg", "--from-savepoint", savepoint)
    cancel_leftovers.append(new)
    wait_tasks_running(s, new)
    produce(s, topics["trades"], after)
    want = want_1m[:6] + reference.batch_candles(day, "5m")[:1]
    key = lambda c: (c.interval, c.window_start_us)  # noqa: E731
    got = committed_candles(s, topics["candles"], len(want))
    assert sorted(got, key=key) == sorted(want, key=key)
    # Nothing more (a re-emitted window would show up here).
    assert len(committed_candles(s, topics["candles"], len(want) + 1, timeout=10)) == len(want)
