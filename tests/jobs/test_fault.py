"""Exactly-once under failure: SIGKILL the candles job's process mid-stream, start it again
from the latest retained checkpoint; candles.v1 (read_committed) and silver.candles hold
each revision exactly once, identical to an uninterrupted run (the reference, which the
uninterrupted run equals: test_kafka_iceberg)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from candleflow import binance_files, reference
from devstack.sample_data import COINM_DAY
from jobs.candle_iceberg import ensure_tables
from tests.jobs.fault_runner import SETTINGS
from tests.jobs.test_kafka_iceberg import (
    arrival,
    consume_committed,
    iceberg_candles,
    produce,
)

pytestmark = [pytest.mark.integration, pytest.mark.flink, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def _latest_checkpoint(ckpt: Path) -> Path | None:
    found = sorted(ckpt.glob("*/chk-*/_metadata"), key=lambda p: int(p.parent.name[4:]))
    return found[-1].parent if found else None


def _start(args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.jobs.fault_runner", *args],
        cwd=ROOT,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _wait(pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.skipif(not COINM_DAY.exists(), reason="shared data not present")
def test_sigkill_and_restore_from_checkpoint(stack, unique_topic, unique_namespace, tmp_path):
    s = stack.settings
    trades = [
        t
        for t in binance_files.read_trades(COINM_DAY)
        if t.event_time_us < 1_778_198_400_000_000 + 2 * 3600 * 1_000_000
    ]
    sent = arrival(trades)
    last_real = max(t.event_time_us for t in sent)
    # A sentinel a day later moves the market clock past every real window, so all of them
    # are emitted by the (unbounded) job without an end-of-input flush.
    sentinel = replace(
        sent[-1],
        trade_id=10**12,
        event_time_us=last_real + 86_400_000_000,
        ingest_time_us=last_real + 86_400_000_000,
    )
    ref = reference.stream_reference([*sent, sentinel], settings=SETTINGS)
    expected = [c for c in ref.emissions if c.window_start_us <= last_real]

    t_topic, c_topic, l_topic = (
        unique_topic("trades"),
        unique_topic("candles"),
        unique_topic("late"),
    )
    ensure_tables(s, bronze=unique_namespace, silver=unique_namespace)
    ckpt = tmp_path / "ckpt"
    args = [t_topic, c_topic, l_topic, unique_namespace, ckpt.as_uri()]
    produce(s, t_topic, sent[: len(sent) // 2])
    first = _start(args, tmp_path / "run1.log")
    try:
        _wait(
            lambda: (c := _latest_checkpoint(ckpt)) is not None and int(c.name[4:]) >= 3,
            300,
            "three checkpoints",
        )
        produce(s, t_topic, sent[len(sent) // 2 :])  # the second half arrives mid-run
        time.sleep(3)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    restore = _latest_checkpoint(ckpt)
    assert restore is not None
    produce(s, t_topic, [sentinel])
    second = _start([*args, restore.as_uri()], tmp_path / "run2.log")
    try:

        def done() -> bool:
            return len(consume_committed(s, c_topic, "candle")) >= len(expected)

        _wait(done, 600, f"{len(expected)} committed candles")
        time.sleep(5)  # anything beyond would be a duplicate: give it time to show up
        got = consume_committed(s, c_topic, "candle")
    finally:
        os.killpg(second.pid, signal.SIGKILL)
        second.wait()

    def key(c):
        return (reference.candle_key(c), c.revision)

    assert len(got) == len({key(c) for c in got}), "a revision was committed twice"
    assert sorted(got, key=key) == sorted(expected, key=key)
    final = {}
    for c in expected:
        if (
            reference.candle_key(c) not in final
            or final[reference.candle_key(c)].revision < c.revision
        ):
            final[reference.candle_key(c)] = c
    assert iceberg_candles(s, unique_namespace) == final
