"""The terminal client: chart rendering, `watch` in plain mode end to end (candles,
an anomaly, then its explanation), `history` csv/parquet, `serve` stopping on SIGTERM."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal

import grpc
import pyarrow.parquet as pq
import pytest
from rich.console import Console
from typer.testing import CliRunner

from candleflow.cli import app
from candleflow.domain import Anomaly, Explanation
from serving import convert, watch
from serving.client import MarketDataClient
from serving.pb import pb
from tests.serving import data
from tests.serving.conftest import TOKEN


def test_render_draws_the_last_candles_and_anomalies():
    state = watch.WatchState("BTC-USDT", "1m")
    for c in data.spot_candles()[:200]:
        state.add_candle(c)
    assert not state.add_candle(data.spot_candles()[5])  # an older revision changes nothing
    assert state.add_candle(data.corrected(data.spot_candles()[199]))
    msg = pb.AnomalyWithExplanation(
        anomaly=pb.Anomaly(anomaly_id="a1", rule="VOLUME_SPIKE", severity="HIGH", symbol="BTC-USDT")
    )
    state.add_anomaly(msg)
    console = Console(record=True, width=100, color_system=None)
    console.print(watch.render(state, 100))
    text = console.export_text()
    last = state.series()[-1]
    assert f"close {convert.dec_str(last.close)}" in text and "rev 1" in text
    assert "VOLUME_SPIKE" in text and "explaining" in text
    assert "█" in text and "│" in text
    state.add_anomaly(
        pb.AnomalyWithExplanation(
            anomaly=pb.Anomaly(anomaly_id="a1"), explanation=pb.Explanation(summary="big buyer")
        )
    )
    console = Console(record=True, width=100, color_system=None)
    console.print(watch.render(state, 100))
    assert "big buyer" in console.export_text()


@pytest.mark.integration
async def test_watch_plain_mode_shows_candles_anomaly_and_explanation(
    candle_topics, server_factory
):
    candles = list(data.spot_candles()[:30])
    a = Anomaly(
        anomaly_id="anom-1",
        rule="VOLUME_SPIKE",
        severity="HIGH",
        exchange="binance",
        symbol="BTC-USDT",
        interval="1m",
        window_start_us=candles[3].window_start_us,
        window_end_us=candles[3].window_end_us,
        value=5.2,
        threshold=4.0,
        details={"z": "5.2"},
    )
    e = Explanation(
        anomaly_id="anom-1",
        summary="Volume 5x the hour's mean on a sell-off",
        key_factors=["volume"],
        confidence=0.8,
        caveats=[],
        model="offline",
        offline=True,
        created_at_us=1,
    )
    prod = candle_topics.producer()
    prod.send(candles)
    prod.send([a], contract="anomaly")
    prod.send([e], contract="explanation")
    _, port = await server_factory()
    out = io.StringIO()
    async with MarketDataClient(f"127.0.0.1:{port}", token=TOKEN) as client:
        task = asyncio.create_task(
            watch.watch(
                client,
                "BTC-USDT",
                "1m",
                start_time_us=0,
                plain=True,
                out=out,
                until=lambda s: (
                    len(s.candles) == len(candles)
                    and "anom-1" in s.anomalies
                    and s.anomalies["anom-1"].explanation.summary != ""
                ),
            )
        )
        state = await asyncio.wait_for(task, 60)
        got = await client.get_anomaly("anom-1")
        assert got.anomaly.rule == "VOLUME_SPIKE" and got.anomaly.details["z"] == "5.2"
        assert got.explanation.summary == e.summary
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await client.get_anomaly("no-such-anomaly")
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    lines = out.getvalue().splitlines()
    assert [ln for ln in lines if not ln.startswith("ANOMALY")] == [watch.line(c) for c in candles]
    assert state.series() == candles
    assert "anom-1" in state.anomalies
    assert any("VOLUME_SPIKE" in ln for ln in lines if ln.startswith("ANOMALY"))
    assert state.anomalies["anom-1"].explanation.summary == e.summary


@pytest.mark.integration
def test_history_command_csv_and_parquet(candle_table, tmp_path):
    env = {"CANDLEFLOW_DATA_DIR": str(candle_table.settings.data_dir)}
    runner = CliRunner()
    table = candle_table.tables.candles
    out, pq_path = tmp_path / "c.csv", tmp_path / "c.parquet"
    base = ["history", "BTC-USDT", "--interval", "1m", "--table", table]
    res = runner.invoke(app, [*base, "--out", str(out)], env=env)
    assert res.exit_code == 0, res.output
    want = sorted(
        (c for c in candle_table.after if c.symbol == "BTC-USDT"), key=lambda c: c.window_start_us
    )
    got = list(csv.DictReader(out.open()))
    assert [Decimal(r["close"]) for r in got] == [c.close for c in want]
    assert [int(r["revision"]) for r in got] == [c.revision for c in want]
    # As of the first snapshot: every candle at revision 0, to parquet.
    res = runner.invoke(
        app,
        [
            *base,
            "--format",
            "parquet",
            "--out",
            str(pq_path),
            "--snapshot",
            str(candle_table.snapshots[0]),
        ],
        env=env,
    )
    assert res.exit_code == 0, res.output
    old = sorted(
        (c for c in candle_table.before if c.symbol == "BTC-USDT"), key=lambda c: c.window_start_us
    )
    rows = pq.read_table(pq_path).to_pylist()
    assert [r["high"] for r in rows] == [c.high for c in old]
    assert [r["revision"] for r in rows] == [0] * len(old)
    res = runner.invoke(app, ["history", "BTC-USDT", "--table", "nope.candles"], env=env)
    assert res.exit_code == 1 and "does not exist" in res.output


@pytest.mark.integration
def test_serve_stops_gracefully_on_sigterm(kafka_stack, tmp_path):
    s = kafka_stack.settings
    env = {
        **os.environ,
        "CANDLEFLOW_SERVING_TOKENS": TOKEN,
        "CANDLEFLOW_KAFKA_PORT": str(s.kafka_port),
        "CANDLEFLOW_REGISTRY_PORT": str(s.registry_port),
        "CANDLEFLOW_DATA_DIR": str(s.data_dir),
    }
    port = 50000 + os.getpid() % 10000
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "candleflow.cli",
            "serve",
            "--addr",
            f"127.0.0.1:{port}",
            "--metrics-port",
            "0",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        import grpc

        while time.monotonic() < deadline:
            try:
                with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
                    grpc.channel_ready_future(ch).result(timeout=1)
                break
            except grpc.FutureTimeoutError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
        assert "serving.stopped" in out
        assert "loop=uvloop" in out  # the default event loop of `serve`
    finally:
        if proc.poll() is None:
            proc.kill()
