"""Run the real candles job (MiniCluster, bounded files) and read its outputs back as domain
records, so tests compare them with candleflow.reference field by field."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from candleflow.config import CandleSettings, StackSettings, Topics
from candleflow.domain import Candle, LateTrade, Trade
from jobs.candle_files import read_rows, to_candle, to_late, to_trade, write_trades_csv
from jobs.candle_tables import FileSink, FileSource, Sinks
from jobs.candles import CandleJobConfig, CandleJobSettings, production_config, run
from jobs.flink_env import make_table_env


@dataclass
class JobOutput:
    candles: list[Candle]  # in file order (per subtask: emission order)
    late: list[LateTrade]
    trades: list[Trade]

    def final(self) -> dict[tuple[str, str, str, int], Candle]:
        out: dict[tuple[str, str, str, int], Candle] = {}
        for c in self.candles:
            key = (c.exchange, c.symbol, c.interval, c.window_start_us)
            if key not in out or out[key].revision < c.revision:
                out[key] = c
        return out


def run_job(
    trades: Sequence[Trade],
    settings: CandleSettings,
    *,
    parallelism: int = 1,
    emit_trades: bool = True,
    workdir: Path | None = None,
) -> JobOutput:
    """Trades in arrival order through the real job; returns everything it emitted."""
    base = Path(workdir or tempfile.mkdtemp(prefix="candles-job-"))
    src = base / "trades.csv"
    write_trades_csv(trades, src)
    out_c, out_l, out_t = base / "candles", base / "late", base / "trades"
    config = CandleJobConfig(
        source=FileSource(src),
        sinks=Sinks(
            candles=[FileSink(out_c)],
            late=[FileSink(out_l)],
            trades=[FileSink(out_t)] if emit_trades else [],
        ),
        candles=settings,
    )
    t_env = make_table_env(parallelism=parallelism, checkpoint_interval_ms=200)
    run(t_env, config).wait()
    return JobOutput(
        candles=[to_candle(r) for r in read_rows(out_c)],
        late=[to_late(r) for r in read_rows(out_l)],
        trades=[to_trade(r) for r in read_rows(out_t)] if emit_trades else [],
    )


def job_config_for(
    stack: StackSettings,
    trades_topic: str,
    candles_topic: str,
    late_topic: str,
    namespace: str,
    settings: CandleSettings,
    *,
    bounded: bool = True,
) -> CandleJobConfig:
    """The production wiring (jobs.candles.production_config) on a test's own topics and
    Iceberg namespace, read from the earliest offset."""
    return production_config(
        stack,
        Topics(trades=trades_topic, candles=candles_topic, late_trades=late_topic),
        settings,
        CandleJobSettings(
            startup_mode="earliest-offset",
            group_id=f"{trades_topic}-job",
            transactional_id_prefix=candles_topic,
        ),
        bronze=namespace,
        silver=namespace,
        bounded=bounded,
    )
