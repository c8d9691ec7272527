"""`candleflow backfill FILE...`: the candles job, bounded, over data.binance.vision files.

Kappa reprocessing from exchange files, and the hook for independent verification: the
trades go through THE SAME Java PTF as the streaming job (a bounded Flink job on a local
MiniCluster), and the final candle of each window (its last revision) is written as CSV and,
with --iceberg, upserted into `<namespace>.candles` through the stream job's Iceberg sink
(one write path: same table, same key, a re-run replaces rows instead of adding them).

Trades are fed in exchange order (event time, trade id): the files are the exchange's own
record, so nothing is late, and the output equals the batch reference exactly.
"""

from __future__ import annotations

import csv
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer

from candleflow import binance_files
from candleflow import catalog as shared_catalog
from candleflow.config import CandleSettings, StackSettings
from candleflow.domain import KLINE_FIELDS, Candle, Trade
from candleflow.intervals import parse_intervals
from jobs.candle_files import read_rows, to_candle, write_trades_csv
from jobs.candle_tables import FileSink, FileSource, IcebergSink, Sinks
from jobs.candles import CandleJobConfig, build
from jobs.flink_env import make_table_env

log = logging.getLogger(__name__)

# The first columns are fixed (issue 4); the rest follow.
CSV_COLUMNS = [
    "interval",
    "open_time_us",
    *KLINE_FIELDS,
    "close_time_us",
    "exchange",
    "symbol",
    "vwap",
    "first_trade_id",
    "last_trade_id",
    "revision",
    "is_empty",
]


def plain(d: Decimal | None) -> str:
    """Exact decimal text without float noise or trailing zeros: 100.50000 -> 100.5."""
    if d is None:
        return ""
    text = format(d, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def final_candles(candles: list[Candle]) -> list[Candle]:
    """The last revision of each (exchange, symbol, interval, window)."""
    last: dict[tuple[str, str, str, int], Candle] = {}
    for c in candles:
        key = (c.exchange, c.symbol, c.interval, c.window_start_us)
        if key not in last or last[key].revision < c.revision:
            last[key] = c
    return sorted(
        last.values(),
        key=lambda c: (
            c.exchange,
            c.symbol,
            parse_intervals(c.interval)[0].micros,
            c.window_start_us,
        ),
    )


def write_csv(candles: list[Candle], path: Path) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(CSV_COLUMNS)
        for c in candles:
            w.writerow(
                [
                    c.interval,
                    c.window_start_us,
                    plain(c.open),
                    plain(c.high),
                    plain(c.low),
                    plain(c.close),
                    plain(c.volume),
                    plain(c.quote_volume),
                    c.trade_count,
                    plain(c.taker_buy_volume),
                    plain(c.taker_buy_quote_volume),
                    c.window_end_us,
                    c.exchange,
                    c.symbol,
                    plain(c.vwap),
                    "" if c.first_trade_id is None else c.first_trade_id,
                    "" if c.last_trade_id is None else c.last_trade_id,
                    c.revision,
                    str(c.is_empty).lower(),
                ]
            )


def load_trades(files: list[Path], exchange: str, symbol: str | None) -> list[Trade]:
    trades: list[Trade] = []
    for f in files:
        trades.extend(binance_files.read_trades(f, symbol=symbol, exchange=exchange))
    # Exchange order: the file is the exchange's record, so no trade is late (any row order).
    trades.sort(key=lambda t: (t.exchange, t.symbol, t.event_time_us, t.trade_id))
    return trades


@dataclass(frozen=True)
class IcebergTarget:
    """Where --iceberg writes: `<namespace>.candles` of the configured catalog."""

    stack: StackSettings
    namespace: str = "silver"

    def ensure_table(self) -> None:
        from jobs.candle_iceberg import ensure_tables

        # The stream job's table definition (v2, upsert on the candle key, day partitions).
        ensure_tables(self.stack, silver=self.namespace)

    def sink(self) -> IcebergSink:
        return IcebergSink(self.stack.catalog_name, self.namespace, "candles")

    def snapshot_id(self) -> int | None:
        table = shared_catalog.catalog(self.stack).load_table(f"{self.namespace}.candles")
        snap = table.current_snapshot()
        return None if snap is None else snap.snapshot_id


def run_backfill(
    trades: list[Trade],
    settings: CandleSettings,
    *,
    parallelism: int = 1,
    workdir: Path | None = None,
    iceberg: IcebergTarget | None = None,
) -> list[Candle]:
    """Run the candles job bounded over `trades`; returns the final candles.

    With `iceberg`, the same job also upserts every candle it emits into the Iceberg table
    (committed on checkpoints and at the end of input). Input in exchange order has no late
    trade, so each window is emitted once: the table gets exactly the final candles.
    """
    base = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="candleflow-backfill-"))
    try:
        src, out = base / "trades.csv", base / "candles"
        write_trades_csv(trades, src)
        sinks = Sinks(candles=[FileSink(out)], late=[FileSink(base / "late")])
        ddl: list[str] = []
        if iceberg is not None:
            iceberg.ensure_table()
            ddl.append(shared_catalog.flink_catalog_ddl(iceberg.stack))
            sinks.candles.append(iceberg.sink())
        config = CandleJobConfig(
            source=FileSource(src),
            sinks=sinks,
            candles=settings,
            emit_trades=False,
            catalog_ddl=ddl,
        )
        t_env = make_table_env(
            parallelism=parallelism,
            checkpoint_interval_ms=1000,
            connectors=iceberg is not None,
            stack=iceberg.stack if iceberg else None,
        )
        build(t_env, config).execute().wait()
        late = read_rows(base / "late") if (base / "late").exists() else []
        if late:  # cannot happen for sorted input; refuse to write a partial result
            raise RuntimeError(f"backfill: {len(late)} trades were late; this is a bug")
        return final_candles([to_candle(r) for r in read_rows(out)])
    finally:
        if workdir is None:
            shutil.rmtree(base, ignore_errors=True)


