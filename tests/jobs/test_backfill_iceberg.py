"""`candleflow backfill --iceberg` upserts the final candles into `<namespace>.candles`.

Two runs over the same real slice of the COIN-M day: the first over a copy missing some
trades (so some candles are wrong), the second over the full slice in another row order.
After the second run the table holds one row per window (no duplicates from the re-run),
the wrong candles are replaced, and every field equals both the run's CSV and the batch
reference.
"""

from __future__ import annotations

import csv
import io
import random
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapters import catalog
from candleflow import binance_files, reference
from candleflow.cli import app
from candleflow.domain import Candle
from devstack.sample_data import COINM_DAY
from serving.history import CandleQuery, Tables
from serving.history_duckdb import DuckDBHistory
from tests.jobs.test_kafka_iceberg import iceberg_candles
from verify.reconcile import FIELDS, read_candles_iceberg

pytestmark = [pytest.mark.integration, pytest.mark.flink]

INTERVALS = "1m,5m"
T0_MS = 1_778_198_400_000  # 2026-05-08 00:00 UTC, the day's first window
SLICE_MS = 12 * 60 * 1000  # twelve minutes of trades


def _slice_rows() -> tuple[str, list[str]]:
    """Header and the first SLICE_MS of the day's aggTrades rows, as the file has them."""
    with zipfile.ZipFile(COINM_DAY) as zf, zf.open(zf.namelist()[0]) as fh:
        lines = io.TextIOWrapper(fh).read().splitlines()
    header, rows = lines[0], lines[1:]
    return header, [r for r in rows if int(r.split(",")[5]) < T0_MS + SLICE_MS]


def _write(path: Path, header: str, rows: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def _csv_candles(path: Path) -> dict:
    def dec(text: str) -> Decimal | None:
        return Decimal(text) if text else None

    out = {}
    with path.open() as fh:
        for r in csv.DictReader(fh):
            c = Candle(
                r["exchange"],
                r["symbol"],
                r["interval"],
                int(r["open_time_us"]),
                int(r["close_time_us"]),
                dec(r["open"]),
                dec(r["high"]),
                dec(r["low"]),
                dec(r["close"]),
                dec(r["volume"]),
                dec(r["quote_volume"]),
                int(r["trade_count"]),
                dec(r["taker_buy_volume"]),
                dec(r["taker_buy_quote_volume"]),
                dec(r["vwap"]),
                int(r["first_trade_id"]) if r["first_trade_id"] else None,
                int(r["last_trade_id"]) if r["last_trade_id"] else None,
                int(r["revision"]),
                r["is_empty"] == "true",
            )
            out[reference.candle_key(c)] = c
    return out


def _backfill(file: Path, out: Path, namespace: str) -> str:
    result = CliRunner().invoke(
        app,
        [
            "backfill",
            str(file),
            "--intervals",
            INTERVALS,
            "--output",
            str(out),
            "--iceberg",
            "--namespace",
            namespace,
        ],
    )
    assert result.exit_code == 0, (result.output, str(result.exception)[-4000:])
    return result.output


@pytest.mark.skipif(not COINM_DAY.exists(), reason="shared data not present")
def test_backfill_iceberg_rerun_upserts(stack, unique_namespace, tmp_path, monkeypatch):
    s = stack.settings
    # The CLI reads the configured catalog from CANDLEFLOW_*: point it at the test stack's.
    monkeypatch.setenv("CANDLEFLOW_DATA_DIR", str(s.data_dir))
    for var in ("CANDLEFLOW_CATALOG_JDBC_URI", "CANDLEFLOW_WAREHOUSE"):
        monkeypatch.delenv(var, raising=False)

    header, rows = _slice_rows()
    # Run 1: every 7th trade of minutes 2-6 missing (first and last trades kept, so the
    # windows are the same); run 2: the full slice, a correction of those candles.
    t_gap = (T0_MS + 2 * 60_000, T0_MS + 7 * 60_000)
    partial = [
        r
        for n, r in enumerate(rows)
        if not (t_gap[0] <= int(r.split(",")[5]) < t_gap[1] and n % 7 == 0)
    ]
    assert 0 < len(rows) - len(partial) < len(rows) // 5
    name = COINM_DAY.name.replace(".zip", ".csv")  # the file name tells the symbol
    file1 = _write(tmp_path / "partial" / name, header, partial)
    # The full slice in another row order, as a file may have it: the same candles.
    shuffled = list(rows)
    random.Random(7).shuffle(shuffled)
    assert shuffled != rows
    file2 = _write(tmp_path / "full" / name, header, shuffled)

    _backfill(file1, tmp_path / "run1.csv", unique_namespace)
    table = catalog.catalog(s).load_table(f"{unique_namespace}.candles")
    first = iceberg_candles(s, unique_namespace)
    assert first == _csv_candles(tmp_path / "run1.csv")
    snap1 = table.current_snapshot()
    # The embedded history backend (gRPC serving) reads the same rows.
    history = DuckDBHistory(s, Tables(candles=f"{unique_namespace}.candles"))
    served, _ = history.get_candles(CandleQuery("BTC-USD-PERP", "1m", limit=1000))
    assert {reference.candle_key(c): c for c in served} == {
        k: c for k, c in first.items() if k[2] == "1m"
    }

    out = _backfill(file2, tmp_path / "run2.csv", unique_namespace)
    assert f"{unique_namespace}.candles" in out and f"snapshot {snap1.snapshot_id} ->" in out
    got = iceberg_candles(s, unique_namespace)  # asserts one row per key

    want = {
        reference.candle_key(c): c
        for c in reference.batch_candles(binance_files.read_trades(file2), INTERVALS)
    }
    assert len(want) == 12 + 3  # 12 one-minute and 3 five-minute windows
    assert got == want
    assert _csv_candles(tmp_path / "run2.csv") == want
    assert len(got) == len(first), "the re-run added rows instead of replacing them"
    changed = {k for k in want if first[k] != want[k]}
    assert changed and all(
        k[2] == "5m" or t_gap[0] * 1000 <= k[3] < t_gap[1] * 1000 for k in changed
    )
    table.refresh()
    assert table.current_snapshot().snapshot_id != snap1.snapshot_id
    # `candleflow reconcile --iceberg` reads the corrected rows (the last commit wins).
    for interval in INTERVALS.split(","):
        ours = read_candles_iceberg(
            "binance", "BTC-USD-PERP", interval, f"{unique_namespace}.candles", catalog.catalog(s)
        )
        assert ours == {
            k[3]: {f: getattr(c, f) for f in FIELDS} for k, c in want.items() if k[2] == interval
        }
    # The stream job's table definition: v2, upsert on the candle key, day partitions.
    assert table.format_version == 2
    assert table.properties.get("write.upsert.enabled") == "true"
    key = {table.schema().find_field(i).name for i in table.schema().identifier_field_ids}
    assert key == {"exchange", "symbol", "interval", "window_start"}
    assert [str(f.transform) for f in table.spec().fields] == ["day"]


@pytest.mark.skipif(not COINM_DAY.exists(), reason="shared data not present")
def test_backfill_needs_an_output(tmp_path):
    result = CliRunner().invoke(app, ["backfill", str(COINM_DAY)])
    assert result.exit_code == 2
    assert "--output" in result.output and "--iceberg" in result.output
