"""`run_anomalies(remote=True)`: the job submitted to the stack's Flink session cluster
(Python workers on the TaskManager), bounded over a candles topic, exactly-once output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from candleflow.anomaly_rules import active_after, detect_all
from candleflow.config import Topics
from devstack.testing import unique_name
from explainer.service import read_topic_to_end
from tests.anomalies.test_job_local import crafted
from tests.anomalies.test_job_stack import gold_rows, produce_candles

pytestmark = [pytest.mark.integration, pytest.mark.flink]

ROOT = Path(__file__).resolve().parents[2]
SUBMIT = """
from jobs.anomalies import run_anomalies
run_anomalies(bounded=True, remote=True, wait=True, checkpoint_interval_ms=1000,
              iceberg_database={ns!r}, group_id={group!r}, transactional_id_prefix={tx!r},
              startup_mode="earliest-offset")
"""


def test_job_on_the_session_cluster(flink_cluster, unique_topic, unique_namespace):
    s = flink_cluster.settings
    topics = Topics(candles=unique_topic("candles"), anomalies=unique_topic("anomalies"))
    stream = crafted()
    produce_candles(s, topics.candles, stream)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("HADOOP_CLASSPATH", "CANDLEFLOW_KAFKA_BOOTSTRAP", "CANDLEFLOW_REGISTRY")
    }
    env.update(
        {
            "CANDLEFLOW_DATA_DIR": str(s.data_dir),
            "CANDLEFLOW_KAFKA_PORT": str(s.kafka_port),
            "CANDLEFLOW_REGISTRY_PORT": str(s.registry_port),
            "CANDLEFLOW_FLINK_REST_PORT": str(s.flink_rest_port),
            "CANDLEFLOW_TOPIC_CANDLES": topics.candles,
            "CANDLEFLOW_TOPIC_ANOMALIES": topics.anomalies,
        }
    )
    code = SUBMIT.format(group=unique_name("g"), tx=unique_name("tx"), ns=unique_namespace)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, timeout=600, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-4000:]
    got = sorted(
        (a.anomaly_id, a.status) for a in read_topic_to_end(s, topics.anomalies, "anomaly")
    )
    expected = detect_all(stream)
    assert got == sorted((a.anomaly_id, a.status) for a in expected)
    final = active_after(expected)
    gold = gold_rows(s, unique_namespace)  # one row per id, its final status
    assert sorted((i, st) for i, st, _ in gold) == sorted(
        (a.anomaly_id, "ACTIVE" if a.anomaly_id in final else "RETRACTED")
        for a in {a.anomaly_id: a for a in expected}.values()
    )
