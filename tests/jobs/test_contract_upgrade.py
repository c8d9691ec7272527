"""The v1 -> v2 contract upgrade, end to end on the local stack (docs/operations.md, "Evolving
a contract"): Trade v2 adds the exchange's `sequence`, Candle v2 a `volatility`.

Candles: the job runs as the previous release (contract version 1: v1 candles, a v1
silver table) while ingest already writes Trade v2 next to v1; it is stopped with a
savepoint and the v2 job restored from it, which evolves the silver table and writes Candle
v2, while v1 and v2 trades keep arriving. No candle is lost or doubled (the Kafka topic and
silver equal the batch reference), the topic holds v1 records then v2 records, silver's rows
from before the upgrade read NULL volatility and those after it the figure. A client built
from the old proto and a current one are then both served, history and live.

Bronze: the same savepoint upgrade of the bronze job on real Coinbase matches, which carry
the exchange's sequence: bronze.trades gains the column, rows landed before read NULL.

Cost (four job submissions, a client JVM each, are most of it): 159 s + 68 s at a load
average of 9 to 12 on the 2-core machine (2026-12-03), 48 s + 42 s on a quieter one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import duckdb
import pytest
from confluent_kafka import Consumer, Producer

from adapters import avro, catalog
from adapters.iceberg_files import data_files
from candleflow import binance_files, reference
from candleflow.config import StackSettings, Topics
from candleflow.domain import Trade
from devstack.sample_data import CAPTURES, COINM_DAY
from devstack.stack import Stack
from serving import pb as pb_module
from serving.client import MarketDataClient
from serving.convert import dec_str
from serving.server import create_server
from serving.settings import ServingSettings
from tests.jobs.harness import iceberg_trades
from tests.jobs.test_bronze_upgrade import _wait_landed
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

pytestmark = [pytest.mark.integration, pytest.mark.flink]

TOKEN = "contract-upgrade-token"
COINBASE_MATCHES = CAPTURES / "coinbase_exchange_matches_2021-04-17.jsonl"


def produce(s: StackSettings, topic: str, trades: Iterable[tuple[Trade, int]]) -> None:
    """Each trade in the given Trade version, as an ingest pod of that release writes it
    (the serializer registers the version under the topic's subject: BACKWARD-checked)."""
    client = avro.registry_client(s)
    ser = {v: avro.serializer(client, "trade", version=v) for v in (1, 2)}
    producer = Producer({"bootstrap.servers": s.bootstrap_servers, "enable.idempotence": True})
    ctx = avro.value_context(topic)
    for t, version in trades:
        producer.produce(topic, key=t.key.encode(), value=ser[version](t, ctx))
        producer.poll(0)
    assert producer.flush(60) == 0


def job_env(s: StackSettings, prefix: str, topics: dict[str, str], tmp_path: Path) -> dict:
    """The environment of `candleflow jobs run` for a job of CANDLEFLOW_<prefix>_* settings
    on these topics: its own consumer group, checkpoints every 2 s under tmp_path."""
    return {
        **os.environ,
        **stack_env(s),
        **{f"CANDLEFLOW_TOPIC_{k.upper()}": v for k, v in topics.items()},
        f"CANDLEFLOW_{prefix}_GROUP_ID": topics["trades"],
        f"CANDLEFLOW_{prefix}_CHECKPOINT_INTERVAL_S": "2",
        f"CANDLEFLOW_{prefix}_CHECKPOINT_DIR": (tmp_path / "checkpoints").as_uri(),
        "PYTHONPATH": str(ROOT),
    }


def writer_versions(s: StackSettings, topic: str, contract: str, want: int) -> list[int]:
    """The contract version each committed record of `topic` was written with, in order."""
    client = avro.registry_client(s)
    by_id: dict[int, int] = {}
    consumer = Consumer(
        {
            "bootstrap.servers": s.bootstrap_servers,
            "group.id": f"{topic}-versions",
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe([topic])
    out: list[int] = []
    deadline = time.monotonic() + 60
    try:
        while len(out) < want and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            schema_id = int.from_bytes(msg.value()[1:5], "big")
            if schema_id not in by_id:
                written = json.loads(client.get_schema(schema_id).schema_str)
                by_id[schema_id] = next(
                    v
                    for v in (1, 2)
                    if [f["name"] for f in written["fields"]]
                    == [f["name"] for f in avro.schema(contract, v)["fields"]]
                )
            out.append(by_id[schema_id])
    finally:
        consumer.close()
    return out


def silver_volatility(s: StackSettings, namespace: str) -> dict[int, object]:
    """window_start µs -> the volatility column of silver's rows (data files read directly,
    files from before the column was added read NULL: what Iceberg gives for them)."""
    table = catalog.catalog(s).load_table(f"{namespace}.candles")
    assert "volatility" in {f.name for f in table.schema().fields}
    files = [p for p, _ in data_files(table, table.current_snapshot())]
    rows = duckdb.sql(
        "SELECT epoch_us(window_start), volatility FROM "
        f"read_parquet({files!r}, union_by_name = true) ORDER BY 1"
    ).fetchall()
    return dict(rows)


OLD_CLIENT = r"""
import importlib.util, json, sys
import grpc
from google.protobuf.json_format import MessageToDict

# (by path: the project's own `candleflow` package would shadow a namespace package)
spec = importlib.util.spec_from_file_location("old_pb2", sys.argv[1])
pb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pb)

target, token, symbol, want = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
ch = grpc.insecure_channel(target)
meta = [("authorization", f"Bearer {token}")]
ser = lambda m: m.SerializeToString()
get = ch.unary_unary("/candleflow.v1.MarketData/GetCandles", request_serializer=ser,
                     response_deserializer=pb.GetCandlesResponse.FromString)
history = get(pb.GetCandlesRequest(symbol=symbol, interval="1m"), metadata=meta, timeout=60)
stream = ch.unary_stream("/candleflow.v1.MarketData/StreamCandles", request_serializer=ser,
                         response_deserializer=pb.CandleEvent.FromString)
live = []
call = stream(pb.StreamCandlesRequest(symbols=[symbol], intervals=["1m"], from_beginning=True),
              metadata=meta, timeout=60)
for event in call:
    if event.HasField("candle"):
        live.append(event.candle)
    if len(live) == want:
        call.cancel()
        break
out = {
    name: [{"fields": MessageToDict(c, preserving_proto_field_name=True),
            "bytes": c.SerializeToString().hex()} for c in candles]
    for name, candles in (("history", history.candles), ("live", live))
}
print(json.dumps(out))
"""


def old_client(tmp_path: Path, target: str, symbol: str, want: int) -> dict:
    """GetCandles and StreamCandles from a client built from the proto before v2 (the field
    added since removed), in a process of its own (one proto package per process)."""
    from grpc_tools import protoc

    proto = (pb_module.PROTO_DIR / pb_module.PROTO_FILE).read_text()
    added = "  string volatility = 21;\n"
    assert added in proto
    src, gen = tmp_path / "old_proto", tmp_path / "old_gen"
    (src / "candleflow" / "v1").mkdir(parents=True)
    gen.mkdir()
    (src / pb_module.PROTO_FILE).write_text(proto.replace(added, ""))
    include = Path(protoc.__file__).parent / "_proto"
    rc = protoc.main(
        ["protoc", f"-I{src}", f"-I{include}", f"--python_out={gen}", pb_module.PROTO_FILE]
    )
    assert rc == 0
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            OLD_CLIENT,
            str(gen / "candleflow" / "v1" / "market_data_pb2.py"),
            target,
            TOKEN,
            symbol,
            str(want),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


async def new_client(target: str, symbol: str, want: int) -> tuple[list, list]:
    async with MarketDataClient(target, TOKEN) as client:
        history = list((await client.get_candles(symbol, "1m")).candles)
        live = []
        stream = client.stream_candles([symbol], ["1m"], from_beginning=True, reconnect=False)
        async for event in stream:
            if event.HasField("candle"):
                live.append(event.candle)
            if len(live) == want:
                break
        await stream.aclose()
    return history, live


async def serve_both_clients(
    s: StackSettings, topics: Topics, namespace: str, tmp_path: Path, symbol: str, want: int
) -> tuple[dict, tuple[list, list]]:
    serving = ServingSettings(
        tokens=TOKEN, metrics_port=0, heartbeat_seconds=1.0, candles_table=f"{namespace}.candles"
    )
    server, port = await create_server("127.0.0.1:0", serving=serving, stack=s, topics=topics)
    await server.start()
    try:
        target = f"127.0.0.1:{port}"
        old = await asyncio.to_thread(old_client, tmp_path, target, symbol, want)
        return old, await new_client(target, symbol, want)
    finally:
        await server.stop(0)


@pytest.mark.skipif(not COINM_DAY.exists(), reason="shared data not present")
def test_candles_v1_to_v2_through_a_savepoint_with_mixed_trades(
    flink_cluster: Stack,
    unique_topic: Callable[..., str],
    unique_namespace: str,
    tmp_path: Path,
    cancel_leftovers: list[str],  # noqa: F811
) -> None:
    s = flink_cluster.settings
    topics = {k: unique_topic(f"evolve-{k}") for k in ("trades", "candles", "late_trades")}
    env = job_env(s, "JOB", topics, tmp_path)
    env |= {
        "CANDLEFLOW_JOB_TRANSACTIONAL_ID_PREFIX": topics["candles"],
        "CANDLEFLOW_JOB_SILVER_NAMESPACE": unique_namespace,
    }
    cli = Cli(stack_env(s))
    options = ("--intervals", "1m", "--startup-mode", "earliest-offset", "--parallelism", "1")
    day = [t for t in binance_files.read_trades(COINM_DAY) if t.event_time_us < T0_US + 270_000_000]
    want = reference.batch_candles(day, "1m")
    phase = [[t for t in day if lo <= t.event_time_us - T0_US < hi] for lo, hi in
             ((0, 100e6), (100e6, 150e6), (150e6, 1e12))]  # fmt: skip

    # The previous release: Candle v1 out, a v1 silver table; ingest upgraded meanwhile.
    job1 = submit({**env, "CANDLEFLOW_JOB_CONTRACT_VERSION": "1"}, *options, "--iceberg")
    cancel_leftovers.append(job1)
    wait_tasks_running(s, job1)
    silver = catalog.catalog(s).load_table(f"{unique_namespace}.candles")
    assert "volatility" not in {f.name for f in silver.schema().fields}
    produce(s, topics["trades"], [(t, 1) for t in phase[0]] + [(t, 2) for t in phase[1]])
    assert committed_candles(s, topics["candles"], 2) == want[:2]
    savepoint = stop_with_savepoint(cli, s, job1, tmp_path / "sp")

    # The new release, restored from that savepoint (refusing unclaimed state): silver
    # evolved, Candle v2 out; old and new ingest pods both still write (mixed versions).
    job2 = submit(env, *options, "--iceberg", "--from-savepoint", savepoint)
    cancel_leftovers.append(job2)
    wait_tasks_running(s, job2)
    produce(s, topics["trades"], [(t, 1 + n % 2) for n, t in enumerate(phase[2])])
    assert committed_candles(s, topics["candles"], 4) == want[:4]
    assert writer_versions(s, topics["candles"], "candle", 4) == [1, 1, 2, 2]
    deadline = time.monotonic() + 60
    while len(vol := silver_volatility(s, unique_namespace)) < 4:
        assert time.monotonic() < deadline, vol
        time.sleep(2)
    assert vol == {c.window_start_us: (c.volatility if i >= 2 else None)
                   for i, c in enumerate(want[:4])}  # fmt: skip

    # Old and new clients, history (silver) and live (the topic's v1 and v2 records).
    serve_topics = Topics(
        candles=topics["candles"],
        anomalies=unique_topic("evolve-anomalies"),
        explanations=unique_topic("evolve-explanations"),
    )
    old, (history, live) = asyncio.run(
        serve_both_clients(s, serve_topics, unique_namespace, tmp_path, want[0].symbol, 4)
    )
    expected = [dec_str(c.volatility) for c in want[:4]]
    for got in (history, live):
        assert [c.volatility for c in got] == expected
        assert [(c.window_start_us, c.close, c.trade_count) for c in got] == [
            (c.window_start_us, dec_str(c.close), c.trade_count) for c in want[:4]
        ]
    for name, new in (("history", history), ("live", live)):
        assert len(old[name]) == 4
        for o, n in zip(old[name], new, strict=True):
            assert "volatility" not in o["fields"]  # unknown to the old client...
            assert o["fields"]["close"] == n.close and o["fields"]["symbol"] == n.symbol
            # ...which kept it as an unknown field, as protobuf does: nothing broke.
            kept = pb_module.pb.Candle.FromString(bytes.fromhex(o["bytes"]))
            assert kept.volatility == n.volatility


def _coinbase_matches() -> list[Trade]:
    from ingest import coinbase

    out = []
    for line in COINBASE_MATCHES.read_text().splitlines():
        if json.loads(line).get("type") in ("match", "last_match"):
            out.extend(coinbase.parse(line, 1_618_678_000_000_000))  # type: ignore[arg-type]
    return out


@pytest.mark.skipif(not COINBASE_MATCHES.exists(), reason="shared data not present")
def test_bronze_v1_to_v2_through_a_savepoint(
    flink_cluster: Stack,
    unique_topic: Callable[..., str],
    unique_namespace: str,
    tmp_path: Path,
    cancel_leftovers: list[str],  # noqa: F811
) -> None:
    s = flink_cluster.settings
    trades_topic = unique_topic("evolve-bronze")
    env = job_env(s, "BRONZE", {"trades": trades_topic}, tmp_path)
    env["CANDLEFLOW_BRONZE_NAMESPACE"] = unique_namespace
    trades = _coinbase_matches()
    assert len(trades) >= 100 and all(t.sequence is not None for t in trades)
    half = len(trades) // 2
    before, after = trades[:half], trades[half:]

    job1 = submit(
        {**env, "CANDLEFLOW_BRONZE_CONTRACT_VERSION": "1"},
        "--startup-mode",
        "earliest-offset",
        "--parallelism",
        "1",
        job="bronze",
    )
    cancel_leftovers.append(job1)
    wait_tasks_running(s, job1)
    produce(s, trades_topic, [(t, 1 + n % 2) for n, t in enumerate(before)])
    assert len(_wait_landed(s, unique_namespace, len(before))) == len(before)
    savepoint = stop_with_savepoint(Cli(stack_env(s)), s, job1, tmp_path / "sp")

    job2 = submit(env, "--parallelism", "1", "--from-savepoint", savepoint, job="bronze")
    cancel_leftovers.append(job2)
    wait_tasks_running(s, job2)
    # v1 and v2 writers after the upgrade, and copies of trades landed before it (dedup state
    # carried over: they must not land twice).
    produce(s, trades_topic, [(t, 1 + n % 2) for n, t in enumerate(after)] + [(before[0], 2)])
    assert len(_wait_landed(s, unique_namespace, len(trades))) >= len(trades)
    time.sleep(4)  # two more checkpoints: a copy landed twice would show by now
    landed = sorted(iceberg_trades(s, unique_namespace), key=lambda t: (t.symbol, t.trade_id))
    # The v1 job read every record with v1 columns: no sequence before the upgrade. After
    # it, v2 records land theirs and v1 records (an old ingest pod) NULL.
    no_seq = [dataclasses.replace(t, sequence=None) for t in before]
    expect = no_seq + [t if n % 2 else dataclasses.replace(t, sequence=None)
                       for n, t in enumerate(after)]  # fmt: skip
    assert any(t.sequence is not None for t in expect)
    assert landed == sorted(expect, key=lambda t: (t.symbol, t.trade_id))
