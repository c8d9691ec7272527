"""The backfill job's own file reader (udfs/.../binance/, jobs/backfill_files.py) against the
Python reader (candleflow.binance_files), which stays the one authority on what a file holds.

For every file, the JVM reader either refuses it or gives exactly the trades the Python
reader gives, in the same order; it refuses every file the Python reader rejects or whose
rows are out of exchange order; and it accepts plain published files (so the fast path is
taken). Cases: every file of the bad-input corpus, and several hundred generated files with
rows in and out of the published form (numbers, booleans, times, columns, quotes, line ends,
BOM, headers, zips, order). One JVM runs all of them (no Flink): ~2 s. One Flink test runs
the command over the real day's rows in order, out of order and with a bad row: ~20 s.
"""

from __future__ import annotations

import io
import random
import re
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from candleflow import binance_files
from candleflow.cli import app
from candleflow.domain import Trade
from devstack.sample_data import COINM_DAY
from jobs import backfill_files
from tests.corpus.cases_io import file_cases
from tests.corpus.test_corpus import write_case_file
from tests.jobs import scenarios

SEED = scenarios.seed()
GENERATED = 400 * scenarios.scale()

FORMATS = {  # name -> (file name, kind, row template)
    "spot_trades": ("BTCUSDT-trades-2024-01-01", "trades", "{id},{p},{q},5250.0625,{t},{m},true"),
    "usdm_trades": ("BTCUSDT-trades-2024-01-01", "trades", "{id},{p},{q},5250.0625,{t},{m}"),
    "coinm_trades": ("BTCUSD_PERP-trades-2024-01-01", "trades", "{id},{p},{q},0.00714,{t},{m}"),
    "spot_agg": ("ETHUSDT-aggTrades-2024-01-01", "aggTrades", "{id},{p},{q},{f},{l},{t},{m},true"),
    "coinm_agg": ("ETHUSD_PERP-aggTrades-2024-01-01", "aggTrades", "{id},{p},{q},{f},{l},{t},{m}"),
}
HEADERS = {
    "trades": "id,price,qty,quote_qty,time,is_buyer_maker",
    "aggTrades": "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,"
    "is_buyer_maker",
}
# Odd but possible texts of each field: some the Python reader takes, some it rejects.
ODD = {
    "p": [
        "42000.50",
        "0.001",
        ".5",
        "5.",
        "1e3",
        "1E-2",
        "+1.5",
        " 1.5",
        "1_000.5",
        "NaN",
        "Infinity",
        "0",
        "0.000",
        "-1",
        "",
        "abc",
        "0.0000000000000000001",
        "0012.5",
        "1234567890123456789012.5",
        "\u0661\u0662",
        "12345678901234567890",
    ],
    "q": ["0.125", "3", "0.000000000000000001", "0.0", "1e2", "-0.5", "x", " 2", "2 "],
    "id": ["007", "-5", "+5", " 5", "1_0", "12345678901234567890", "7.0", "", "999999999999999999"],
    "m": ["true", "false", "True", "FALSE", "tRuE", " true", "1", "yes", "", "fal\u017fe"],
    "t": ["1704067200", "1704067200000.5", "-1704067200000", "soon", "99999999999"],
    "row": [
        "",
        "   ",
        '"1",42000.5,0.1,4200.05,1704067200000,true,true',
        "1,2,3",
        "12345",
        "1,2,3,4,5,6,7,8,9,10,11,12",
        "id,price,qty,quote_qty,time,is_buyer_maker",
    ],
}


def _row(rng: random.Random, template: str, n: int, time_ms: int, micros: bool) -> str:
    values: dict[str, Any] = {
        "id": n,
        "p": rng.choice(["42000.5", "42000.50", "0.00012345", "79972.8", "100"]),
        "q": rng.choice(["0.125", "3", "1.50", "0.001"]),
        "f": n * 10,
        "l": n * 10 + rng.randint(0, 3),
        "t": time_ms * 1000 + rng.randint(0, 999) if micros else time_ms,
        "m": rng.choice(["true", "false", "True", "False"]),
    }
    if rng.random() < 0.08:
        field = rng.choice([*ODD])
        if field == "row":
            return rng.choice(ODD["row"])
        values[field] = rng.choice(ODD[field])
    if rng.random() < 0.03:
        values["l"] = values["f"] - 1  # last id before first
    if rng.random() < 0.03 and isinstance(values["t"], int):  # the other unit
        values["t"] = values["t"] * 1000 if not micros else values["t"] // 1000
    return template.format(**values)


