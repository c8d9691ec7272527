"""`candleflow ingest`: capture live trades from an exchange, or replay recorded files."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from confluent_kafka import KafkaException
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from adapters import topics
from candleflow.binance_files import BinanceFileError, usage_error
from candleflow.binance_kind import FileKind
from candleflow.config import StackSettings, Topics
from candleflow.symbols import is_canonical
from ingest import ADAPTERS, binance, metrics
from ingest.common import LIVE_MAX_SKEW_US, ParseOptions
from ingest.connection import Connection, LoopSettings, endpoint
from ingest.lane import fast_lane
from ingest.producer import DeliveryError, TradeProducer
from ingest.resume import ResumeError

app = typer.Typer(
    no_args_is_help=True,
    help="""Capture trades into Kafka (topic trades.v1, Avro; bad frames to ingest.rejects).

\b
Live, from the exchange's public WebSocket (needs network):
  candleflow ingest live --exchange binance --symbols BTC-USDT,ETH-USDT
  candleflow ingest live --exchange coinbase --symbols BTC-USD
\b
Replay recorded real data (data.binance.vision zip/csv, or capture .jsonl[.zst]):
  candleflow ingest replay ../shared/data/binance/BTCUSD_PERP-aggTrades-2026-05-08.zip --speed 0
  candleflow ingest replay ../shared/data/captures/COINBASE.jsonl.zst --speed 10

