"""`ingest replay --resume`: a replay killed with SIGKILL and started again continues after
the last trade the topic holds, so every trade is in the topic exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from functools import cache
from itertools import islice

import pytest
from hypothesis import given
from hypothesis import strategies as st

from candleflow.binance_files import read_trades
from devstack.sample_data import COINM_DAY
from devstack.stack import Stack
from ingest.resume import ResumeError, Skipper, last_trades
from tests.ingest.test_kafka import read_topic

FIRST_ID = 480537903
DAY_TRADES = 105_280


@cache
def _two_markets(n: int):
    day = list(islice(read_trades(COINM_DAY), n))
    other = [replace(t, symbol="ETH-USD-PERP", native_symbol="ETHUSD_PERP") for t in day]
    return tuple(t for pair in zip(day, other, strict=True) for t in pair)


@pytest.mark.skipif(not COINM_DAY.exists(), reason="shared data not present")
@given(st.integers(0, 80), st.integers(1, 16))
def test_skipper_passes_exactly_what_follows_the_resume_points(cut: int, batch: int) -> None:
    trades = list(_two_markets(40))
    done = trades[:cut]
    resume = {}
    for t in done:
        resume[(t.exchange, t.symbol)] = t
    skipper = Skipper(resume)
    kept = []
    for i in range(0, len(trades), batch):
        kept += skipper.keep(trades[i : i + batch])
    skipper.check_done()
    assert kept == trades[cut:]


@pytest.mark.skipif(not COINM_DAY.exists(), reason="shared data not present")
def test_skipper_refuses_a_resume_point_not_in_the_files() -> None:
    trades = _two_markets(5)
    stranger = replace(trades[0], trade_id=1)
    skipper = Skipper({(stranger.exchange, stranger.symbol): stranger})
    skipper.keep(trades)
    with pytest.raises(ResumeError, match="trade 1"):
        skipper.check_done()


def _replay(env: dict[str, str], topic: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "candleflow.cli", "ingest", "replay", str(COINM_DAY), "--topic"]
        + [topic, *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.skipif(not COINM_DAY.exists(), reason="shared data not present")
def test_sigkilled_replay_resumes_without_gap_or_duplicate(
    stack: Stack, unique_topic: Callable[..., str]
) -> None:
    topic = unique_topic("trades", partitions=3)
    s = stack.settings
    env = dict(
        os.environ,
        CANDLEFLOW_KAFKA_BOOTSTRAP=s.bootstrap_servers,
        CANDLEFLOW_KAFKA_PORT=str(s.kafka_port),
        CANDLEFLOW_REGISTRY_PORT=str(s.registry_port),
        COLUMNS="200",
    )
    first = _replay(env, topic, "--speed", "2000")
    time.sleep(10)
    assert first.poll() is None, first.communicate()
    os.killpg(first.pid, signal.SIGKILL)  # no flush, no clean close
    first.communicate()
    before = last_trades(s, topic)
    assert len(before) == 1
    cut = next(iter(before.values())).trade_id
    assert FIRST_ID < cut < FIRST_ID + DAY_TRADES - 1
    second = _replay(env, topic, "--resume")
    _, err = second.communicate(timeout=300)
    assert second.returncode == 0, err
    assert f"after trade {cut}" in err
    got = read_topic(s, topic, DAY_TRADES, timeout=180)
    ids = Counter(t.trade_id for _, t in got)
    assert set(ids) == set(range(FIRST_ID, FIRST_ID + DAY_TRADES))  # no gap
    assert max(ids.values()) == 1  # no duplicate
