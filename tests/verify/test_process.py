"""`candleflow verify live` as a real process on the real Kafka + registry: our candles of two
hours of the real COIN-M day in a candles topic, a fake Binance COIN-M serving the same
klines with one planted wrong value. The planted value, and only it, reaches reconcile.v1
with market, window, field and both values; /metrics counts every window checked and
matched; /healthz is up; SIGTERM stops it cleanly. Cost: about 10 s on a running stack."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from adapters import avro
from candleflow.config import StackSettings
from candleflow.domain import Candle
from devstack.fakes.exchange_candles import FakeCandleExchange
from tests.explainer.test_process import get
from tests.verify.markets import candles

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def produce_candles(s: StackSettings, topic: str, rows: list[Candle]) -> None:
    ser = avro.serializer(avro.registry_client(s), "candle")
    producer = Producer(s.kafka_config())
    for c in rows:
        key = f"{c.exchange}:{c.symbol}".encode()
        producer.produce(topic, ser(c, avro.value_context(topic)), key)
    assert producer.flush(30) == 0


def read_all(s: StackSettings, topic: str, timeout_s: float = 30.0) -> list[dict[str, Any]]:
    """Every committed record of a one-partition topic, as Avro dicts."""
    deser = avro.deserializer(avro.registry_client(s), "reconcile", domain=False)
    consumer = Consumer(s.kafka_config(**{"group.id": topic, "isolation.level": "read_committed"}))
    _, end = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    consumer.assign([TopicPartition(topic, 0, 0)])
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(out) < end and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                out.append(deser(msg.value(), avro.value_context(topic)))
    finally:
        consumer.close()
    return out


def sample(text: str, name: str, labels: dict[str, str]) -> float | None:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    return None


def started_port(log: Path) -> int | None:
    for line in log.read_text().splitlines():
        if '"verify.started"' in line:
            return int(json.loads(line)["metrics_port"])
    return None


async def test_verify_live_process(stack, unique_topic, tmp_path) -> None:
    s = stack.settings
    ours = candles("binance-coinm")
    one_minute = [c for c in ours if c.interval == "1m" and not c.is_empty]
    target = one_minute[len(one_minute) // 2]
    planted = {(target.symbol, "1m", target.window_start_us, "close"): "1.0"}
    candles_topic, reconcile_topic = unique_topic("candles", partitions=3), unique_topic("rec")
    produce_candles(s, candles_topic, ours)
    first = min(c.window_start_us for c in ours)
    lookback_s = (time.time_ns() // 1000 - first) / 1_000_000 + 30
    fake = FakeCandleExchange(ours, price_decimals=1, volume_decimals=0, override=planted)
    await fake.start()
    env = {
        **os.environ,
        "CANDLEFLOW_DATA_DIR": str(s.data_dir),
        "CANDLEFLOW_KAFKA_PORT": str(s.kafka_port),
        "CANDLEFLOW_REGISTRY_PORT": str(s.registry_port),
        "CANDLEFLOW_TOPIC_CANDLES": candles_topic,
        "CANDLEFLOW_TOPIC_RECONCILE": reconcile_topic,
        "CANDLEFLOW_VERIFY_LOOKBACK_SECONDS": str(lookback_s),
    }
    for k in ("CANDLEFLOW_KAFKA_BOOTSTRAP", "CANDLEFLOW_REGISTRY"):
        env.pop(k, None)
    log = tmp_path / "verify.log"
    args = ["--markets", "binance:BTC-USD-PERP", "--intervals", "1m,5m"]
    args += ["--cycle-seconds", "0.5", "--metrics-port", "0", "--binance-coinm-url", fake.url]
    with log.open("w") as fh:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "candleflow.cli", "verify", "live", *args,
            cwd=ROOT, env=env, stdout=fh, stderr=fh,
        )  # fmt: skip
        try:
            metrics, port = "", None
            m1 = {"exchange": "binance", "symbol": "BTC-USD-PERP", "interval": "1m"}
            m5 = {**m1, "interval": "5m"}
            checked = "candleflow_reconcile_windows_checked_total"
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                assert proc.returncode is None, log.read_text()[-3000:]
                port = port or started_port(log)
                if port:
                    _, metrics = await asyncio.to_thread(get, f"http://127.0.0.1:{port}/metrics")
                    if sample(metrics, checked, m1) == 120 and sample(metrics, checked, m5) == 24:
                        break
                await asyncio.sleep(0.3)
            assert sample(metrics, checked, m1) == 120, log.read_text()[-3000:]
            assert sample(metrics, checked, m5) == 24
            assert sample(metrics, "candleflow_reconcile_windows_matched_total", m1) == 119
            assert sample(metrics, "candleflow_reconcile_windows_matched_total", m5) == 24
            wrong = "candleflow_reconcile_mismatches_total"
            assert sample(metrics, wrong, {**m1, "field": "close"}) == 1
            assert sample(metrics, wrong, {**m1, "field": "volume"}) == 0  # at 0 from the start
            code, body = await asyncio.to_thread(get, f"http://127.0.0.1:{port}/healthz")
            assert (code, body) == (200, "ok\n")
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 30) == 0, log.read_text()[-3000:]
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            await fake.stop()
    text = log.read_text()
    assert '"event": "verify.stopping"' in text and '"event": "verify.mismatch"' in text
    rows = read_all(s, reconcile_topic)
    assert len(rows) == 1, rows
    [r] = rows
    assert (r["exchange"], r["symbol"], r["interval"], r["field"], r["kind"]) == (
        "binance",
        "BTC-USD-PERP",
        "1m",
        "close",
        "FIELD",
    )
    assert Decimal(r["ours"]) == target.close and r["theirs"] == "1.0"
    assert r["candle_revision"] == 0