Metrics (Prometheus) and health: http://HOST:PORT/metrics and /healthz (--metrics-port).
""",
)
console = Console(stderr=True)


def _symbols(text: str) -> list[str]:
    out = [s.strip().upper() for s in text.split(",") if s.strip()]
    bad = [s for s in out if not is_canonical(s) and s.count("-") != 2]
    if not out or bad:
        raise typer.BadParameter(f"canonical symbols like BTC-USDT,ETH-USDT expected; got {bad}")
    return out


@app.command()
def live(
    exchange: str = typer.Option(..., help=f"one of {', '.join(sorted(ADAPTERS))}"),
    symbols: str = typer.Option(..., help="canonical symbols, comma separated: BTC-USDT,ETH-USDT"),
    metrics_port: int = typer.Option(9108, help="port of /metrics and /healthz (0: none)"),
    binance_stream: str = typer.Option("trade", help="Binance: 'trade' (raw) or 'aggTrade'"),
    coinbase_api: str = typer.Option("advanced", help="Coinbase: 'advanced' or 'exchange'"),
    ws_url: str = typer.Option(None, help="override the WebSocket base URL (tests, proxies)"),
    rest_url: str = typer.Option(None, help="override the REST base URL used for backfill"),
    max_skew_s: float = typer.Option(
        LIVE_MAX_SKEW_US / 1e6, help="reject trades this far from the clock (0: off)"
    ),
    stale_after_s: float = typer.Option(30.0, help="reconnect after this long without frames"),
) -> None:
    """Stream trades from an exchange into Kafka, filling trade-id gaps over REST.

    \b
    Examples (need network to the exchange):
      candleflow ingest live --exchange binance --symbols BTC-USDT,ETH-USDT
      candleflow ingest live --exchange coinbase --symbols BTC-USD,ETH-USD
      candleflow ingest live --exchange kraken --symbols BTC-USD --metrics-port 9109

    Trades go to trades.v1 (Avro, key exchange:symbol), bad frames to ingest.rejects
    with a reason. Reconnects back off with jitter; missing trade ids are fetched over
    REST; /metrics and /healthz are served on --metrics-port. SIGTERM flushes and exits.

    \b
    Producer settings, from the environment (CANDLEFLOW_INGEST_<NAME>):
      DELIVERY_REPORTS=errors   (default) librdkafka reports failures only
                                (counted, logged); delivered = produced -
                                failed - in flight
      DELIVERY_REPORTS=all      a report per message; adds the histogram
                                candleflow_ingest_produce_latency_seconds
      STATISTICS_INTERVAL_MS    5000 (default; 0: off): per-broker produce
                                latency gauges from librdkafka statistics,
                                candleflow_ingest_kafka_broker_latency_*
      LINGER_MS, COMPRESSION, MAX_IN_FLIGHT, DELIVERY_TIMEOUT_MS
    """
    if exchange not in ADAPTERS:
        raise typer.BadParameter(f"exchange must be one of {sorted(ADAPTERS)}")
    wanted = _symbols(symbols)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    producer = _producer()
    options = ParseOptions(
        symbols=frozenset(wanted), max_skew_us=int(max_skew_s * 1e6) if max_skew_s else None
    )
    settings = LoopSettings(stale_after_s=stale_after_s)
    chunk = binance.MAX_STREAMS_PER_CONNECTION if exchange == "binance" else len(wanted)
    connections = [
        Connection(
            endpoint(
                exchange,
                wanted[i : i + chunk],
                ws_base=ws_url,
                binance_kind=binance_stream,
                coinbase_api=coinbase_api,
            ),
            producer,
            options=options,
            settings=settings,
            rest_base=rest_url,
            fast_lane=fast_lane(exchange, producer),
        )
        for i in range(0, len(wanted), chunk)
    ]
    health = metrics.Health()
    health.add("producer", producer.healthy)
    for n, conn in enumerate(connections):
        health.add(f"{exchange}-{n}", conn.healthy)
    if metrics_port:
        metrics.serve(metrics_port, health)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await asyncio.gather(*(c.run(stop) for c in connections))

    console.print(f"[bold]ingest live[/] {exchange} {','.join(wanted)} -> {producer.trades_topic}")
    asyncio.run(main())
    _close(producer)


@app.command()
def replay(
    files: Annotated[
        list[Path],
        typer.Argument(
            exists=True, dir_okay=False, help="data.binance.vision zip/csv or capture .jsonl[.zst]"
        ),
    ],
    speed: float = typer.Option(0, help="1 = real time, 10 = ten times faster, 0 = max speed"),
    metrics_port: int = typer.Option(0, help="port of /metrics and /healthz (0: none)"),
    topic: str = typer.Option(None, help="trades topic (default: trades.v1)"),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="continue a replay that was stopped or killed: skip each market's trades up to "
        "and including the last one already in the topic (same files, same order)",
    ),
    kind: Annotated[
        FileKind | None,
        typer.Option(help="what the data.binance.vision files hold; default: from the content"),
    ] = None,
    symbol: Annotated[
        str | None,
        typer.Option(help="symbol of the data.binance.vision files; default: the file name's"),
    ] = None,
) -> None:
    """Replay recorded trades into Kafka, keeping their event times.

    \b
    Examples (the recorded real data in ../shared/data/):
      candleflow ingest replay ../shared/data/binance/BTCUSD_PERP-aggTrades-2026-05-08.zip
      candleflow ingest replay ../shared/data/captures/COINBASE.jsonl.zst --speed 10

    FILE: data.binance.vision trades/aggTrades (zip or csv, any variant) or a recorded
    capture (.jsonl or .jsonl.zst). A trade seen twice in one run is produced once.
    Producer settings (CANDLEFLOW_INGEST_*): as for `candleflow ingest live --help`.
    """
    from ingest.replay import replay as run_replay

    logging.basicConfig(level=logging.WARNING)
    producer = _producer(topic)
    resume_after = None
    if resume:
        from ingest.resume import last_trades

        try:
            with _broker_wait(producer) as wait_s:
                resume_after = last_trades(StackSettings(), producer.trades_topic, wait_s)
        except ResumeError as exc:
            console.print(f"[red]cannot resume:[/] {exc}")
            sys.exit(1)
        for (exchange, symbol), trade in sorted(resume_after.items()):
            console.print(f"resuming {exchange}:{symbol} after trade {trade.trade_id}")
    if metrics_port:
        health = metrics.Health()
        health.add("producer", producer.healthy)
        metrics.serve(metrics_port, health)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with Progress(
        TextColumn("[bold]replay"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("trades"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("replay", total=None)
        try:
            result = run_replay(
                list(files),
                producer,
                speed=speed or None,
                stop=stop,
                progress=lambda n: bar.advance(task, n),
                resume_after=resume_after,
                kind=kind.value if kind else None,
                symbol=symbol,
            )
        except ResumeError as exc:
            _close(producer)
            console.print(f"[red]cannot resume:[/] {exc}")
            sys.exit(1)
        except BinanceFileError as exc:
            _close(producer)  # what was produced before the bad file stays delivered
            message, hint = usage_error(exc)
            raise typer.BadParameter(message, param_hint=hint) from None
    _close(producer)
    rate = result.trades / result.seconds if result.seconds else 0
    console.print(
        f"{result.trades} trades produced ({result.duplicates} duplicates skipped, "
        f"{result.rejects} rejects) in {result.seconds:.1f}s ({rate:,.0f}/s)"
        + (f", {result.resumed_past} already in the topic" if resume else "")
        + (" [yellow]stopped early[/]" if result.stopped else "")
    )


def _producer(topic: str | None = None) -> TradeProducer:
    """The producer, after making sure its topics exist (idempotent; the stack creates the
    default ones, a custom --topic / CANDLEFLOW_TOPIC_* is created here)."""
    stack, names = StackSettings(), Topics()
    producer = TradeProducer(stack, names, trades_topic=topic)
    specs = {spec.name: spec for spec in topics.default_topics(names)}
    wanted = [
        specs.get(name) or topics.TopicSpec(name, partitions=3)
        for name in (producer.trades_topic, producer.rejects_topic)
    ]
    with _broker_wait(producer) as wait_s:
        topics.ensure_topics(topics.admin(stack.bootstrap_servers), wanted, timeout=wait_s)
    return producer


@contextmanager
def _broker_wait(producer: TradeProducer) -> Iterator[float]:
    """Startup calls to Kafka wait for the broker as long as a produced trade would
    (CANDLEFLOW_INGEST_DELIVERY_TIMEOUT_MS): a broker that is restarting when ingest starts
    (or restarts) is waited for, as it is mid-run, not a crash 30 s later. Past that, a clear
    error and exit 1, never a traceback."""
    wait_s = producer.settings.delivery_timeout_ms / 1000
    try:
        yield wait_s
    except KafkaException as exc:
        console.print(
            f"[red]Kafka unreachable:[/] {StackSettings().bootstrap_servers} did not answer "
            f"within {wait_s:g} s (CANDLEFLOW_INGEST_DELIVERY_TIMEOUT_MS): {exc.args[0]}"
        )
        sys.exit(1)


def _close(producer: TradeProducer) -> None:
    try:
        producer.close(timeout=60)
    except DeliveryError as exc:
        console.print(f"[red]not all messages were delivered:[/] {exc}")
        sys.exit(1)
    console.print(f"{producer.delivered} messages acknowledged by Kafka")
