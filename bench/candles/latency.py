"""Latency probe: window close + grace → final candle visible to a read_committed consumer.

Trades are produced live, stamped with the wall clock as their event time, for several
markets at a steady rate, while the candles job (exactly-once Kafka sinks committed on
checkpoints, optional Iceberg) runs in-process. A read_committed consumer of the candles
topic notes when each first revision (revision 0) of a window with trades becomes visible.
A window of interval I closes on its market's clock at end + grace(I) (docs/semantics.md);
after that the candle waits for the next checkpoint to commit its Kafka transaction, so the
expected bound is grace + checkpoint interval + a little.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field, replace
from statistics import median

from confluent_kafka import Consumer, Producer

from adapters import avro, topics
from bench.candles.data import market_names, production_sinks
from candleflow import binance_files
from candleflow.config import CandleSettings, StackSettings
from candleflow.domain import Candle
from candleflow.intervals import parse_intervals
from devstack.sample_data import COINM_DAY
from devstack.testing import unique_name
from jobs.candle_tables import KafkaSource
from jobs.candles import CandleJobConfig, run
from jobs.flink_env import make_table_env


def now_us() -> int:
    return time.time_ns() // 1000


@dataclass
class LatencyResult:
    intervals: dict[str, list[float]] = field(default_factory=dict)  # seconds after end+grace
    missing: dict[str, int] = field(default_factory=dict)
    trades: int = 0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _produce_live(
    s: StackSettings, topic: str, markets: int, rate: int, seconds: float, stop: threading.Event
) -> tuple[int, int]:
    """Real COIN-M trades re-stamped with the wall clock, spread over `markets` markets.

    Returns (trades produced, event time of the last one)."""
    day = list(itertools.islice(binance_files.read_trades(COINM_DAY), 20_000))
    ser = avro.serializer(avro.registry_client(s), "trade")
    ctx = avro.value_context(topic)
    p = Producer(
        {"bootstrap.servers": s.bootstrap_servers, "linger.ms": 5, "enable.idempotence": True}
    )
    names = market_names(markets)
    ids = [0] * markets
    sent, last_us, tick = 0, 0, 0.01
    started = time.monotonic()
    source = itertools.cycle(day)
    while not stop.is_set() and time.monotonic() - started < seconds:
        due = int((time.monotonic() - started) * rate)
        while sent < due:
            m = sent % markets
            ids[m] += 1
            last_us = now_us()
            t = replace(
                next(source),
                symbol=names[m][0],
                native_symbol=names[m][1],
                trade_id=ids[m],
                first_trade_id=ids[m],
                last_trade_id=ids[m],
                event_time_us=last_us,
                ingest_time_us=last_us,
            )
            p.produce(topic, key=t.key.encode(), value=ser(t, ctx))
            sent += 1
        p.poll(0)
        time.sleep(tick)
    assert p.flush(60) == 0, "trades not delivered"
    return sent, last_us


def _consume(s: StackSettings, topic: str, seen: dict, stop: threading.Event) -> None:
    des = avro.deserializer(avro.registry_client(s), "candle")
    ctx = avro.value_context(topic)
    c = Consumer(
        {
            "bootstrap.servers": s.bootstrap_servers,
            "group.id": unique_name("lat"),
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    c.subscribe([topic])
    try:
        while not stop.is_set():
            msg = c.poll(0.05)
            if msg is None or msg.error():
                continue
            received = now_us()
            candle: Candle = des(msg.value(), ctx)
            key = (candle.symbol, candle.interval, candle.window_start_us)
            if candle.revision == 0 and not candle.is_empty and key not in seen:
                seen[key] = received
    finally:
        c.close()


def run_latency(
    s: StackSettings,
    *,
    markets: int = 16,
    rate: int = 2000,
    seconds: float = 200,
    checkpoint_ms: int = 5000,
    parallelism: int = 2,
    iceberg: bool = True,
    settings: CandleSettings | None = None,
) -> LatencyResult:
    settings = settings or CandleSettings()
    trades_t = unique_name("lat-trades")
    topics.ensure_topics(
        topics.admin(s.bootstrap_servers), [topics.TopicSpec(trades_t, partitions=2)]
    )
    sinks, ddl = production_sinks(s, "lat", iceberg)
    config = CandleJobConfig(
        source=KafkaSource(
            trades_t,
            s.bootstrap_servers,
            s.registry_url,
            startup_mode="earliest-offset",
            group_id=unique_name("lat"),
        ),
        sinks=sinks,
        candles=settings,
        catalog_ddl=ddl,
    )
    t_env = make_table_env(
        parallelism=parallelism, connectors=True, stack=s, checkpoint_interval_ms=checkpoint_ms
    )
    job = run(t_env, config)
    client = job.get_job_client()
    seen: dict[tuple[str, str, int], int] = {}
    stop = threading.Event()
    candles_topic = sinks.candles[0].topic  # the exactly-once Kafka sink
    consumer = threading.Thread(target=_consume, args=(s, candles_topic, seen, stop), daemon=True)
    consumer.start()
    result = LatencyResult()
    try:
        time.sleep(5)  # let the job reach its first checkpoint before the clock matters
        result.trades, last_us = _produce_live(s, trades_t, markets, rate, seconds, stop)
        # Every window whose end + grace the market clocks passed must become visible.
        time.sleep(checkpoint_ms / 1000 + 5)
        for iv in parse_intervals(settings.intervals):
            grace = settings.grace_us(iv.name)
            lat, missing = [], 0
            first = None
            for (_sym, name, start), _ in seen.items():
                if name == iv.name:
                    first = start if first is None else min(first, start)
            if first is None:
                continue
            # Windows after the first observed one that closed before the last trade.
            for sym, _native in market_names(markets):
                start = first
                while start + iv.micros + grace <= last_us:
                    at = seen.get((sym, iv.name, start))
                    if at is None:
                        missing += 1
                    else:
                        lat.append((at - (start + iv.micros + grace)) / 1e6)
                    start += iv.micros
            result.intervals[iv.name] = lat
            result.missing[iv.name] = missing
    finally:
        stop.set()
        consumer.join(10)
        if client is not None:
            client.cancel()
    return result


def describe(r: LatencyResult, settings: CandleSettings, checkpoint_ms: int) -> list[str]:
    """One line per interval; the target reads p99 (from window end) <= grace + checkpoint + 1 s."""
    lines = []
    for name, lat in r.intervals.items():
        if not lat:
            continue
        grace = settings.grace_us(name) / 1e6
        p50, p99 = median(lat), percentile(lat, 0.99)
        bound = grace + checkpoint_ms / 1000 + 1
        verdict = "met" if p99 + grace <= bound and not r.missing[name] else "NOT met"
        lines.append(
            f"latency {name} ({len(lat)} windows, {r.missing[name]} missing): after close + "
            f"grace ({grace:g} s) p50 {p50:.2f} s, p99 {p99:.2f} s, max {max(lat):.2f} s; "
            f"from window end p99 {p99 + grace:.2f} s vs target {bound:g} s: {verdict}"
        )
    return lines
