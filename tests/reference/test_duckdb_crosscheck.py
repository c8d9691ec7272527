"""batch_candles over the real COIN-M day against an independent DuckDB computation.

The official 2020 BTCUSDT klines have no matching trade file, so the trade-to-candle
math is checked here instead: DuckDB reads the zip-extracted CSV and computes every 1m
field in SQL (open/close with arg_min/arg_max by (time, id)); the inverse base amounts
are integer arithmetic in units of 1e-18, rounded half up, so nothing passes through a
float or through Candleflow's code.
"""

from __future__ import annotations

import zipfile
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import duckdb

from candleflow.binance_files import read_trades
from candleflow.reference import batch_candles
from devstack.sample_data import COINM_DAY

E18 = 10**18
SQL = """
WITH t AS (
  SELECT *, CAST(quantity * 100000000 AS HUGEINT) AS q8, CAST(price * 100000000 AS HUGEINT) AS p8
  FROM read_csv(?, header = true, columns = {
    'agg_trade_id': 'BIGINT', 'price': 'DECIMAL(38,8)', 'quantity': 'DECIMAL(38,8)',
    'first_trade_id': 'BIGINT', 'last_trade_id': 'BIGINT', 'transact_time': 'BIGINT',
    'is_buyer_maker': 'BOOLEAN'})
), a AS (  -- BTC per trade = contracts x 100 USD / price, in 1e-18 units, half up
  SELECT *, (2 * q8 * 100 * CAST(1e18 AS HUGEINT) + p8) // (2 * p8) AS base_e18 FROM t
)
SELECT transact_time // 60000 * 60000 AS open_ms,
       arg_min(price, (transact_time, agg_trade_id)) AS open,
       max(price) AS high, min(price) AS low,
       arg_max(price, (transact_time, agg_trade_id)) AS close,
       sum(quantity) AS volume,
       sum(base_e18) AS quote_e18,
       sum(last_trade_id - first_trade_id + 1) AS trade_count,
       coalesce(sum(quantity) FILTER (WHERE NOT is_buyer_maker), 0) AS buy_volume,
       coalesce(sum(base_e18) FILTER (WHERE NOT is_buyer_maker), 0) AS buy_quote_e18,
       min(first_trade_id) AS first_id, max(last_trade_id) AS last_id
FROM a GROUP BY 1 ORDER BY 1
"""


def test_one_minute_candles_equal_duckdb_on_every_field(tmp_path: Path) -> None:
    with zipfile.ZipFile(COINM_DAY) as zf:
        (member,) = zf.namelist()
        csv_path = zf.extract(member, tmp_path)
    rows = duckdb.execute(SQL, [csv_path]).fetchall()
    ours = batch_candles(read_trades(COINM_DAY), ["1m"])
    full = {c.window_start_us // 1000: c for c in ours if not c.is_empty}
    assert [r[0] for r in rows] == sorted(full)
    assert len(rows) == 1437
    for open_ms, o, h, lo, cl, vol, q_e18, count, bvol, bq_e18, first, last in rows:
        c = full[open_ms]
        assert (c.open, c.high, c.low, c.close) == (o, h, lo, cl), open_ms
        assert (c.volume, c.taker_buy_volume) == (vol, bvol), open_ms
        assert c.quote_volume * E18 == q_e18, open_ms
        assert c.taker_buy_quote_volume * E18 == bq_e18, open_ms
        assert (c.trade_count, c.first_trade_id, c.last_trade_id) == (count, first, last)
        # vwap = contracts x 100 / BTC, rounded half up at 18 decimals
        exact = Fraction(vol) * 100 * E18 * E18 / q_e18
        assert c.vwap is not None and c.vwap * E18 == int(exact + Fraction(1, 2)), open_ms
    # the 3 minutes without trades are flat at the previous minute's close
    empties = [c for c in ours if c.is_empty]
    assert len(empties) == 3 and len(ours) == 1440
    for e in empties:
        before = next(c for c in ours if c.window_end_us == e.window_start_us)
        assert e.open == e.high == e.low == e.close == before.close
        assert (e.volume, e.trade_count, e.vwap) == (Decimal(0), 0, None)
