"""`candleflow check` on real Iceberg tables, through real Trino and embedded.

A namespace gets the real bronze.trades and silver.candles tables (jobs/candle_iceberg.py:
same schemas, partitioning, upsert key) holding the first 20 minutes of the real COIN-M day
and their candles, and a candles topic their revisions. The check passes on that, through
both readers. Then one violation of each invariant is planted through Trino's own
UPDATE/DELETE (position delete files, as any engine writing to the lake would) and in the
topic, and both readers report exactly those, each with its market and window, and exit 1.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP
from typing import Any

import pytest
from typer.testing import CliRunner

from adapters import avro
from adapters.catalog import catalog
from candleflow import reference
from candleflow.config import StackSettings
from candleflow.domain import Candle, Trade
from candleflow.records import fit_decimal
from devstack.sample_data import COINM_DAY
from tests.check.test_invariants import real_trades

pytestmark = [
    pytest.mark.integration,
    pytest.mark.trino,
    pytest.mark.skipif(not COINM_DAY.exists(), reason="shared data not present"),
]

T0 = 1_778_198_400_000_000  # 2026-05-08 00:00 UTC
MINUTE = 60_000_000


def trade_arrow(trades: list[Trade]) -> Any:
    import pyarrow as pa

    from jobs.candle_tables import TRADE_COLUMNS

    dec, ts = pa.decimal128(38, 18), pa.timestamp("us")
    types = {"STRING": pa.string(), "BIGINT": pa.int64(), "TIMESTAMP(6)": ts}
    get = {
        "event_time": lambda t: t.event_time_us,
        "ingest_time": lambda t: t.ingest_time_us,
        "side": lambda t: t.side.value,
        "kind": lambda t: t.kind.value,
    }
    arrays, fields = [], []
    for name, typ in TRADE_COLUMNS:
        base = typ.replace(" NOT NULL", "")
        atype = dec if base.startswith("DECIMAL") else types[base]
        values = [get[name](t) if name in get else getattr(t, name) for t in trades]
        if atype == dec:
            values = [None if v is None else fit_decimal(v) for v in values]
        arrays.append(pa.array(values, atype))
        fields.append(pa.field(name, atype, nullable=not typ.endswith("NOT NULL")))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def real_candles(trades) -> list[Candle]:
    return [
        dataclasses.replace(
            c, vwap=None if c.vwap is None else fit_decimal(c.vwap, rounding=ROUND_HALF_UP)
        )
        for c in reference.batch_candles(list(trades), ["1m", "5m"])
    ]


def produce_candles(settings: StackSettings, topic: str, candles: list[Candle]) -> None:
    from confluent_kafka import Producer

    ser = avro.serializer(avro.registry_client(settings), "candle")
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers, "linger.ms": 5})
    ctx = avro.value_context(topic)
    for c in candles:
        producer.produce(topic, key=f"{c.exchange}:{c.symbol}".encode(), value=ser(c, ctx))
    assert producer.flush(30) == 0


@dataclasses.dataclass
class Lake:
    settings: StackSettings
    ns: str
    topic: str
    trades: list[Trade]
    candles: list[Candle]


@pytest.fixture(scope="module")
def lake(kafka_stack, trino_server) -> Iterator[Lake]:
    from confluent_kafka.admin import AdminClient, NewTopic

    from jobs.candle_iceberg import ensure_tables

    settings: StackSettings = trino_server
    ns = f"test_check_{uuid.uuid4().hex[:8]}"
    bronze, silver = ensure_tables(settings, bronze=ns, silver=ns)
    trades = list(real_trades())
    candles = real_candles(trades)
    bronze.append(trade_arrow(trades))
    from tests.serving.conftest import candle_arrow

    silver.append(candle_arrow(candles))
    topic = f"test.check.candles.{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    for fut in admin.create_topics([NewTopic(topic, 2, 1)]).values():
        fut.result(30)
    # Every window at revision 0; a few corrected once (revision 1), as a late trade does.
    produce_candles(
        settings, topic, candles + [dataclasses.replace(c, revision=1) for c in candles[:3]]
    )
    yield Lake(settings, ns, topic, trades, candles)
    for fut in admin.delete_topics([topic]).values():
        fut.exception(30)
    cat = catalog(settings)
    for ident in cat.list_tables(ns):
        cat.purge_table(ident)
    cat.drop_namespace(ns)


def stack_env(s: StackSettings) -> dict[str, str]:
    return {
        "CANDLEFLOW_DATA_DIR": str(s.data_dir),
        "CANDLEFLOW_KAFKA_PORT": str(s.kafka_port),
        "CANDLEFLOW_REGISTRY_PORT": str(s.registry_port),
        "CANDLEFLOW_TRINO_PORT": str(s.trino_port),
    }


def check_args(lake: Lake, via: str, *head: str) -> list[str]:
    return [
        "check",
        *head,
        "--end",
        str(T0 + 20 * MINUTE),
        "--intervals",
        "1m,5m",
        "--via",
        via,
        "--candles-table",
        f"{lake.ns}.candles",
        "--trades-table",
        f"{lake.ns}.trades",
        "--candles-topic",
        lake.topic,
    ]


def run_check(lake: Lake, via: str) -> Any:
    from candleflow.cli import app

    args = check_args(lake, via, "--start", str(T0))
    return CliRunner().invoke(app, args, env=stack_env(lake.settings))


def iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def trino(lake: Lake, sql: str) -> None:
    from serving.history import Tables
    from serving.history_trino import TrinoHistory

    TrinoHistory(lake.settings, Tables()).query(sql)


def test_check_passes_on_clean_data_then_catches_each_planted_violation(lake: Lake) -> None:
    for via in ("trino", "embedded"):
        res = run_check(lake, via)
        assert res.exit_code == 0, (via, res.output)
        assert "checked 24 candles, 24 windows with trades, revisions of 24 windows" in res.output
        assert "violations: 0" in res.output

    ones = sorted((c for c in lake.candles if c.interval == "1m"), key=lambda c: c.window_start_us)
    table, trades = f"iceberg.{lake.ns}.candles", f"iceberg.{lake.ns}.trades"

    def where(c: Candle) -> str:
        return f"\"interval\" = '1m' AND window_start = TIMESTAMP '{iso(c.window_start_us)}'"

    trino(lake, f"UPDATE {table} SET open = high + 1 WHERE {where(ones[3])}")
    trino(lake, f"UPDATE {table} SET vwap = high + 1 WHERE {where(ones[5])}")
    trino(lake, f"UPDATE {table} SET last_trade_id = last_trade_id + 3 WHERE {where(ones[8])}")
    trino(lake, f"DELETE FROM {table} WHERE {where(ones[11])}")
    w14 = ones[14].window_start_us
    dropped = next(t for t in lake.trades if w14 <= t.event_time_us < w14 + MINUTE)
    trino(lake, f"DELETE FROM {trades} WHERE trade_id = {dropped.trade_id}")
    produce_candles(lake.settings, lake.topic, [dataclasses.replace(ones[16], revision=2)])

    m = ("binance", "BTC-USD-PERP")
    want = [
        f"ohlc: {m[0]} {m[1]} 1m window {vwin(ones[3])}: open",
        f"vwap: {m[0]} {m[1]} 1m window {vwin(ones[5])}: vwap",
        f"trade_count: {m[0]} {m[1]} 1m window {vwin(ones[8])}: trade_count",
        f"missing_window: {m[0]} {m[1]} 1m window {vwin(ones[11])}: no candle",
        f"volume: {m[0]} {m[1]} 1m window {vwin(ones[14])}: volume",
        f"volume: {m[0]} {m[1]} 5m window {vwin(ones[10])}: volume",
        f"revision: {m[0]} {m[1]} 1m window {vwin(ones[16])}: revision 2 without revision 1",
    ]
    for via in ("trino", "embedded"):
        res = run_check(lake, via)
        assert res.exit_code == 1, (via, res.output)
        lines = [ln for ln in res.output.splitlines() if ": binance " in ln]
        assert len(lines) == len(want), (via, res.output)
        for prefix in want:
            assert sum(ln.startswith(prefix) for ln in lines) == 1, (via, prefix, res.output)
        assert (
            "violations: 7 (ohlc 1, vwap 1, trade_count 1, missing_window 1, volume 2, revision 1)"
            in res.output
        )


def vwin(c: Candle) -> str:
    from serving.check.invariants import us_to_iso

    return us_to_iso(c.window_start_us)


def test_unknown_table_is_a_clear_error(lake: Lake) -> None:
    for via in ("trino", "embedded"):
        res = run_check(dataclasses.replace(lake, ns="no_such_namespace"), via)
        assert res.exit_code == 2, (via, res.output)
        assert "error:" in res.output and "no_such_namespace" in res.output, res.output


def test_long_running_check_exports_the_violations_and_stops_on_sigterm(lake: Lake) -> None:
    """`candleflow check --every`: /metrics carries what a one-shot check finds, /healthz
    answers, and SIGTERM ends it cleanly (exit 0)."""
    import json
    import re
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    from serving.check.invariants import INVARIANTS

    once = run_check(lake, "embedded")
    want = {k: 0 for k in INVARIANTS}
    for line in once.output.splitlines():
        if ": binance " in line:
            want[line.split(":", 1)[0]] += 1
    env = {**os.environ, **stack_env(lake.settings), "CANDLEFLOW_CHECK_VIA": "embedded"}
    with socket.socket() as sock:  # a free port (0 would turn the endpoint off)
        sock.bind(("127.0.0.1", 0))
        free = str(sock.getsockname()[1])
    args = check_args(lake, "embedded", "--every", "1", "--last", "20m", "--metrics-port", free)
    proc = subprocess.Popen(
        [sys.executable, "-m", "candleflow.cli", *args],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port, lines = None, []
        deadline = time.monotonic() + 60
        while port is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            assert line, f"checker exited: {proc.wait()} {lines}"
            lines.append(line)
            if '"started"' in line:
                port = json.loads(line)["port"]
        assert port, lines

        def get(path: str) -> tuple[int, str]:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                return r.status, r.read().decode()

        got: dict[str, int] = {}
        while time.monotonic() < deadline:
            _, text = get("/metrics")
            got = {
                m.group(1): int(float(m.group(2)))
                for m in re.finditer(
                    r'candleflow_check_violations\{invariant="(\w+)"\} (\S+)', text
                )
            }
            if got == want and "candleflow_check_runs_total" in text:
                break
            time.sleep(0.5)
        assert got == want, (got, want)
        assert get("/healthz") == (200, "ok\n")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        rest = proc.stderr.read()
        assert '"stopping"' in rest and '"signal": "SIGTERM"' in rest, rest
        events = [json.loads(ln) for ln in lines + rest.splitlines() if ln.startswith("{")]
        assert all("level" in e and "timestamp" in e for e in events)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
