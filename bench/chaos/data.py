"""The chaos run's input: the real COIN-M day, repeated over consecutive days.

Day k is the recorded day shifted by k days, its aggregate trade ids by k x the day's id
span (the ids have no gap, so the shifted days continue the sequence) and its first/last
raw trade ids likewise: every trade is distinct, real in price, size, side and spacing,
and the files read exactly as data.binance.vision's (one aggTrades csv per day).
"""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import date, timedelta
from pathlib import Path

from candleflow.binance_files import parse_file_name
from devstack.sample_data import COINM_DAY

DAY_MS = 86_400_000
HEADER = "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker"


def _day_rows(source: Path) -> list[list[str]]:
    with zipfile.ZipFile(source) as zf, zf.open(zf.namelist()[0]) as fh:
        rows = list(csv.reader(io.TextIOWrapper(fh, "utf-8")))
    return rows[1:] if rows and not rows[0][0].isdigit() else rows


def input_files(out_dir: Path, trades: int, source: Path = COINM_DAY) -> list[Path]:
    """At least `trades` trades as consecutive daily files in `out_dir` (reused if there);
    fewer than a day's: the first `trades` of the day."""
    rows = _day_rows(source)
    rows = rows[:trades]  # less than a day: the day's first trades
    days = max(1, -(-trades // len(rows)))
    name = parse_file_name(source)
    assert name is not None and name.day is not None
    agg_span = int(rows[-1][0]) - int(rows[0][0]) + 1
    raw_span = int(rows[-1][4]) - int(rows[0][3]) + 1
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(days):
        day: date = name.day + timedelta(days=k)
        path = out_dir / f"{len(rows)}" / f"{name.native_symbol}-aggTrades-{day.isoformat()}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        paths.append(path)
        if path.exists():
            continue
        tmp = path.with_suffix(".tmp")
        with tmp.open("w") as fh:
            fh.write(HEADER + "\n")
            for r in rows:
                fh.write(
                    f"{int(r[0]) + k * agg_span},{r[1]},{r[2]},{int(r[3]) + k * raw_span},"
                    f"{int(r[4]) + k * raw_span},{int(r[5]) + k * DAY_MS},{r[6]}\n"
                )
        tmp.rename(path)
    return paths


def count_trades(paths: list[Path]) -> int:
    return sum(sum(1 for _ in p.open()) - 1 for p in paths)
