"""`candleflow explainer run` as a real process: /healthz and /metrics, one explanation per
anomaly, a clean stop on SIGTERM, and no trace of the API key in its logs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from devstack.testing import unique_name
from explainer.service import read_topic_to_end
from tests.explainer.test_service_stack import events, produce

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-ant-" + "api03-PROCESS-TEST-do-not-log-0123456789"  # fake, split for secret scanners


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_explainer_process(stack, unique_topic, unique_namespace, fake_anthropic, tmp_path):
    s = stack.settings
    anomalies_topic, explanations_topic = unique_topic("anomalies"), unique_topic("expl")
    _, anomalies = events()
    produce(s, anomalies_topic, "anomaly", anomalies)
    port = free_port()
    env = {
        **os.environ,
        "ANTHROPIC_API_KEY": KEY,
        "CANDLEFLOW_EXPLAINER_BASE_URL": fake_anthropic.base_url,
        "CANDLEFLOW_DATA_DIR": str(s.data_dir),
        "CANDLEFLOW_KAFKA_PORT": str(s.kafka_port),
        "CANDLEFLOW_REGISTRY_PORT": str(s.registry_port),
        "CANDLEFLOW_TOPIC_ANOMALIES": anomalies_topic,
        "CANDLEFLOW_TOPIC_EXPLANATIONS": explanations_topic,
        "CANDLEFLOW_TOPIC_CANDLES": unique_topic("candles"),
        "CANDLEFLOW_EXPLAINER_GROUP_ID": unique_name("g"),
        "CANDLEFLOW_EXPLAINER_TRANSACTIONAL_ID": unique_name("tx"),
        "CANDLEFLOW_EXPLAINER_ICEBERG_TABLE": f"{unique_namespace}.explanations",
        "ANTHROPIC_LOG": "debug",
    }
    for k in ("CANDLEFLOW_KAFKA_BOOTSTRAP", "CANDLEFLOW_REGISTRY"):
        env.pop(k, None)
    log = tmp_path / "explainer.log"
    with log.open("w") as fh:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "candleflow.cli",
                "explainer",
                "run",
                "--metrics-port",
                str(port),
                "--log-level",
                "DEBUG",
            ],
            cwd=ROOT,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and len(fake_anthropic.requests) < 3:
                assert proc.poll() is None, log.read_text()[-3000:]
                time.sleep(0.5)
            assert len(fake_anthropic.requests) == 3, log.read_text()[-3000:]
            assert get(f"http://127.0.0.1:{port}/healthz") == (200, "ok\n")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                code, metrics = get(f"http://127.0.0.1:{port}/metrics")
                if 'candleflow_explainer_explanations_total{source="llm"} 3.0' in metrics:
                    break
                time.sleep(0.5)
            assert 'candleflow_explainer_explanations_total{source="llm"} 3.0' in metrics
            assert 'candleflow_explainer_llm_tokens_total{kind="output"}' in metrics
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    text = log.read_text()
    assert '"event": "explainer.stopped"' in text
    assert "Request options" in text  # the SDK's debug log was on
    assert KEY not in text and "PROCESS-TEST" not in text
    rows = read_topic_to_end(s, explanations_topic, "explanation")
    assert len(rows) == 3 and len({e.anomaly_id for e in rows}) == 3