def register(app: typer.Typer) -> None:
    @app.command("backfill")
    def backfill(
        files: Annotated[
            list[Path],
            typer.Argument(
                help="data.binance.vision trades/aggTrades files (.csv or .zip)", exists=True
            ),
        ],
        output: Annotated[Path | None, typer.Option("--output", "-o", help="CSV to write")] = None,
        exchange: Annotated[str, typer.Option(help="exchange name")] = "binance",
        symbol: Annotated[
            str | None,
            typer.Option(
                help="canonical (BTC-USDT) or native (BTCUSDT); default: from the file name"
            ),
        ] = None,
        intervals: Annotated[str, typer.Option(help="e.g. 1m,1h")] = "1m,5m,15m,1h",
        parallelism: Annotated[int, typer.Option(help="Flink parallelism")] = 1,
        iceberg: Annotated[
            bool,
            typer.Option(
                "--iceberg/--no-iceberg",
                help="also upsert the candles into <namespace>.candles of the configured "
                "catalog (CANDLEFLOW_CATALOG_JDBC_URI / CANDLEFLOW_WAREHOUSE)",
            ),
        ] = False,
        namespace: Annotated[
            str, typer.Option(help="Iceberg namespace of the candles table (with --iceberg)")
        ] = "silver",
    ) -> None:
        """Candles from exchange trade files through the same candle logic as the stream job."""
        started = time.monotonic()
        if output is None and not iceberg:
            raise typer.BadParameter("give --output FILE and/or --iceberg", param_hint="--output")
        try:
            trades = load_trades(files, exchange.strip().lower(), symbol)
        except binance_files.BinanceFileError as exc:
            # A bad file is the user's input: say what and where, no traceback.
            raise typer.BadParameter(str(exc), param_hint="FILES / --symbol") from None
        if not trades:
            raise typer.BadParameter("no trades in the given files")
        target = IcebergTarget(StackSettings(), namespace) if iceberg else None
        before = None
        if target is not None:
            target.ensure_table()
            before = target.snapshot_id()
        typer.echo(f"backfill: {len(trades)} trades, running the candles job...", err=True)
        settings = CandleSettings(intervals=intervals)
        candles = run_backfill(trades, settings, parallelism=parallelism, iceberg=target)
        if output is not None:
            write_csv(candles, output)
            typer.echo(f"backfill: wrote {len(candles)} candles to {output}", err=True)
        if target is not None:
            # Both snapshots, so an operator can audit or roll back the correction.
            typer.echo(
                f"backfill: upserted {len(candles)} candles into "
                f"{target.stack.catalog_name}.{namespace}.candles "
                f"(snapshot {before} -> {target.snapshot_id()})",
                err=True,
            )
        typer.echo(f"backfill: done in {time.monotonic() - started:.1f}s", err=True)
