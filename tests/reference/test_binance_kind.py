"""A data.binance.vision file is read by what it holds, not by its name: renamed trades and
aggTrades files (header or not, ms or µs, zip or csv) read exactly as under their own
names, and content that cannot tell asks for the kind by the option a user can pass."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from candleflow.binance_files import (
    KindUnknown,
    SymbolUnknown,
    file_kind_of,
    read_trades,
    usage_error,
)
from candleflow.binance_kind import AGG_TRADES, KLINES, TRADES, detect, row_kinds
from devstack.sample_data import BINANCE_FILES, COINM_DAY

SPOT_TRADES_FILE = BINANCE_FILES / "BTCUSDT-trades-2025-01-01-0000.csv"
SPOT_KLINE_FILE = BINANCE_FILES / "BTCUSDT-1m-2025-01-01-0000.csv"

TRADES_HEADER = "id,price,qty,quote_qty,time,is_buyer_maker\n"
AGG_HEADER = (
    "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n"
)
# (kind, header, rows) in each documented variant: spot (extra isBestMatch) and futures,
# ms and µs.
VARIANTS = {
    "spot trades µs": (
        TRADES,
        None,
        "51175358,17.80180000,5.69000000,101.29224200,1735689600010866,True,True\n"
        "51175359,17.80190000,0.10000000,1.78019000,1735689600512000,False,True\n",
    ),
    "futures trades ms": (
        TRADES,
        TRADES_HEADER,
        "28457,4.00000100,12.00000000,48.00,1499865549590,true\n"
        "28458,4.00000200,1.00000000,4.0000002,1499865549591,false\n",
    ),
    "spot aggTrades ms": (
        AGG_TRADES,
        AGG_HEADER.replace("\n", ",is_best_match\n"),
        "26129,0.01633102,4.70443515,27781,27783,1498793709153,true,true\n"
        "26130,0.01633103,1.00000000,27784,27784,1498793709154,false,true\n",
    ),
    "futures aggTrades ms": (
        AGG_TRADES,
        AGG_HEADER,
        "480537903,79972.8,542.0,1123474160,1123474164,1778198400020,false\n"
        "480537904,79972.9,1.0,1123474165,1123474165,1778198400024,false\n",
    ),
    "spot aggTrades µs": (
        AGG_TRADES,
        None,
        "26129,0.01633102,4.70443515,27781,27783,1735689600010866,true,true\n"
        "26130,0.01633103,1.00000000,27784,27784,1735689600010900,false,true\n",
    ),
}


def write(path: Path, text: str) -> Path:
    if path.suffix == ".zip":
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("data.csv", text)
    else:
        path.write_text(text)
    return path


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("headed", [True, False])
@pytest.mark.parametrize("suffix", [".csv", ".zip"])
def test_renamed_file_reads_as_under_its_own_name(
    tmp_path: Path, variant: str, headed: bool, suffix: str
) -> None:
    kind, header, rows = VARIANTS[variant]
    text = (header if headed and header else "") + rows
    native = "LTCBTC"
    named = write(tmp_path / f"{native}-{kind}-2025-01-01{suffix}", text)
    renamed = write(tmp_path / f"my download{suffix}", text)
    assert file_kind_of(renamed) == kind
    want = list(read_trades(named))
    got = list(read_trades(renamed, symbol=native))
    assert got == want and len(got) == 2
    assert all((t.first_trade_id is not None) == (kind == AGG_TRADES) for t in got)


def test_content_wins_over_a_misleading_name(tmp_path: Path) -> None:
    """A trades file saved under an aggTrades name is still trades."""
    _, _, rows = VARIANTS["spot trades µs"]
    path = write(tmp_path / "FETUSDT-aggTrades-2025-01-01.csv", rows)
    assert file_kind_of(path) == TRADES
    assert [t.first_trade_id for t in read_trades(path)] == [None, None]


def test_real_files_renamed(tmp_path: Path) -> None:
    day = shutil.copy(COINM_DAY, tmp_path / "coinm.zip")
    minute = shutil.copy(SPOT_TRADES_FILE, tmp_path / "minute.csv")
    assert file_kind_of(day) == AGG_TRADES and file_kind_of(minute) == TRADES
    assert file_kind_of(SPOT_TRADES_FILE) == TRADES  # its name has no scheme (-0000)
    trades = list(read_trades(minute, symbol="BTC-USDT"))
    assert len(trades) == 2631 and trades[0].trade_id == 4359935386
    assert trades[0].event_time_us == 1735689600010866
    assert sum(1 for _ in read_trades(day, symbol="BTCUSD_PERP")) == 105_280


@pytest.mark.parametrize(
    "text",
    [
        "1,2,3,4,5,6,7\n8,9,10,11,12,13,14\n",  # 7 integers: neither shape
        "1,100.5,1,maybe,1735689600000,true,true\n",  # a fourth column neither has
        "a;b;c\n1;2;3\n",
    ],
)
def test_content_that_cannot_tell_asks_for_kind(tmp_path: Path, text: str) -> None:
    path = write(tmp_path / "x.csv", text)
    with pytest.raises(KindUnknown) as info:
        list(read_trades(path, symbol="BTC-USDT"))
    message, hint = usage_error(info.value)
    assert "cannot tell trades from aggTrades" in message
    assert "--kind trades or --kind aggTrades" in message and hint == "--kind"
    assert "file_kind" not in message


def test_explicit_kind_overrides_and_reports_rows(tmp_path: Path) -> None:
    """With the kind given the reader reads, and names each row that does not fit."""
    path = write(tmp_path / "x.csv", "1,2,3,4,5,6,7\n")
    errors: list = []
    assert list(read_trades(path, symbol="BTC-USDT", file_kind="trades", errors=errors)) == []
    assert len(errors) == 1 and "x.csv:1" in str(errors[0])


def test_kline_file_is_not_read_as_trades(tmp_path: Path) -> None:
    path = shutil.copy(SPOT_KLINE_FILE, tmp_path / "k.csv")
    with pytest.raises(KindUnknown, match="a kline file"):
        list(read_trades(path, symbol="BTC-USDT"))


def test_no_symbol_names_the_symbol_option(tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", VARIANTS["spot trades µs"][2])
    with pytest.raises(SymbolUnknown) as info:
        list(read_trades(path))
    message, hint = usage_error(info.value)
    assert hint == "--symbol" and "--symbol" in message


def test_empty_file_has_no_trades(tmp_path: Path) -> None:
    assert list(read_trades(write(tmp_path / "e.csv", ""), symbol="BTC-USDT")) == []


@settings(max_examples=400, deadline=None)
@given(
    kind=st.sampled_from([TRADES, AGG_TRADES]),
    spot=st.booleans(),
    micros=st.booleans(),
    ids=st.tuples(st.integers(0, 10**12), st.integers(0, 10**6)),
    price=st.decimals(min_value="0.00000001", max_value="1e7", places=8),
    qty=st.decimals(min_value="0.00000001", max_value="1e5", places=8),
    maker=st.booleans(),
)
def test_every_well_formed_row_fits_its_own_kind_only(
    kind: str, spot: bool, micros: bool, ids: tuple[int, int], price, qty, maker: bool
) -> None:
    """No well-formed row of one kind also fits the other (the 7-column case included)."""
    time = 1_735_689_600_000_000 if micros else 1_577_836_800_000
    first, span = ids
    if kind == TRADES:
        row = [str(first), str(price), str(qty), str(price * qty), str(time), str(maker)]
    else:
        row = [str(first), str(price), str(qty), str(first), str(first + span), str(time)]
        row.append(str(maker).lower())
    if spot:
        row.append("True")
    assert row_kinds(row) == {kind}
    assert detect(None, [row]) == kind


def test_headers_decide() -> None:
    assert detect(TRADES_HEADER.strip().split(","), []) == TRADES
    assert detect(AGG_HEADER.strip().split(","), []) == AGG_TRADES
    assert detect(["open_time", "open", "high"], []) == KLINES
    assert detect(None, []) is None
