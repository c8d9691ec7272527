"""`candleflow backfill`'s trade preparation: the job's input file, streamed in bounded memory.

The reference is the in-memory way (every trade of every file in a list, a stable sort by
exchange order, write_trades_csv): for any row order, within and across files, with
duplicates, and for any chunk size (tiny ones force many runs and merge passes), the streamed
file is byte for byte that file. A memory bound that the in-memory way exceeds several times.
"""

from __future__ import annotations

import io
import random
import subprocess
import sys
import tempfile
import zipfile
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from candleflow import binance_files
from candleflow.domain import InstrumentKind, Side, Trade
from devstack.sample_data import COINM_DAY
from jobs.backfill_prepare import prepare_trades
from jobs.candle_files import TradeText, trade_key, write_sorted_trades_csv, write_trades_csv

needs_day = pytest.mark.skipif(not COINM_DAY.exists(), reason="shared data not present")


def in_memory(files: list[Path], exchange: str = "binance", symbol: str | None = None) -> bytes:
    """The way backfill prepared its input before streaming: all trades in a list, sorted."""
    trades: list[Trade] = []
    for f in files:
        trades.extend(binance_files.read_trades(f, symbol=symbol, exchange=exchange))
    trades.sort(key=trade_key)
    return _written(lambda p: write_trades_csv(trades, p))


def _written(write) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        write(Path(d) / "t.csv")
        return (Path(d) / "t.csv").read_bytes()


# --- property: any order, any chunk size -> the sorted in-memory file ----------------------

# Few distinct values so that keys collide: equal (time, id) pairs test the input-order tie
# break, equal values with different exponents (1.5 vs 1.50) test the decimal texts.
_DECIMALS = st.sampled_from(
    ["1.5", "1.50", "1.500", "2", "2.0", "1E+2", "100", "0.00012345", "0.000123450", "79972.8"]
).map(Decimal)


@st.composite
def trade_lists(draw) -> list[Trade]:
    n = draw(st.integers(0, 60))
    out = []
    for _ in range(n):
        inverse = draw(st.booleans())
        first = draw(st.one_of(st.none(), st.integers(1, 5)))
        out.append(
            Trade(
                exchange=draw(st.sampled_from(["binance", "binance", "kraken"])),
                symbol=draw(st.sampled_from(["BTC-USDT", "BTC-USDT", "ETH-USDT"])),
                native_symbol=draw(st.sampled_from(["BTCUSDT", "X"])),
                trade_id=draw(st.integers(0, 6)),
                price=draw(_DECIMALS),
                quantity=draw(_DECIMALS),
                side=draw(st.sampled_from(list(Side))),
                # µs within a few seconds around a second boundary (shared timestamp texts)
                event_time_us=1_778_198_400_000_000 + draw(st.integers(-2, 2)) * 400_000,
                ingest_time_us=1_778_198_400_000_000 + draw(st.integers(0, 3)),
                first_trade_id=first,
                last_trade_id=None if first is None else first + draw(st.integers(0, 3)),
                kind=InstrumentKind.INVERSE if inverse else InstrumentKind.SPOT,
                contract_size=draw(_DECIMALS) if inverse else None,
            )
        )
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    trades=trade_lists(),
    shuffle_seed=st.integers(0, 2**32),
    chunk_rows=st.integers(1, 8),
    fan_in=st.integers(2, 4),
    small_caches=st.booleans(),
)
def test_streamed_sort_equals_sorted_in_memory(
    trades, shuffle_seed, chunk_rows, fan_in, small_caches
):
    random.Random(shuffle_seed).shuffle(trades)
    with ExitStack() as stack:
        if small_caches:  # the caches' clears change which of equal decimals' texts is written
            for name, value in (("MAX_SECONDS", 2), ("MAX_DECIMALS", 3), ("MAX_MEMO", 2)):
                stack.enter_context(mock.patch.object(TradeText, name, value))
        want = _written(lambda p: write_trades_csv(sorted(trades, key=trade_key), p))
        reads = []

        def read():
            reads.append(1)
            return iter(trades)

        got = _written(
            lambda p: write_sorted_trades_csv(read, p, chunk_rows=chunk_rows, fan_in=fan_in)
        )
    assert got == want
    in_order = trades == sorted(trades, key=trade_key)
    assert len(reads) == (1 if in_order else 2)


def test_report_says_what_was_done(tmp_path):
    t = [
        Trade("binance", "BTC-USDT", "BTCUSDT", i, Decimal(1), Decimal(1), Side.BUY, us, us)
        for i, us in enumerate([5, 6, 7, 1, 2, 3, 4])
    ]
    ordered = write_sorted_trades_csv(lambda: iter(sorted(t, key=trade_key)), tmp_path / "a")
    assert (ordered.trades, ordered.in_order, ordered.runs) == (7, True, 0)
    report = write_sorted_trades_csv(lambda: iter(t), tmp_path / "b", chunk_rows=2, fan_in=2)
    assert (report.trades, report.in_order, report.first_out_of_order) == (7, False, 3)
    assert report.runs == 4 and report.merge_passes == 2
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("sort-")]  # runs removed


# --- real files: every documented variant, shuffled, overlapping, duplicated ----------------


def _day_rows(limit: int | None = None) -> tuple[str, list[str]]:
    with zipfile.ZipFile(COINM_DAY) as zf, zf.open(zf.namelist()[0]) as fh:
        lines = io.TextIOWrapper(fh).read().splitlines()
    return lines[0], lines[1 : None if limit is None else limit + 1]


