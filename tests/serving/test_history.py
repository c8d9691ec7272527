"""History over Iceberg: PyIceberg+DuckDB, GetCandles and Trino agree, and time travel
returns the older revision of a corrected candle."""

from __future__ import annotations

import grpc
import pytest

from serving import convert
from serving.client import MarketDataClient
from serving.history import CandleQuery
from serving.history_backend import make_history
from tests.serving.conftest import TOKEN

pytestmark = pytest.mark.integration


def expected(candles, symbol="BTC-USDT", interval="1m", start=0, end=None, limit=10_000):
    out = [
        c
        for c in candles
        if c.symbol == symbol
        and c.interval == interval
        and c.window_start_us >= start
        and (end is None or c.window_start_us < end)
    ]
    return sorted(out, key=lambda c: (c.window_start_us, c.exchange))[:limit]


def test_duckdb_current_and_time_travel(candle_table):
    h = make_history("duckdb", candle_table.settings, candle_table.tables)
    got, snap = h.get_candles(CandleQuery("BTC-USDT", "1m"))
    assert got == expected(candle_table.after)
    assert snap == candle_table.snapshots[-1]
    assert [c.revision for c in got[10:20]] == [1] * 10
    old, old_snap = h.get_candles(
        CandleQuery("BTC-USDT", "1m", snapshot_id=candle_table.snapshots[0])
    )
    assert old == expected(candle_table.before) and old_snap == candle_table.snapshots[0]
    by_time, _ = h.get_candles(CandleQuery("BTC-USDT", "1m", as_of_us=candle_table.first_commit_us))
    assert by_time == old
    perp, _ = h.get_candles(CandleQuery("BTC-USD-PERP", "5m"))
    assert perp == expected(candle_table.after, "BTC-USD-PERP", "5m")


def test_duckdb_range_and_limit(candle_table):
    h = make_history("duckdb", candle_table.settings, candle_table.tables)
    c = expected(candle_table.after)
    start, end = c[5].window_start_us, c[50].window_start_us
    got, _ = h.get_candles(CandleQuery("BTC-USDT", "1m", start_us=start, end_us=end, limit=7))
    assert got == expected(candle_table.after, start=start, end=end, limit=7)


async def test_get_candles_over_grpc(candle_table, server_factory):
    history = make_history("duckdb", candle_table.settings, candle_table.tables)
    _, port = await server_factory(history=history)
    async with MarketDataClient(f"127.0.0.1:{port}", token=TOKEN) as client:
        resp = await client.get_candles("BTC-USDT", "1m")
        assert [convert.candle_from_pb(m) for m in resp.candles] == expected(candle_table.after)
        old = await client.get_candles("BTC-USDT", "1m", snapshot_id=candle_table.snapshots[0])
        assert [convert.candle_from_pb(m) for m in old.candles] == expected(candle_table.before)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await client.get_candles("BTC-USDT", "1m", snapshot_id=12345)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        symbols = await client.list_symbols()
        assert {(s.exchange, s.symbol) for s in symbols.symbols} == {
            ("binance", "BTC-USDT"),
            ("binance", "BTC-USD-PERP"),
        }


@pytest.mark.trino
def test_trino_agrees_with_duckdb_and_time_travels(candle_table, trino_server):
    trino_h = make_history("trino", trino_server, candle_table.tables)
    duck_h = make_history("duckdb", candle_table.settings, candle_table.tables)
    for q in (
        CandleQuery("BTC-USDT", "1m"),
        CandleQuery("BTC-USD-PERP", "1m"),
        CandleQuery("BTC-USDT", "1m", snapshot_id=candle_table.snapshots[0]),
        CandleQuery("BTC-USDT", "1m", as_of_us=candle_table.first_commit_us),
    ):
        t_rows, t_snap = trino_h.get_candles(q)
        d_rows, d_snap = duck_h.get_candles(q)
        assert t_rows == d_rows, q
        assert t_snap == d_snap, q
    old, _ = trino_h.get_candles(
        CandleQuery("BTC-USDT", "1m", snapshot_id=candle_table.snapshots[0])
    )
    assert [c.revision for c in old[10:20]] == [0] * 10
    assert old == expected(candle_table.before)


@pytest.mark.trino
def test_sql_command_runs_trino_sql(candle_table, trino_server):
    from typer.testing import CliRunner

    from candleflow.cli import app

    ns, table = candle_table.tables.candles.split(".")
    env = {
        "CANDLEFLOW_TRINO_PORT": str(trino_server.trino_port),
        "CANDLEFLOW_DATA_DIR": str(trino_server.data_dir),
    }
    res = CliRunner().invoke(
        app,
        [
            "sql",
            f'SELECT "interval", count(*) AS n, max(revision) AS r FROM iceberg.{ns}.{table} '
            "WHERE symbol = 'BTC-USDT' GROUP BY 1",
            "--format",
            "csv",
        ],
        env=env,
    )
    assert res.exit_code == 0, res.output
    n = sum(1 for c in candle_table.after if c.symbol == "BTC-USDT")
    assert res.output.splitlines() == ["interval,n,r", f"1m,{n},1"]


def test_duckdb_last_commit_wins_over_a_higher_revision(kafka_stack):
    """A re-run (e.g. a backfill) writes revision 0 of windows that an earlier run had
    corrected to revision 1. The upsert makes the later row current; the embedded reader,
    which sees all rows of the data files, must pick the last-committed one, not the
    highest revision."""
    import uuid

    from adapters.catalog import catalog
    from serving.history import Tables
    from tests.serving import data
    from tests.serving.conftest import candle_arrow

    cat = catalog(kafka_stack.settings)
    ns = f"test_serving_{uuid.uuid4().hex[:8]}"
    cat.create_namespace(ns)
    rerun = list(data.spot_candles()[:30])
    first = [data.corrected(c) if 10 <= i < 20 else c for i, c in enumerate(rerun)]
    table = cat.create_table(f"{ns}.candles", schema=candle_arrow(first[:1]).schema)
    table.append(candle_arrow(first))
    table.append(candle_arrow(rerun[10:20]))  # the re-run's revision 0, committed later
    tables = Tables(candles=f"{ns}.candles", anomalies=f"{ns}.a", explanations=f"{ns}.e")
    got, _ = make_history("duckdb", kafka_stack.settings, tables).get_candles(
        CandleQuery("BTC-USDT", "1m")
    )
    assert got == expected(rerun)
    assert [c.revision for c in got[10:20]] == [0] * 10