def generated_file(rng: random.Random, directory: Path) -> tuple[Path, str]:
    name, kind, template = FORMATS[rng.choice([*FORMATS])]
    micros = rng.random() < 0.4
    rows, t, n = [], 1_704_067_200_000, rng.randint(1, 1000)
    for _ in range(rng.choice([0, 1, 2, rng.randint(3, 40)])):
        t += rng.choice([0, 0, 1, 7, 60_000])
        n += rng.choice([1, 1, 1, 0, 2])
        rows.append(_row(rng, template, n, t, micros))
    if len(rows) > 2 and rng.random() < 0.1:  # two rows swapped: out of order
        i = rng.randrange(len(rows) - 1)
        rows[i], rows[i + 1] = rows[i + 1], rows[i]
    if rng.random() < 0.3:
        rows.insert(0, HEADERS[kind])
    end = rng.choice(["\n", "\n", "\r\n", "\r"])
    text = end.join(rows) + (end if rng.random() < 0.8 else "")
    if rng.random() < 0.1:
        text = "\ufeff" + text
    path = directory / f"{name}.{'zip' if rng.random() < 0.3 else 'csv'}"
    directory.mkdir()
    if path.suffix == ".zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(f"{name}.csv", text.encode())
        path.write_bytes(buf.getvalue())
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return path, kind


def python_read(path: Path, kind: str) -> tuple[list[Trade] | None, list[Trade]]:
    """(every trade, or None when the reader rejects the file; the trades valid rows give)."""
    errors: list[binance_files.BinanceFileError] = []
    try:
        valid = list(binance_files.read_trades(path, file_kind=kind, errors=errors))
    except binance_files.BinanceFileError:
        return None, []
    return (None if errors else valid), valid


def as_text(t: Trade) -> tuple:
    first = "" if t.first_trade_id is None else str(t.first_trade_id)
    last = "" if t.last_trade_id is None else str(t.last_trade_id)
    return (
        t.symbol,
        str(t.trade_id),
        t.price,
        t.quantity,
        t.side.value,
        str(t.event_time_us),
        first,
        last,
    )


def from_java(row: str) -> tuple:
    f = row.split(",")
    return (f[0], f[1], Decimal(f[2]), Decimal(f[3]), *f[4:])


def check_all(cases: list[tuple[str, Path, str]], tmp: Path) -> dict[str, int]:
    """Run the JVM reader over each case's file; assert the contract; count the outcomes."""
    manifests, expected = [], []
    for case_id, path, kind in cases:
        trades, valid = python_read(path, kind)
        if not valid:
            continue  # nothing to read: plan() gives no entry (or raises the reader's error)
        first = valid[0]
        entry = backfill_files.FileEntry(
            path.resolve(),
            kind,
            first.exchange,
            first.symbol,
            first.native_symbol,
            first.kind.value,
            first.contract_size,
        )
        manifest = tmp / f"{len(manifests)}.manifest"
        backfill_files.write_manifest([entry], manifest, check_first=False)
        manifests.append(manifest)
        expected.append((case_id, trades))
    outcomes = {"accepted": 0, "refused": 0, "rejected by python": 0}
    for (case_id, trades), got in zip(expected, backfill_files.scan(manifests), strict=True):
        if trades is None:
            assert got.refused, f"{case_id}: the Python reader rejects it, the JVM took it"
            outcomes["rejected by python"] += 1
            continue
        keys = [(t.event_time_us, t.trade_id) for t in trades]
        if keys != sorted(keys):
            assert got.refused, f"{case_id}: rows out of order, the JVM took them"
        if got.refused:
            outcomes["refused"] += 1
            continue
        assert [from_java(r) for r in got.rows] == [as_text(t) for t in trades], case_id
        assert got.trades == len(trades)
        outcomes["accepted"] += 1
    return outcomes


def test_corpus_files(tmp_path):
    cases = []
    for param in file_cases():
        case = param.values[0]
        directory = tmp_path / case["id"]
        directory.mkdir()
        cases.append((case["id"], write_case_file(case, directory), case["kind"]))
    outcomes = check_all(cases, tmp_path)
    # The corpus is mostly bad rows: every one of those must be refused (checked above).
    assert outcomes["rejected by python"] >= 100, outcomes
    assert outcomes["accepted"] >= 7, outcomes  # BOM, CRLF, µs, duplicates, zip, header


