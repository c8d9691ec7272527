"""History over Iceberg: PyIceberg+DuckDB, GetCandles and Trino agree, and time travel
returns the older revision of a corrected candle."""

from __future__ import annotations

import grpc
import pytest

from serving import convert
from serving.client import MarketDataClient
from serving.history import CandleQuery, make_history
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
