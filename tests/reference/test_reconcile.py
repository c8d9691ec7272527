"""`candleflow reconcile` on the official 2020 BTCUSDT klines turned into candle rows."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from candleflow.binance_files import read_klines
from candleflow.cli import app
from verify.reconcile import FIELDS, compare, read_candles_csv, round_like

from .common import KLINE_ZIPS

HEADER = ["interval", "open_time_us", *FIELDS, "exchange", "symbol", "revision"]
JAN2_1337 = 1_577_972_220_000_000  # 2020-01-02 13:37 UTC


def kline_rows() -> list[dict[str, str]]:
    """Each official kline as a backfill CSV row (values as printed in the kline file)."""
    rows = []
    for path in KLINE_ZIPS:
        for k in read_klines(path):
            values = {f: str(getattr(k, f)) for f in FIELDS}
            rows.append(
                {
                    "interval": "1m",
                    "open_time_us": str(k.open_time_us),
                    **values,
                    "exchange": "binance",
                    "symbol": "BTC-USDT",
                    "revision": "0",
                }
            )
    return rows


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=HEADER)
        writer.writeheader()
        writer.writerows(rows)
    return path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["reconcile", *args])
    return result.exit_code, result.output


def klines_args() -> list[str]:
    return ["--klines", str(KLINE_ZIPS[0]), str(KLINE_ZIPS[1]), str(KLINE_ZIPS[2])]


def test_matching_candles_pass(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "candles.csv", kline_rows())
    code, out = run(*klines_args(), "--candles", str(path))
    assert code == 0, out
    assert "OK: 4320 windows compared, 0 field mismatches" in out


def test_one_altered_field_fails_naming_window_and_field(tmp_path: Path) -> None:
    rows = kline_rows()
    row = next(r for r in rows if r["open_time_us"] == str(JAN2_1337))
    row["taker_buy_quote_volume"] = str(Decimal(row["taker_buy_quote_volume"]) + Decimal("0.01"))
    path = write_csv(tmp_path / "candles.csv", rows)
    code, out = run(*klines_args(), "--candles", str(path))
    assert code == 1
    lines = [line for line in out.splitlines() if "2020-01-02 13:37:00" in line]
    assert len(lines) == 1 and "taker_buy_quote_volume" in lines[0], out
    assert "FAIL: 4320 windows compared, 1 field mismatches in 1 windows" in out


def test_missing_window_and_a_later_revision(tmp_path: Path) -> None:
    rows = kline_rows()
    del rows[100]
    # a wrong revision 0 followed by the right revision 1: the last revision counts
    right = dict(rows[5])
    wrong = {**rows[5], "close": "1", "revision": "0"}
    rows[5] = {**right, "revision": "1"}
    rows.insert(5, wrong)
    path = write_csv(tmp_path / "candles.csv", rows)
    code, out = run(*klines_args(), "--candles", str(path))
    assert code == 1
    assert "missing in ours: window 2020-01-01 01:40:00" in out
    assert "0 field mismatches" in out and "1 missing" in out


def test_our_extra_decimals_are_rounded_to_the_kline_precision(tmp_path: Path) -> None:
    # exact products carry 16 decimals; the kline prints 8: 371233.51835535 (first minute)
    rows = kline_rows()
    rows[0]["quote_volume"] = "371233.518355349999"
    rows[1]["quote_volume"] = "52080.127787796"  # kline 52080.12778780 -> ...796 rounds up
    path = write_csv(tmp_path / "candles.csv", rows)
    assert run(*klines_args(), "--candles", str(path))[0] == 0
    rows[0]["quote_volume"] = "371233.518355344999"  # rounds to ...534: one unit off
    path = write_csv(tmp_path / "candles.csv", rows)
    code, out = run(*klines_args(), "--candles", str(path))
    assert code == 1 and "quote_volume" in out
    assert run(*klines_args(), "--candles", str(path), "--tolerance-units", "1")[0] == 0


def test_extra_windows_inside_and_outside_the_range(tmp_path: Path) -> None:
    klines = [sorted(read_klines(p), key=lambda k: k.open_time_us) for p in KLINE_ZIPS[:1]]
    rows = kline_rows()
    path = write_csv(tmp_path / "candles.csv", rows)
    ours = read_candles_csv(path, "1m")
    report = compare(klines, ours)  # days 2 and 3 are outside day 1's file
    assert report.ok and report.outside == 2880 and report.compared == 1440
    del klines[0][10]  # a kline hole: our candle for that window is extra
    report = compare(klines, ours)
    assert report.extra == [klines[0][10].open_time_us - 60_000_000] and not report.ok


@pytest.mark.parametrize(
    ("ours", "theirs", "expected"),
    [("1.234565", "1.00000", "1.23457"), ("2", "2.00000000", "2.00000000"), ("7", "3", "7")],
)
def test_round_like(ours: str, theirs: str, expected: str) -> None:
    assert str(round_like(Decimal(ours), Decimal(theirs))) == expected


def test_iceberg_last_revision_per_window(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """silver.candles as the job writes it (upserts keep every revision in data files)."""
    from datetime import UTC, datetime

    import pyarrow as pa

    from verify.reconcile import read_candles_iceberg

    klines = sorted(read_klines(KLINE_ZIPS[0]), key=lambda k: k.open_time_us)
    dec = pa.decimal128(38, 18)
    schema = pa.schema(
        [
            ("exchange", pa.string()),
            ("symbol", pa.string()),
            ("interval", pa.string()),
            ("window_start", pa.timestamp("us")),
        ]
        + [(f, pa.int64() if f == "trade_count" else dec) for f in FIELDS]
        + [("revision", pa.int32())]
    )

    def rows(ks: list, revision: int, close: Decimal | None = None) -> pa.Table:
        q = Decimal("1E-18")
        return pa.Table.from_pylist(
            [
                {
                    "exchange": "binance",
                    "symbol": "BTC-USDT",
                    "interval": "1m",
                    "window_start": datetime.fromtimestamp(k.open_time_us / 1e6, tz=UTC).replace(
                        tzinfo=None
                    ),
                    **{
                        f: getattr(k, f) if f == "trade_count" else getattr(k, f).quantize(q)
                        for f in FIELDS
                    },
                    "revision": revision,
                }
                for k in ks
            ],
            schema=schema,
        )

    from adapters.catalog import catalog

    monkeypatch.setenv("CANDLEFLOW_DATA_DIR", str(tmp_path))  # a private shared catalog
    cat = catalog()
    cat.create_namespace("silver")
    table = cat.create_table("silver.candles", schema=schema)
    wrong = rows(klines[7:8], 0)
    wrong = wrong.set_column(FIELDS.index("close") + 4, "close", pa.array([Decimal("1")], type=dec))
    table.append(pa.concat_tables([rows(klines[:7], 0), wrong, rows(klines[8:], 0)]))
    ours = read_candles_iceberg("binance", "BTC-USDT", "1m", catalog=cat)
    report = compare([klines], ours)
    assert [(m.open_time_us, m.field) for m in report.mismatches] == [
        (klines[7].open_time_us, "close")
    ]
    code, out = run("--klines", str(KLINE_ZIPS[0]), "--iceberg")
    assert code == 1 and "2020-01-01 00:07:00 │ close" in out, out
    table.append(rows(klines[7:8], 1))  # the correction, revision 1
    report = compare([klines], read_candles_iceberg("binance", "BTC-USDT", "1m", catalog=cat))
    assert report.ok and report.compared == 1440
    code, out = run("--klines", str(KLINE_ZIPS[0]), "--iceberg")
    assert code == 0 and "OK: 1440 windows compared" in out, out
    # A later commit of revision 0 (a backfill re-run, a replay) replaces that revision 1.
    table.append(wrong)
    report = compare([klines], read_candles_iceberg("binance", "BTC-USDT", "1m", catalog=cat))
    assert [(m.open_time_us, m.field) for m in report.mismatches] == [
        (klines[7].open_time_us, "close")
    ]


def test_csv_with_several_markets_needs_a_symbol(tmp_path: Path) -> None:
    rows = kline_rows()
    rows.append({**rows[0], "symbol": "ETH-USDT", "close": "1"})
    path = write_csv(tmp_path / "candles.csv", rows)
    code, out = run(*klines_args(), "--candles", str(path))
    assert code == 2 and "several markets" in out
    assert run(*klines_args(), "--candles", str(path), "--symbol", "BTC-USDT")[0] == 0
