"""`candleflow watch | history | sql`: the terminal client commands."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import sys
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from candleflow.config import StackSettings
from candleflow.domain import CANDLE_DECIMAL_FIELDS, Candle

# CSV/Parquet columns: the Candle record's fields, in order.
CANDLE_FIELDS = [f.name for f in fields(Candle)]


def parse_time(text: str) -> int:
    """Epoch microseconds from an ISO-8601 time (UTC if no zone) or an integer of µs."""
    if text.isdigit():
        return int(text)
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{text!r}: use ISO-8601 (2026-05-08T10:00) or epoch µs") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1_000_000)


def _client(server: str, token: str | None, tls_ca: str, tls_cert: str, tls_key: str) -> Any:
    from serving.client import MarketDataClient, Tls

    tls = Tls(tls_ca, tls_cert, tls_key) if (tls_ca or tls_cert) else None
    return MarketDataClient(server, token=token or os.environ.get("CANDLEFLOW_TOKEN"), tls=tls)


def _default_server() -> str:
    s = StackSettings()
    return f"{s.host}:{s.grpc_port}"


def write_candles(candles: list[Candle], fmt: str, out: Path | None) -> None:
    from serving.convert import dec_str

    if fmt == "csv":
        fh = open(out, "w", newline="") if out else sys.stdout  # noqa: SIM115
        try:
            w = csv.writer(fh)
            w.writerow(CANDLE_FIELDS)
            for c in candles:
                w.writerow(
                    [
                        dec_str(v) if hasattr(v, "as_tuple") else ("" if v is None else v)
                        for v in (getattr(c, f) for f in CANDLE_FIELDS)
                    ]
                )
        finally:
            if out:
                fh.close()
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    if out is None:
        raise typer.BadParameter("--format parquet needs --out FILE")
    dec = pa.decimal128(38, 18)
    cols: dict[str, Any] = {}
    for f in CANDLE_FIELDS:
        values = [getattr(c, f) for c in candles]
        if f in CANDLE_DECIMAL_FIELDS:
            from candleflow.records import fit_decimal

            cols[f] = pa.array([None if v is None else fit_decimal(v) for v in values], dec)
        else:
            cols[f] = pa.array(values)
    pq.write_table(pa.table(cols), out)


def register(app: typer.Typer) -> None:
    @app.command()
    def watch(
        symbol: str = typer.Argument(..., help="canonical symbol, e.g. BTC-USDT"),
        interval: str = typer.Option("1m", "--interval", "-i"),
        server: str = typer.Option("", help="host:port of the MarketData service"),
        token: str = typer.Option("", help="bearer token (default: $CANDLEFLOW_TOKEN)"),
        since: str = typer.Option("", help="replay from this time (ISO-8601 or µs)"),
        plain: bool = typer.Option(False, help="plain text lines even on a terminal"),
        count: int = typer.Option(0, help="exit after this many candle events (0 = never)"),
        tls_ca: str = typer.Option("", help="PEM CA of the server certificate"),
        tls_cert: str = typer.Option("", help="client certificate (mTLS)"),
        tls_key: str = typer.Option("", help="client key (mTLS)"),
    ) -> None:
        """Live candlestick chart with volume, anomalies and explanations; resumes by itself."""
        from serving.watch import watch as run_watch

        async def main() -> None:
            async with _client(
                server or _default_server(), token, tls_ca, tls_cert, tls_key
            ) as client:
                await run_watch(
                    client,
                    symbol,
                    interval,
                    start_time_us=parse_time(since) if since else None,
                    plain=True if plain else None,
                    max_candles=count or None,
                )

        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(main())

    @app.command()
    def history(
        symbol: str = typer.Argument(...),
        interval: str = typer.Option("1m", "--interval", "-i"),
        start: str = typer.Option("0", help="window_start >= (ISO-8601 or µs)"),
        end: str = typer.Option("", help="window_start < (ISO-8601 or µs)"),
        exchange: str = typer.Option(""),
        limit: int = typer.Option(100_000),
        as_of: str = typer.Option("", help="read the table as of this time (ISO-8601 or µs)"),
        snapshot: int = typer.Option(0, help="read this Iceberg snapshot id"),
        fmt: str = typer.Option("csv", "--format", help="csv or parquet"),
        out: str = typer.Option("", help="output file (stdout for csv)"),
        via: str = typer.Option("duckdb", help="duckdb (local catalog), trino, or grpc"),
        table: str = typer.Option("silver.candles", help="Iceberg table (duckdb/trino)"),
        server: str = typer.Option("", help="for --via grpc: host:port"),
        token: str = typer.Option(""),
    ) -> None:
        """Exact candle history from Iceberg, optionally as of a snapshot or time."""
        if fmt not in ("csv", "parquet"):
            raise typer.BadParameter("--format: csv or parquet")
        if snapshot and as_of:
            raise typer.BadParameter("--snapshot or --as-of, not both")
        snapshot_id = snapshot or None
        as_of_us = parse_time(as_of) if as_of else None
        start_us, end_us = parse_time(start), parse_time(end) if end else None
        if via == "grpc":
            from serving.convert import candle_from_pb

            async def fetch() -> list[Candle]:
                async with _client(server or _default_server(), token, "", "", "") as client:
                    resp = await client.get_candles(
                        symbol,
                        interval,
                        start_us,
                        end_us or 0,
                        exchange,
                        limit,
                        snapshot_id,
                        as_of_us,
                    )
                    return [candle_from_pb(m) for m in resp.candles]

            candles = asyncio.run(fetch())
        else:
            from serving.history import CandleQuery, NotFound, Tables
            from serving.history_backend import make_history

            try:
                candles, _ = make_history(via, StackSettings(), Tables(candles=table)).get_candles(
                    CandleQuery(
                        symbol,
                        interval,
                        start_us,
                        end_us,
                        exchange or None,
                        limit,
                        snapshot_id,
                        as_of_us,
                    )
                )
            except NotFound as exc:
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(1) from None
        write_candles(candles, fmt, Path(out) if out else None)
        if out:
            typer.echo(f"{len(candles)} candles -> {out}", err=True)

    @app.command()
    def sql(
        query: str = typer.Argument(..., help='Trino SQL, e.g. "SELECT * FROM silver.candles"'),
        fmt: str = typer.Option("table", "--format", help="table or csv"),
    ) -> None:
        """Run Trino SQL over the Iceberg tables (catalog `iceberg`; `stack up --with-trino`)."""
        from rich.console import Console
        from rich.table import Table

        from serving.history import Tables
        from serving.history_trino import TrinoHistory

        h = TrinoHistory(StackSettings(), Tables())
        conn = h.connect()
        conn.schema = None
        try:
            cur = conn.cursor()
            cur.execute(query)
            rows = cur.fetchall()
            names = [d[0] for d in cur.description or []]
        finally:
            conn.close()
        if fmt == "csv":
            w = csv.writer(sys.stdout)
            w.writerow(names)
            w.writerows(rows)
            return
        table = Table(*names)
        for row in rows:
            table.add_row(*("" if v is None else str(v) for v in row))
        Console().print(table)