def _us(row: str) -> str:
    f = row.split(",")
    f[5] = f"{int(f[5]) * 1000 + 7}"
    return ",".join(f)


@needs_day
def test_real_files_any_order_equal_the_in_memory_way(tmp_path):
    header, rows = _day_rows(6000)
    rng = random.Random(4)
    name = "BTCUSD_PERP-aggTrades-2026-05-08"
    a, b, c, d = (tmp_path / x for x in "abcd")
    for x in (a, b, c, d):
        x.mkdir()
    # a: the first 4000 rows as published (header, ms, zip)
    with zipfile.ZipFile(a / f"{name}.zip", "w") as zf:
        zf.writestr(f"{name}.csv", "\n".join([header, *rows[:4000]]) + "\n")
    # b: rows 3000..6000 (overlapping a: duplicate trade ids), shuffled, no header, csv
    tail = rows[3000:]
    rng.shuffle(tail)
    (b / f"{name}.csv").write_text("\n".join(tail) + "\n")
    # c: the same rows in µs with a header, reversed
    (c / f"{name}.csv").write_text("\n".join([header, *map(_us, reversed(rows[:2000]))]) + "\n")
    files = [a / f"{name}.zip", b / f"{name}.csv"]
    for chunk_rows in (1000, 100_000):
        for order in (files, files[::-1], [files[0], c / f"{name}.csv"]):
            got = tmp_path / "got.csv"
            report = prepare_trades(order, "binance", None, got, chunk_rows=chunk_rows)
            assert got.read_bytes() == in_memory(order)
            assert not report.in_order
    # in order (one published file, or consecutive ones): one pass, straight through
    in_order = prepare_trades(files[:1], "binance", "BTC-USD-PERP", tmp_path / "o.csv")
    assert in_order.in_order and in_order.trades == 4000
    assert (tmp_path / "o.csv").read_bytes() == in_memory(files[:1], symbol="BTC-USD-PERP")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c", "d", "got.csv", "o.csv"]


def test_bad_row_error_is_unchanged(tmp_path):
    """The reader's validation and messages are the same, wherever the bad row is."""
    f = tmp_path / "BTCUSDT-trades-2024-01-01.csv"
    f.write_text(
        "3,1.5,1,1.5,1704067200002,true,true\n"
        "2,1.5,1,1.5,1704067200001,true,true\n"  # out of order: the sort pass reads again
        "4,abc,1,1.5,1704067200003,true,true\n"
    )
    with pytest.raises(binance_files.BinanceFileError) as streamed:
        prepare_trades([f], "binance", None, tmp_path / "t.csv", chunk_rows=1)
    with pytest.raises(binance_files.BinanceFileError) as loaded:
        in_memory([f])
    assert str(streamed.value) == str(loaded.value)
    assert "BTCUSDT-trades-2024-01-01.csv:3: price 'abc' is not a decimal number" in str(
        streamed.value
    )


# --- memory -----------------------------------------------------------------------------------

ROWS = 250_000  # ≈ 2.4 copies of the day; the in-memory way holds ~0.5 kB per trade
BOUND_MB = 40  # peak RSS growth; measured: streamed 2.8 MB in order, 12 MB shuffled

# Run in a fresh interpreter, modules imported first: the growth of the peak RSS (VmHWM)
# over the RSS before is what the preparation itself needed.
_MEASURE = """
import sys
from pathlib import Path
from jobs.backfill_prepare import prepare_trades

def status(name):
    for line in open("/proc/self/status"):
        if line.startswith(name + ":"):
            return int(line.split()[1]) * 1024
before = status("VmRSS")
report = prepare_trades([Path(sys.argv[1])], "binance", None, Path(sys.argv[2]),
                        chunk_rows=int(sys.argv[3]))
print(report.trades, report.in_order, (status("VmHWM") - before) / 1e6)
"""


def _big_file(tmp_path: Path, shuffled: bool) -> Path:
    """ROWS real aggTrades: the day repeated on following days with shifted ids and times."""
    _, rows = _day_rows()
    out = []
    k = 0
    while len(out) < ROWS:
        shift_ms, shift_id = k * 86_400_000, k * 10_000_000_000
        for r in rows:
            f = r.split(",")
            out.append(
                f"{int(f[0]) + shift_id},{f[1]},{f[2]},{int(f[3]) + shift_id},"
                f"{int(f[4]) + shift_id},{int(f[5]) + shift_ms},{f[6]}"
            )
            if len(out) >= ROWS:
                break
        k += 1
    if shuffled:
        random.Random(7).shuffle(out)
    path = tmp_path / "BTCUSD_PERP-aggTrades-2026-05.csv"
    path.write_text("\n".join(out) + "\n")
    return path


@needs_day
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("shuffled", [False, True], ids=["in-order", "shuffled"])
def test_preparation_memory_is_bounded(tmp_path, shuffled):
    """Peak RSS growth of the preparation over 250k trades. The in-memory way (all Trade
    objects in a list, sorted) needed 153 MB here when this test was run against it, and
    would need tens of GB for a busy month; streaming stays under the bound whatever the
    file's size (in order: a few caches; out of order: one chunk of 20k records)."""
    src = _big_file(tmp_path, shuffled)
    dest = tmp_path / "trades.csv"
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(src), str(dest), "20000"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    trades, in_order, peak_mb = int(out[0]), out[1] == "True", float(out[2])
    assert (trades, in_order) == (ROWS, not shuffled)
    assert peak_mb < BOUND_MB, f"peak RSS growth {peak_mb:.1f} MB"
    with dest.open() as fh:
        assert sum(1 for _ in fh) == ROWS
