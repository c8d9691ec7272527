"""Candles job throughput on the local stack, with its ceiling in the same run.

1. Produce N real trades (the COIN-M day, repeated on following days with shifted ids) to
   a fresh topic.
2. Ceiling: a Flink job reading that topic (same Avro/registry source) into a blackhole.
3. The candles job with exactly-once Kafka sinks (+ Iceberg silver/bronze unless
   --no-iceberg), bounded over the same topic.
Both Flink runs are timed end to end (start-up included, as in ARCHITECTURE.md's table), so
trades/s here is a lower bound of the sustained rate.

Run: .venv/bin/python -m bench.candles.bench --trades 500000 [--parallelism 2]
(needs the test stack: Kafka + registry, e.g. from `pytest -m integration` or stack up).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from confluent_kafka import Producer

from candleflow import avro, binance_files, catalog, topics
from candleflow.config import CandleSettings, StackSettings
from candleflow.testing import stack_test_settings, unique_name
from jobs.candle_iceberg import ensure_tables
from jobs.candle_tables import TRADE_COLUMNS, IcebergSink, KafkaSink, KafkaSource, Sinks
from jobs.candles import CandleJobConfig, build
from jobs.flink_env import make_table_env

DAY = (
    Path(__file__).resolve().parents[2]
    / ".."
    / "shared"
    / "data"
    / "binance"
    / "BTCUSD_PERP-aggTrades-2026-05-08.zip"
)
DAY_US = 86_400 * 1_000_000


def produce(s: StackSettings, topic: str, n: int) -> None:
    day = list(binance_files.read_trades(DAY))
    ser = avro.serializer(avro.registry_client(s), "trade")
    p = Producer(
        {
            "bootstrap.servers": s.bootstrap_servers,
            "linger.ms": 50,
            "enable.idempotence": True,
            "compression.type": "lz4",
        }
    )
    ctx = avro.value_context(topic)
    sent = k = 0
    while sent < n:
        shift, id_shift = k * DAY_US, k * 10_000_000
        for t in day:
            if sent >= n:
                break
            t2 = dataclasses.replace(
                t,
                event_time_us=t.event_time_us + shift,
                ingest_time_us=t.ingest_time_us + shift,
                trade_id=t.trade_id + id_shift,
            )
            p.produce(topic, key=t2.key.encode(), value=ser(t2, ctx))
            p.poll(0)
            sent += 1
        k += 1
    assert p.flush(120) == 0


def run_ceiling(s: StackSettings, topic: str, parallelism: int) -> float:
    t_env = make_table_env(
        parallelism=parallelism, connectors=True, stack=s, checkpoint_interval_ms=None
    )
    src = KafkaSource(
        topic,
        s.bootstrap_servers,
        s.registry_url,
        startup_mode="earliest-offset",
        bounded=True,
        group_id=unique_name("b"),
    )
    t_env.execute_sql(src.ddl("trades_src"))
    t_env.execute_sql(
        "CREATE TEMPORARY TABLE sink_bh WITH ('connector' = 'blackhole') "
        "LIKE trades_src (EXCLUDING ALL)"
    )
    started = time.monotonic()
    cols = ", ".join(f"`{n}`" for n, _ in TRADE_COLUMNS)
    t_env.execute_sql(f"INSERT INTO sink_bh SELECT {cols} FROM trades_src").wait()
    return time.monotonic() - started


def run_job(
    s: StackSettings, topic: str, parallelism: int, iceberg: bool, checkpoint_ms: int
) -> float:
    out_c, out_l = unique_name("bench-candles"), unique_name("bench-late")
    topics.ensure_topics(
        topics.admin(s.bootstrap_servers), [topics.TopicSpec(out_c), topics.TopicSpec(out_l)]
    )
    sinks = Sinks(
        candles=[KafkaSink(out_c, "candle", s.bootstrap_servers, s.registry_url, f"{out_c}-tx")],
        late=[KafkaSink(out_l, "late_trade", s.bootstrap_servers, s.registry_url, f"{out_l}-tx")],
    )
    ddl = []
    if iceberg:
        ns = unique_name("bench", sep="_")
        ensure_tables(s, bronze=ns, silver=ns)
        ddl = [catalog.flink_catalog_ddl(s)]
        sinks.candles.append(IcebergSink(s.catalog_name, ns, "candles"))
        sinks.trades.append(IcebergSink(s.catalog_name, ns, "trades"))
    config = CandleJobConfig(
        source=KafkaSource(
            topic,
            s.bootstrap_servers,
            s.registry_url,
            startup_mode="earliest-offset",
            bounded=True,
            group_id=unique_name("b"),
        ),
        sinks=sinks,
        candles=CandleSettings(),
        catalog_ddl=ddl,
    )
    t_env = make_table_env(
        parallelism=parallelism, connectors=True, stack=s, checkpoint_interval_ms=checkpoint_ms
    )
    stmts = build(t_env, config)
    started = time.monotonic()
    stmts.execute().wait()
    return time.monotonic() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trades", type=int, default=500_000)
    ap.add_argument("--parallelism", type=int, default=2)
    ap.add_argument("--checkpoint-ms", type=int, default=5000)
    ap.add_argument("--no-iceberg", action="store_true")
    ap.add_argument("--topic", help="reuse a topic already holding --trades trades")
    args = ap.parse_args()
    s = stack_test_settings()
    topic = args.topic or unique_name("bench-trades")
    if not args.topic:
        topics.ensure_topics(topics.admin(s.bootstrap_servers), [topics.TopicSpec(topic)])
        t = time.monotonic()
        produce(s, topic, args.trades)
        print(
            f"produced {args.trades} trades in {time.monotonic() - t:.1f}s to {topic}", flush=True
        )
    ceiling = run_ceiling(s, topic, args.parallelism)
    print(
        f"ceiling (Kafka -> blackhole, p={args.parallelism}): {ceiling:.1f}s = "
        f"{args.trades / ceiling:,.0f} trades/s"
    )
    job = run_job(s, topic, args.parallelism, not args.no_iceberg, args.checkpoint_ms)
    sinks = "Kafka EOS" + ("" if args.no_iceberg else " + Iceberg")
    print(
        f"candles job (Kafka -> PTF -> {sinks}, p={args.parallelism}, "
        f"checkpoint {args.checkpoint_ms} ms): {job:.1f}s = {args.trades / job:,.0f} trades/s"
    )


if __name__ == "__main__":
    main()
