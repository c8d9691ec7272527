"""`candleflow backfill` on the real COIN-M day equals the batch reference, field by field."""

from __future__ import annotations

import csv
import shutil
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from candleflow import binance_files, reference
from candleflow.cli import app
from candleflow.domain import CANDLE_DECIMAL_FIELDS
from devstack.sample_data import BINANCE_FILES, COINM_DAY
from jobs.backfill_cli import CSV_COLUMNS, plain

pytestmark = pytest.mark.flink


def test_plain_decimal_text():
    assert plain(Decimal("100.500000000000000000")) == "100.5"
    assert plain(Decimal("0E-18")) == "0"
    assert plain(Decimal("1E+2")) == "100"
    assert plain(Decimal("0.000123450")) == "0.00012345"


WINDOWS_PER_DAY = {"1m": 1440, "5m": 288, "15m": 96, "1h": 24}


# Each interval alone and subsets: a single interval once lost its last window at the end of
# input (issue 13: 1,439 one-minute candles; the 23:59 window's 27 trades in no candle).
@pytest.mark.skipif(not COINM_DAY.exists(), reason="shared data not present")
@pytest.mark.parametrize("intervals", ["1m", "5m", "15m", "1h", "1m,1h", "5m,15m", "1m,5m,15m,1h"])
def test_backfill_real_coinm_day_equals_reference(tmp_path, intervals):
    out = tmp_path / "candles.csv"
    result = CliRunner().invoke(
        app, ["backfill", str(COINM_DAY), "--intervals", intervals, "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
        fh.seek(0)
        assert next(csv.reader(fh))[:11] == CSV_COLUMNS[:11]

    trades = list(binance_files.read_trades(COINM_DAY))
    want = reference.batch_candles(trades, intervals)
    assert len(want) == sum(WINDOWS_PER_DAY[i] for i in intervals.split(","))
    got = {(r["interval"], int(r["open_time_us"])): r for r in rows}
    assert len(got) == len(rows) == len(want)
    for c in want:
        r = got[(c.interval, c.window_start_us)]
        for name in CANDLE_DECIMAL_FIELDS:
            value = Decimal(r[name]) if r[name] else None
            assert value == getattr(c, name), (c.interval, c.window_start_us, name)
        assert int(r["trade_count"]) == c.trade_count
        assert (int(r["first_trade_id"]) if r["first_trade_id"] else None) == c.first_trade_id
        assert (int(r["last_trade_id"]) if r["last_trade_id"] else None) == c.last_trade_id
        assert r["is_empty"] == str(c.is_empty).lower()
        assert r["symbol"] == c.symbol and r["exchange"] == c.exchange
    # The whole day: every raw trade of the file is in exactly one candle per interval.
    for interval in intervals.split(","):
        assert sum(int(r["trade_count"]) for r in rows if r["interval"] == interval) == 240_198


def test_backfill_bad_file_is_a_clean_usage_error(tmp_path):
    """A file the reader refuses ends the command with exit 2 and the reason, no traceback."""
    bad = tmp_path / "ETHQQQ-trades-2025-01-01.csv"
    bad.write_text("1,17.8,5.69,101.29,1735689600010866,True,True\n")
    result = CliRunner().invoke(app, ["backfill", str(bad), "--output", str(tmp_path / "o.csv")])
    assert result.exit_code == 2
    assert "cannot split symbol 'ETHQQQ'" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "o.csv").exists()


SPOT_MINUTE = BINANCE_FILES / "BTCUSDT-trades-2025-01-01-0000.csv"
SPOT_MINUTE_KLINE = BINANCE_FILES / "BTCUSDT-1m-2025-01-01-0000.csv"


@pytest.mark.skipif(not SPOT_MINUTE.exists(), reason="shared data not present")
def test_renamed_trades_minute_equals_the_official_kline(tmp_path):
    """The real spot minute (µs, no header), renamed: its kind is read from the content, and
    the backfilled candle equals Binance's own kline on every field (`candleflow reconcile`)."""
    renamed = tmp_path / "minute.csv"
    shutil.copy(SPOT_MINUTE, renamed)
    out = tmp_path / "candles.csv"
    result = CliRunner().invoke(
        app,
        ["backfill", str(renamed), "--symbol", "BTC-USDT", "--intervals", "1m", "-o", str(out)],
    )
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(
        app, ["reconcile", "--klines", str(SPOT_MINUTE_KLINE), "--candles", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "OK: 1 windows compared, 0 field mismatches" in result.output


def test_backfill_asks_for_kind_by_its_option(tmp_path):
    """Content that is neither trades nor aggTrades: the message names --kind and its values,
    and nothing the command does not have."""
    odd = tmp_path / "odd.csv"
    odd.write_text("1,2,3,4,5,6,7\n")
    result = CliRunner().invoke(
        app, ["backfill", str(odd), "--symbol", "BTC-USDT", "-o", str(tmp_path / "o.csv")]
    )
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "--kind trades or --kind aggTrades" in text and "file_kind" not in text
    result = CliRunner().invoke(
        app,
        ["backfill", str(odd), "--symbol", "BTC-USDT", "--kind", "trades", "-o", "o.csv"],
    )
    assert result.exit_code == 2 and "odd.csv:1" in " ".join(result.output.split())
