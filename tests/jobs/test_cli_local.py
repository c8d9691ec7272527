"""`candleflow jobs run candles --local`: the in-process job attached to the stack produces
candles, and SIGTERM stops it cleanly (exit 0) with its checkpoints retained to restart from."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from candleflow import binance_files
from devstack.sample_data import COINM_DAY
from tests.jobs.test_kafka_iceberg import consume_committed, produce

pytestmark = [pytest.mark.flink, pytest.mark.integration]


@pytest.mark.skipif(not COINM_DAY.exists(), reason="shared data not present")
def test_local_job_produces_candles_and_stops_cleanly_on_sigterm(stack, unique_topic, tmp_path):
    s = stack.settings
    t_topic, c_topic, l_topic = unique_topic("local"), unique_topic("local-c"), unique_topic("l-l")
    produce(s, t_topic, list(binance_files.read_trades(COINM_DAY))[:20_000])
    env = {
        **os.environ,
        "CANDLEFLOW_KAFKA_PORT": str(s.kafka_port),
        "CANDLEFLOW_REGISTRY_PORT": str(s.registry_port),
        "CANDLEFLOW_DATA_DIR": str(tmp_path),
        "CANDLEFLOW_TOPIC_TRADES": t_topic,
        "CANDLEFLOW_TOPIC_CANDLES": c_topic,
        "CANDLEFLOW_TOPIC_LATE_TRADES": l_topic,
        "CANDLEFLOW_JOB_CHECKPOINT_INTERVAL_S": "2",
        "CANDLEFLOW_JOB_GROUP_ID": f"{t_topic}-job",
        "CANDLEFLOW_JOB_TRANSACTIONAL_ID_PREFIX": c_topic,
    }
    cmd = [sys.executable, "-m", "candleflow.cli", "jobs", "run", "candles", "--local"]
    cmd += ["--no-iceberg", "--startup-mode", "earliest-offset", "--parallelism", "1"]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        candles: list = []
        deadline = time.monotonic() + 180
        while not candles and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[0][-3000:]
            time.sleep(3)
            candles = consume_committed(s, c_topic, "candle")
        assert candles, "no committed candle within 3 minutes"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out[-3000:]
    assert "stopping on signal" in out and "cancelled" in out
    # The retained checkpoint to restart from, under the data dir.
    metadata = list((tmp_path / "checkpoints" / "candles").glob("*/chk-*/_metadata"))
    assert metadata, out[-3000:]
    # What was committed stays committed, once: every candle revision at most once.
    keys = [
        (c.interval, c.window_start_us, c.revision) for c in consume_committed(s, c_topic, "candle")
    ]
    assert len(keys) == len(set(keys)) >= len(candles)


def test_local_restore_from_a_missing_savepoint_is_one_clear_line(stack, tmp_path):
    s = stack.settings
    missing = (tmp_path / "no-such-savepoint").as_uri()
    env = {
        **os.environ,
        "CANDLEFLOW_KAFKA_PORT": str(s.kafka_port),
        "CANDLEFLOW_REGISTRY_PORT": str(s.registry_port),
        "CANDLEFLOW_DATA_DIR": str(tmp_path),
    }
    cmd = [sys.executable, "-m", "candleflow.cli", "jobs", "run", "candles", "--local"]
    cmd += ["--no-iceberg", "--from-savepoint", missing]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: cannot restore from {missing}: FileNotFoundException: "), last
