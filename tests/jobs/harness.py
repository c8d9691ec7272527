"""Run the real candles job (MiniCluster, bounded files) and read its outputs back as domain
records, so tests compare them with candleflow.reference field by field."""

from __future__ import annotations

import csv
import json
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from candleflow.config import CandleSettings
from candleflow.domain import Candle, InstrumentKind, LateTrade, Side, Trade
from jobs.candle_tables import FileSink, FileSource, Sinks
from jobs.candles import CandleJobConfig, build
from jobs.flink_env import make_table_env

_EPOCH_FMT = "%Y-%m-%d %H:%M:%S"


def ts_text(us: int) -> str:
    """TIMESTAMP(6) literal for the CSV source (UTC)."""
    import datetime as dt

    t = dt.datetime.fromtimestamp(us // 1_000_000, tz=dt.UTC)
    return f"{t.strftime(_EPOCH_FMT)}.{us % 1_000_000:06d}"


def parse_ts(text: str) -> int:
    """ISO-8601 TIMESTAMP from Flink's JSON format -> epoch µs (UTC)."""
    import datetime as dt

    text = text.replace("T", " ").rstrip("Z")
    whole, _, frac = text.partition(".")
    base = dt.datetime.strptime(whole, _EPOCH_FMT).replace(tzinfo=dt.UTC)
    return int(base.timestamp()) * 1_000_000 + int((frac + "000000")[:6])


def write_trades_csv(trades: Iterable[Trade], path: Path) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        for t in trades:
            w.writerow([
                t.exchange, t.symbol, t.native_symbol, t.trade_id, f"{t.price:f}",
                f"{t.quantity:f}", t.side.value, ts_text(t.event_time_us),
                ts_text(t.ingest_time_us),
                "" if t.first_trade_id is None else t.first_trade_id,
                "" if t.last_trade_id is None else t.last_trade_id, t.kind.value,
                "" if t.contract_size is None else f"{t.contract_size:f}",
            ])


def _rows(directory: Path) -> list[dict]:
    out = []
    for f in sorted(directory.rglob("*")):
        if f.is_file() and not f.name.startswith("."):
            for line in f.read_text().splitlines():
                if line.strip():
                    out.append(json.loads(line, parse_float=Decimal, parse_int=int))
    return out


def _dec(v) -> Decimal | None:
    return None if v is None else Decimal(str(v))


def to_candle(r: dict) -> Candle:
    return Candle(
        r["exchange"], r["symbol"], r["interval"], parse_ts(r["window_start"]),
        parse_ts(r["window_end"]), _dec(r["open"]), _dec(r["high"]), _dec(r["low"]),
        _dec(r["close"]), _dec(r["volume"]), _dec(r["quote_volume"]), int(r["trade_count"]),
        _dec(r["taker_buy_volume"]), _dec(r["taker_buy_quote_volume"]), _dec(r["vwap"]),
        r["first_trade_id"], r["last_trade_id"], int(r["revision"]), bool(r["is_empty"]),
    )


def to_trade(r: dict) -> Trade:
    return Trade(
        r["exchange"], r["symbol"], r["native_symbol"], int(r["trade_id"]), _dec(r["price"]),
        _dec(r["quantity"]), Side(r["side"]), parse_ts(r["event_time"]),
        parse_ts(r["ingest_time"]), r["first_trade_id"], r["last_trade_id"],
        InstrumentKind(r["kind"]), _dec(r["contract_size"]),
    )


def to_late(r: dict) -> LateTrade:
    return LateTrade(to_trade(r), r["interval"], parse_ts(r["window_start"]), r["reason"],
                     parse_ts(r["watermark"]))


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


def run_job(trades: Sequence[Trade], settings: CandleSettings, *, parallelism: int = 1,
            emit_trades: bool = True, workdir: Path | None = None) -> JobOutput:
    """Trades in arrival order through the real job; returns everything it emitted."""
    base = Path(workdir or tempfile.mkdtemp(prefix="candles-job-"))
    src = base / "trades.csv"
    write_trades_csv(trades, src)
    out_c, out_l, out_t = base / "candles", base / "late", base / "trades"
    config = CandleJobConfig(
        source=FileSource(src),
        sinks=Sinks(candles=[FileSink(out_c)], late=[FileSink(out_l)],
                    trades=[FileSink(out_t)] if emit_trades else []),
        candles=settings,
    )
    t_env = make_table_env(parallelism=parallelism, checkpoint_interval_ms=200)
    build(t_env, config).execute().wait()
    return JobOutput(
        candles=[to_candle(r) for r in _rows(out_c)],
        late=[to_late(r) for r in _rows(out_l)],
        trades=[to_trade(r) for r in _rows(out_t)] if emit_trades else [],
    )
