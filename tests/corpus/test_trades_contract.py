"""The bad-input corpus, trades.v1 part: records that fail the Avro contract, between valid
trades, through the real candles job on the real stack (cases/avro.yaml).

The job restarts on the record (a failure may be transient) until its restart budget
(jobs/flink_env.py RestartSettings, failure-rate) is spent, then ends FAILED with the
deserialization error: loud, and for good. The budget here is 2 restarts 1 s apart, so a
case costs about 20-40 s."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from adapters import avro
from candleflow.config import CandleSettings
from candleflow.domain import InstrumentKind, Side, Trade
from jobs.candles import run
from tests.corpus.cases_io import simple
from tests.jobs.harness import job_config_for, stack_table_env

pytestmark = [
    pytest.mark.integration,
    pytest.mark.flink,
]

SETTINGS = CandleSettings(intervals="1m")
T0 = 1_704_067_200_000_000
FAIL_WITHIN_MS = 240_000  # a job that restarts for ever would hang the test: bounded wait


def _trade(n: int) -> Trade:
    return Trade(
        exchange="binance",
        symbol="BTC-USDT",
        native_symbol="BTCUSDT",
        trade_id=n,
        price=Decimal("42000.5"),
        quantity=Decimal("0.1"),
        side=Side.BUY,
        event_time_us=T0 + n * 1_000_000,
        ingest_time_us=T0 + n * 1_000_000,
        kind=InstrumentKind.SPOT,
    )


def _produce(settings: Any, topic: str, case: dict[str, Any]) -> None:
    ser = avro.serializer(avro.registry_client(settings), "trade")
    ctx = avro.value_context(topic)
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
    for n in range(1, 21):
        producer.produce(topic, key=b"binance:BTC-USDT", value=ser(_trade(n), ctx))
    if "truncate" in case:
        bad = ser(_trade(21), ctx)[: case["truncate"]]
    else:
        bad = bytes.fromhex(case["value_hex"])
    producer.produce(topic, key=b"binance:BTC-USDT", value=bad)
    for n in range(22, 200):
        producer.produce(topic, key=b"binance:BTC-USDT", value=ser(_trade(n), ctx))
    assert producer.flush(60) == 0


@pytest.mark.parametrize("case", simple("avro"))
def test_bad_record_stops_the_job(
    case: dict[str, Any],
    stack: Any,
    unique_topic: Any,
    unique_namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CANDLEFLOW_RESTART_MAX_FAILURES", "2")
    monkeypatch.setenv("CANDLEFLOW_RESTART_DELAY_S", "1")
    s = stack.settings
    t_topic, c_topic, l_topic = (
        unique_topic("trades"),
        unique_topic("candles"),
        unique_topic("late"),
    )
    _produce(s, t_topic, case)
    config = job_config_for(s, t_topic, c_topic, l_topic, unique_namespace, SETTINGS)
    t_env = stack_table_env(s, tmp_path / "ckpt")
    with pytest.raises(Exception) as info:  # noqa: PT011 - py4j wraps the Java failure
        run(t_env, config).wait(FAIL_WITHIN_MS)
    text = str(info.value)
    # Failed for good after the restart budget, not timed out while restarting for ever.
    assert "Recovery is suppressed by FailureRateRestartBackoffTimeStrategy" in text, text[-3000:]
    assert case["error"] in text, text[-3000:]
