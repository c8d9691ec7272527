"""Run the real anomalies job on a MiniCluster over a bounded CSV of candles."""

from __future__ import annotations

import csv
import tempfile
from dataclasses import replace
from pathlib import Path

from candleflow.anomaly_rules import DetectorConfig
from candleflow.domain import Anomaly, Candle
from jobs.anomalies import (
    AnomalyJobConfig,
    FileAnomalies,
    FileCandles,
    build,
    make_stream_table_env,
)
from jobs.candle_files import parse_ts, read_rows, ts_text
from jobs.operator_uids import execute


def write_candles_csv(candles: list[Candle], path: Path) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        for c in candles:
            w.writerow(
                [
                    c.exchange,
                    c.symbol,
                    c.interval,
                    ts_text(c.window_start_us),
                    ts_text(c.window_end_us),
                    f"{c.open:f}",
                    f"{c.high:f}",
                    f"{c.low:f}",
                    f"{c.close:f}",
                    f"{c.volume:f}",
                    f"{c.quote_volume:f}",
                    c.trade_count,
                    f"{c.taker_buy_volume:f}",
                    f"{c.taker_buy_quote_volume:f}",
                    "" if c.vwap is None else f"{c.vwap:f}",
                    "" if c.first_trade_id is None else c.first_trade_id,
                    "" if c.last_trade_id is None else c.last_trade_id,
                    c.revision,
                    "true" if c.is_empty else "false",
                ]
            )


def to_anomaly(r: dict) -> Anomaly:
    return Anomaly(
        anomaly_id=r["anomaly_id"],
        rule=r["rule"],
        severity=r["severity"],
        exchange=r["exchange"],
        symbol=r["symbol"],
        interval=r["interval"],
        window_start_us=parse_ts(r["window_start"]),
        window_end_us=parse_ts(r["window_end"]),
        value=float(r["value"]),
        threshold=float(r["threshold"]),
        status=r["status"],
        candle_revision=int(r["candle_revision"]),
        details=dict(r["details"]),
    )


def run_job(
    candles: list[Candle], *, parallelism: int = 1, detector: DetectorConfig | None = None
) -> list[Anomaly]:
    with tempfile.TemporaryDirectory(prefix="anomalies-job-") as tmp:
        src, out = Path(tmp) / "candles.csv", Path(tmp) / "out"
        write_candles_csv(candles, src)
        t_env = make_stream_table_env(
            parallelism=parallelism, checkpoint_interval_ms=None, connectors=False
        )
        config = AnomalyJobConfig(
            source=FileCandles(src),
            sinks=[FileAnomalies(out)],
            detector=detector or DetectorConfig(),
        )
        execute(t_env, build(t_env, config)).wait()
        return [to_anomaly(r) for r in read_rows(out)]


def normalise(a: Anomaly) -> Anomaly:
    """JSON round trip turns floats like 7.0 into Decimal: compare on floats."""
    return replace(a, value=float(a.value), threshold=float(a.threshold))
