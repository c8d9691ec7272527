"""Run the real candles and bronze jobs (MiniCluster, bounded files) and read their outputs
back as domain records, so tests compare them with candleflow.reference field by field."""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pyflink.table import TableEnvironment

from adapters import catalog
from candleflow.config import CandleSettings, StackSettings, Topics
from candleflow.domain import Candle, InstrumentKind, LateTrade, Side, Trade
from jobs import bronze
from jobs.candle_files import read_rows, to_candle, to_late, to_trade, write_trades_csv
from jobs.candle_tables import FileSink, FileSource, Sinks
from jobs.candles import CandleJobConfig, CandleJobSettings, production_config, run
from jobs.flink_env import make_table_env


@dataclass
class JobOutput:
    candles: list[Candle]  # in file order (per subtask: emission order)
    late: list[LateTrade]

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
    workdir: Path | None = None,
) -> JobOutput:
    """Trades in arrival order through the real job; returns everything it emitted."""
    base = Path(workdir or tempfile.mkdtemp(prefix="candles-job-"))
    src = base / "trades.csv"
    write_trades_csv(trades, src)
    out_c, out_l = base / "candles", base / "late"
    config = CandleJobConfig(
        source=FileSource(src),
        sinks=Sinks(candles=[FileSink(out_c)], late=[FileSink(out_l)]),
        candles=settings,
    )
    t_env = make_table_env(parallelism=parallelism, checkpoint_interval_ms=200)
    run(t_env, config).wait()
    return JobOutput(
        candles=[to_candle(r) for r in read_rows(out_c)],
        late=[to_late(r) for r in read_rows(out_l)],
    )


def run_bronze(
    trades: Sequence[Trade],
    *,
    dedup_ttl_s: float = 86400,
    parallelism: int = 1,
    workdir: Path | None = None,
) -> list[Trade]:
    """Trades in arrival order through the real bronze job; returns what it landed."""
    base = Path(workdir or tempfile.mkdtemp(prefix="bronze-job-"))
    src, out = base / "bronze-in.csv", base / "bronze"
    write_trades_csv(trades, src)
    config = bronze.BronzeJobConfig(
        source=FileSource(src), sink=FileSink(out), dedup_ttl_s=dedup_ttl_s
    )
    t_env = make_table_env(parallelism=parallelism, checkpoint_interval_ms=200)
    bronze.run(t_env, config).wait()
    return [to_trade(r) for r in read_rows(out)]


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
        silver=namespace,
        bounded=bounded,
    )


def bronze_config_for(
    stack: StackSettings, trades_topic: str, namespace: str, *, bounded: bool = True
) -> bronze.BronzeJobConfig:
    """The bronze job's production wiring (jobs.bronze.production_config) on a test's own
    topic and Iceberg namespace, read from the earliest offset."""
    return bronze.production_config(
        stack,
        Topics(trades=trades_topic),
        bronze.BronzeJobSettings(startup_mode="earliest-offset", group_id=f"{trades_topic}-bronze"),
        namespace=namespace,
        bounded=bounded,
    )


def stack_table_env(
    stack: StackSettings,
    checkpoints: Path | str,
    *,
    parallelism: int = 1,
    checkpoint_interval_ms: int = 2000,
    extra: dict[str, str] | None = None,
) -> TableEnvironment:
    """An in-process table environment with the connectors, on the test stack, checkpointing
    into `checkpoints` (a directory, or a URI as is)."""
    return make_table_env(
        parallelism=parallelism,
        checkpoint_interval_ms=checkpoint_interval_ms,
        connectors=True,
        stack=stack,
        checkpoint_dir=checkpoints.as_uri() if isinstance(checkpoints, Path) else checkpoints,
        extra=extra,
    )


def run_candles_on_stack(
    stack: StackSettings,
    topics: tuple[str, str, str],
    namespace: str,
    settings: CandleSettings,
    checkpoints: Path,
    *,
    parallelism: int = 1,
    checkpoint_interval_ms: int = 2000,
) -> None:
    """The candles job, production wiring (job_config_for), bounded: reads (trades, candles,
    late) topics' trades to the end, writes the candle and late topics and
    `<namespace>.candles`, and returns when it is done."""
    config = job_config_for(stack, *topics, namespace, settings)
    env = stack_table_env(
        stack, checkpoints, parallelism=parallelism, checkpoint_interval_ms=checkpoint_interval_ms
    )
    run(env, config).wait()


def run_bronze_on_stack(
    stack: StackSettings,
    trades_topic: str,
    namespace: str,
    checkpoints: Path,
    *,
    parallelism: int = 1,
    checkpoint_interval_ms: int = 2000,
) -> None:
    """The bronze job, production wiring (bronze_config_for), bounded: every trade of
    `trades_topic` into `<namespace>.trades`; returns when it is done."""
    env = stack_table_env(
        stack, checkpoints, parallelism=parallelism, checkpoint_interval_ms=checkpoint_interval_ms
    )
    bronze.run(env, bronze_config_for(stack, trades_topic, namespace)).wait()


def iceberg_trades(stack: StackSettings, namespace: str) -> list[Trade]:
    """`<namespace>.trades` (PyIceberg, every column) as domain trades, in file order."""
    table = catalog.catalog(stack).load_table(f"{namespace}.trades")
    return [_trade(r) for r in table.scan().to_arrow().to_pylist()]


def _us(ts: dt.datetime) -> int:
    return int(ts.replace(tzinfo=dt.UTC).timestamp()) * 1_000_000 + ts.microsecond


def _trade(r: dict) -> Trade:
    return Trade(
        r["exchange"],
        r["symbol"],
        r["native_symbol"],
        r["trade_id"],
        r["price"],
        r["quantity"],
        Side(r["side"]),
        _us(r["event_time"]),
        _us(r["ingest_time"]),
        r["first_trade_id"],
        r["last_trade_id"],
        InstrumentKind(r["kind"]),
        r["contract_size"],
        r.get("sequence"),  # Trade v2; absent from a table made before it
    )