def test_generated_files(tmp_path):
    print(f"seed {SEED} (CANDLEFLOW_PROPERTY_SEED)")
    rng = random.Random(SEED)
    cases = []
    for i in range(GENERATED):
        path, kind = generated_file(rng, tmp_path / f"g{i}")
        cases.append((f"generated #{i} (seed {SEED})", path, kind))
    outcomes = check_all(cases, tmp_path)
    print(outcomes)
    assert outcomes["accepted"] >= GENERATED // 4, outcomes
    assert outcomes["rejected by python"] >= GENERATED // 10, outcomes


@pytest.mark.parametrize("micros", [False, True])
def test_plain_published_rows_are_accepted(tmp_path, micros):
    """The form data.binance.vision publishes (and the real COIN-M day) takes the fast path."""
    rng = random.Random(SEED)
    cases = []
    for i, (name, kind, template) in enumerate(FORMATS.values()):
        rows = [
            template.format(
                id=n,
                p="42000.5",
                q="0.125",
                f=n,
                l=n + 2,
                t=(1_704_067_200_000 + n) * (1000 if micros else 1),
                m=rng.choice(["true", "False"]),
            )
            for n in range(1, 50)
        ]
        d = tmp_path / str(i)
        d.mkdir()
        path = d / f"{name}.csv"
        path.write_text("\r\n".join([HEADERS[kind], *rows]) + "\r\n")
        cases.append((name, path, kind))
    assert check_all(cases, tmp_path)["accepted"] == len(FORMATS)


# --- the command: the JVM reader's refusals fall back to the Python way -----------------------


def _day_file(tmp: Path, name: str, edit=None) -> Path:
    """The first 6,000 rows of the real COIN-M day, header and ms, as a monthly-named csv
    (past PREVIEW_TRADES, so only the job's reader sees an edit at row 4,000 or later)."""
    with zipfile.ZipFile(COINM_DAY) as zf, zf.open(zf.namelist()[0]) as fh:
        lines = io.TextIOWrapper(fh).read().splitlines()[:6001]
    if edit:
        edit(lines)
    directory = tmp / name
    directory.mkdir()
    path = directory / "BTCUSD_PERP-aggTrades-2026-05.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _backfill(src: Path, out: Path, *extra: str):
    args = ["backfill", str(src), "--intervals", "1m,5m", "-o", str(out), *extra]
    return CliRunner().invoke(app, args, env={"COLUMNS": "400"})


def _swap(lines: list[str]) -> None:  # two rows of different times swapped: out of order
    i = next(i for i in range(4500, 6000) if lines[i].split(",")[5] != lines[i + 1].split(",")[5])
    lines[i], lines[i + 1] = lines[i + 1], lines[i]


def _bad_price(lines: list[str]) -> None:
    f = lines[5000].split(",")
    lines[5000] = ",".join([f[0], "abc", *f[2:]])


@pytest.mark.flink
@pytest.mark.skipif(not COINM_DAY.exists(), reason="shared data not present")
def test_refusals_fall_back_to_the_python_way(tmp_path):
    """In order: the job reads the file itself. Out of order past the preview: the job's
    reader refuses, the command sorts in Python and the candles are those of the in-order
    file. A bad row past the preview: the Python reader's own message, exit 2, no output."""
    ordered = _backfill(_day_file(tmp_path, "a"), tmp_path / "a.csv")
    assert ordered.exit_code == 0, ordered.output
    assert "reads the 1 file(s) itself" in ordered.output and "refused" not in ordered.output

    swapped = _backfill(_day_file(tmp_path, "b", _swap), tmp_path / "b.csv")
    assert swapped.exit_code == 0, swapped.output
    text = " ".join(swapped.output.split())
    assert "refused" in text and "out of exchange order" in text, text
    assert "sorted on disk" in text, text
    assert (tmp_path / "b.csv").read_bytes() == (tmp_path / "a.csv").read_bytes()

    bad = _backfill(_day_file(tmp_path, "c", _bad_price), tmp_path / "c.csv")
    assert bad.exit_code == 2, bad.output
    text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", bad.output).split())  # the usage error's panel
    assert "refused" in text, text
    assert "aggTrades-2026-05.csv:5001: price 'abc' is not a decimal number" in text, text
    assert not (tmp_path / "c.csv").exists()
