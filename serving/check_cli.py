"""`candleflow check`: the invariants of the published candles over a time range."""

from __future__ import annotations

import threading
import time

import typer

from serving.client_cli import parse_time

_EPILOG = """\
Invariants (each violation is printed with its market and window):

  ohlc            low <= open <= high and low <= close <= high
  vwap            low <= vwap <= high (non-empty candles)
  trade_count     trade_count = last_trade_id - first_trade_id + 1 (gap-free exchanges)
  missing_window  a candle for every window from a market's first to its last (idle: empty)
  volume          volume, taker_buy_volume, trade_count equal the sums of bronze.trades
  revision        no revision n without revision n-1 (from candles.v1, read_committed)

Exit code: 0 no violation, 1 violations, 2 bad arguments or an unreadable table/topic.

Examples:

  candleflow check --last 2h                      # settled windows of the last two hours
  candleflow check --start 2026-05-08T00:00 --end 2026-05-08T06:00 --via trino
  candleflow check --last 1h --no-revisions --candles-table silver.candles
  candleflow check --every 60 --last 2h            # long-running: /metrics, /healthz
"""


def _duration_us(text: str) -> int:
    from candleflow.intervals import Interval

    try:
        return Interval.parse(text).micros
    except ValueError:
        raise typer.BadParameter(f"{text!r}: a duration such as 90s, 15m, 2h or 1d") from None


def check_command(
    start: str = typer.Option("", help="first instant checked (ISO-8601, UTC if no zone; or µs)"),
    end: str = typer.Option(
        "", help="end of the range, exclusive (default: now minus the settle delay)"
    ),
    last: str = typer.Option("", help="instead of --start: this long before --end (e.g. 2h)"),
    via: str = typer.Option(None, help="trino (CANDLEFLOW_SERVING_TRINO_*) or embedded"),
    intervals: str = typer.Option(
        None, help="intervals checked (default CANDLEFLOW_CANDLES_INTERVALS)"
    ),
    candles_table: str = typer.Option(None, help="the candles table [silver.candles]"),
    trades_table: str = typer.Option(None, help="the trades table [bronze.trades]"),
    candles_topic: str = typer.Option(None, help="the candles topic [CANDLEFLOW_TOPIC_CANDLES]"),
    revisions: bool = typer.Option(
        None, "--revisions/--no-revisions", help="check revisions on the candles topic [on]"
    ),
    gap_free: str = typer.Option(
        None, help="exchanges whose trade ids have no holes [binance,coinbase,kraken]"
    ),
    every: float = typer.Option(
        0, help="run for ever, every this many seconds, over --last (metrics, no exit)"
    ),
    metrics_port: int = typer.Option(None, help="with --every: port of /metrics and /healthz"),
) -> None:
    """Check the invariants of the candles in the lakehouse over a time range.

    Reads silver.candles and bronze.trades (through Trino, or embedded: PyIceberg + DuckDB
    on the local catalog) and candles.v1, checks every window of every interval that lies
    wholly inside the range, prints each violation and exits 1 if there is any.
    """
    from candleflow.config import CandleSettings, StackSettings, Topics
    from candleflow.intervals import parse_intervals
    from serving.check.lake import LakeError, make_lake
    from serving.check.revisions import RevisionLog, RevisionLogError
    from serving.check.runner import run_check, settle_us
    from serving.check.settings import CheckSettings

    overrides = {
        k: v
        for k, v in {
            "via": via,
            "candles_table": candles_table,
            "trades_table": trades_table,
            "revisions": revisions,
            "gap_free_exchanges": gap_free,
            "metrics_port": metrics_port,
        }.items()
        if v is not None
    }
    if every:
        overrides["every_seconds"] = every
    settings = CheckSettings(**overrides)  # type: ignore[arg-type]
    candle_settings = CandleSettings()
    try:
        ivs = parse_intervals(intervals or candle_settings.intervals)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--intervals") from None
    if start and last:
        raise typer.BadParameter("--start or --last, not both")
    if every and start:
        raise typer.BadParameter("--every checks a sliding range: give --last, not --start")
    lookback_us = _duration_us(last) if last else None
    settle = settle_us(candle_settings)
    stack = StackSettings()
    lake = make_lake(settings.via, stack, settings.candles_table, settings.trades_table)
    log = RevisionLog(stack, candles_topic or Topics().candles) if settings.revisions else None

    def bounds() -> tuple[int, int]:
        end_us = parse_time(end) if end else time.time_ns() // 1000 - settle
        if lookback_us is not None:
            return end_us - lookback_us, end_us
        if start:
            return parse_time(start), end_us
        if every:
            return end_us - int(settings.lookback_seconds * 1_000_000), end_us
        raise typer.BadParameter("give the range: --start (and --end) or --last")

    if every:
        from explainer.service import HealthServer, configure_logging
        from serving.check.service import CheckMetrics, run_forever, stop_on_signals
        from serving.check.service import log as service_log

        configure_logging("INFO")
        metrics = CheckMetrics()
        period = settings.every_seconds
        server = (
            HealthServer(settings.metrics_port, metrics, max(3 * period, 300.0)).start()
            if settings.metrics_port
            else None
        )
        stop = threading.Event()
        stop_on_signals(stop)

        def once() -> object:
            lo, hi = bounds()
            report = run_check(
                lake, lo, hi, ivs, log, settings.gap_free, settings.catch_up_timeout_seconds
            )
            if log is not None:
                log.forget_before(lo - max(iv.micros for iv in ivs))
            return report

        service_log.info("started", via=settings.via, every_s=period, port=server and server.port)
        try:
            run_forever(once, period, metrics, server, stop)  # type: ignore[arg-type]
        finally:
            if log is not None:
                log.close()
            if server is not None:
                server.stop()
        return

    lo, hi = bounds()
    if hi <= lo:
        raise typer.BadParameter(f"the range is empty: start {lo} >= end {hi} (µs)")
    from confluent_kafka import KafkaException
    from trino.exceptions import Error as TrinoError

    try:
        report = run_check(lake, lo, hi, ivs, log, settings.gap_free)
    except (LakeError, RevisionLogError, TrinoError, KafkaException, OSError) as exc:
        # An unreadable table or topic, an unreachable Trino or broker: the user's to fix.
        typer.echo(f"error: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        if log is not None:
            log.close()
    for v in report.violations:
        typer.echo(v.line())
    from serving.check.invariants import by_invariant, us_to_iso

    checked = ", ".join(
        f"{s.interval.name} {us_to_iso(s.start_us)}..{us_to_iso(s.end_us)}" for s in report.spans
    )
    counts = ", ".join(f"{k} {n}" for k, n in by_invariant(report.violations))
    revs = (
        "revisions not checked"
        if report.revision_windows is None
        else f"revisions of {report.revision_windows} windows"
    )
    typer.echo(
        f"checked {report.candles} candles, {report.trade_windows} windows with trades, "
        f"{revs} ({checked or 'no whole window in the range'}); "
        f"violations: {len(report.violations)} ({counts})",
        err=True,
    )
    if not report.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("check", epilog=_EPILOG)(check_command)
