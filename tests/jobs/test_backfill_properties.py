"""Property tests of the bounded path: `candleflow backfill` over generated
data.binance.vision files of many markets at once, against the batch reference.

Each run is one command over the files of 80 markets (distinct symbols; ×
CANDLEFLOW_PROPERTY_SCALE): spot, USD-M and COIN-M, trades and aggTrades, ms and µs times,
headed and headerless, .csv and .zip, a market crossing midnight split into its two daily
files (the second repeating a few trades of the first), the files in exchange order
(streamed through) or not (sorted on disk). Every interval alone, then a subset: each
window equals the batch reference on every field, and at the end of input every trade is in
exactly one candle per interval. The seed is printed; CANDLEFLOW_PROPERTY_SEED replays it.
"""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from candleflow import reference
from candleflow.cli import app
from candleflow.domain import Candle, Trade
from candleflow.intervals import parse_intervals
from tests.jobs import checks, scenarios, vision_files

pytestmark = pytest.mark.flink

PER_RUN = 80
SEED = scenarios.seed()
RUNS = ["1m", "5m", "15m", "1h", "subset"]
DECIMALS = ("open", "high", "low", "close", "volume", "quote_volume", "taker_buy_volume")
DECIMALS += ("taker_buy_quote_volume", "vwap")


def market_files(rng: random.Random, index: int, directory: Path) -> tuple[list[Path], list[Trade]]:
    """One market's daily files and the trades they hold (duplicates included)."""
    layout = vision_files.Layout.draw(rng)
    native = vision_files.native_symbol(index, layout.market)
    market = vision_files.market_of(native, layout)
    span = rng.choice(scenarios.SPANS_S) * scenarios.S_US
    trades = scenarios.market_trades(
        rng,
        market,
        scenarios.anchor(rng, index, span),
        span,
        n=rng.choice([1, 2, rng.randint(3, 12), rng.randint(10, 80)]),
        ms_times=layout.ms,
        aggregate=layout.kind == "aggTrades",
        first_id=rng.choice([1, 4_090, 480_537_903]),
        unknown_side=False,
    )
    days: dict[int, list[Trade]] = defaultdict(list)
    for t in trades:
        days[t.event_time_us - t.event_time_us % scenarios.DAY_US].append(t)
    files, held = [], []
    previous: list[Trade] = []
    for day in sorted(days):
        rows = previous[len(previous) - rng.randint(0, 2) :] if previous else []
        rows += days[day]
        files.append(vision_files.write(directory, native, layout, day, rows))
        held += rows
        previous = days[day]
    return files, held


def read_csv(path: Path) -> list[Candle]:
    out = []
    with path.open() as fh:
        for r in csv.DictReader(fh):
            dec = {k: Decimal(r[k]) if r[k] else None for k in DECIMALS}.__getitem__
            num = {k: int(v) if v else None for k, v in r.items() if k.endswith("_id")}.__getitem__
            out.append(
                Candle(
                    r["exchange"],
                    r["symbol"],
                    r["interval"],
                    int(r["open_time_us"]),
                    int(r["close_time_us"]),
                    *(dec(n) for n in ("open", "high", "low", "close", "volume", "quote_volume")),
                    int(r["trade_count"]),
                    dec("taker_buy_volume"),
                    dec("taker_buy_quote_volume"),
                    dec("vwap"),
                    num("first_trade_id"),
                    num("last_trade_id"),
                    int(r["revision"]),
                    r["is_empty"] == "true",
                )
            )
    return out


@pytest.mark.parametrize("name", RUNS)
def test_backfill_equals_reference_over_many_files(name, tmp_path):
    rng = random.Random(f"{SEED}-backfill-{name}")
    if name == "subset":
        k = rng.randint(2, len(scenarios.INTERVAL_CHOICES))
        intervals = ",".join(rng.sample(scenarios.INTERVAL_CHOICES, k))
    else:
        intervals = name
    data = tmp_path / "files"
    data.mkdir()
    files: list[Path] = []
    trades: list[Trade] = []
    for index in range(PER_RUN * scenarios.scale()):
        f, t = market_files(rng, index, data)
        files += f
        trades += t
    in_order = rng.random() < 0.5
    if in_order:  # exchange order: by market, then day (streamed straight through)
        files.sort(key=lambda p: (str(market_symbol(p, trades)), p.name))
    else:
        rng.shuffle(files)
    print(
        f"seed {SEED}: backfill {name} intervals {intervals}, {len(files)} files, "
        f"{len(trades)} trades, in exchange order {in_order}"
    )
    out = tmp_path / "candles.csv"
    result = CliRunner().invoke(
        app, ["backfill", *map(str, files), "--intervals", intervals, "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    got = read_csv(out)
    p: checks.Problems = defaultdict(list)
    want = reference.batch_candles(trades, intervals)
    checks.compare_final(checks.final(got), checks.final(want), p)
    if len(got) != len(checks.final(got)):
        p[("*", "*")].append(f"{len(got) - len(checks.final(got))} windows written twice")
    names = [iv.name for iv in parse_intervals(intervals)]
    checks.conservation(reference.dedup(trades), checks.final(got), [], names, p)
    if p:
        pytest.fail(
            checks.report(p, f"CANDLEFLOW_PROPERTY_SEED={SEED} backfill {name} ({intervals})"),
            pytrace=False,
        )


def market_symbol(path: Path, trades: list[Trade]) -> str:
    """The canonical symbol of a generated file (files sort by it in exchange order)."""
    native = path.name.split("-")[0]
    return next(t.symbol for t in trades if t.native_symbol == native)
