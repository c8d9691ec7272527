"""The bench's input: real COIN-M aggregate trades, repeated on following days."""

from __future__ import annotations

import dataclasses

from confluent_kafka import Producer

from adapters import avro, catalog, topics
from candleflow import binance_files
from candleflow.config import StackSettings
from devstack.sample_data import COINM_DAY
from devstack.testing import unique_name
from ingest.avro_trade import TradeEncoder
from jobs.candle_iceberg import ensure_bronze_table, ensure_silver_table
from jobs.candle_tables import IcebergSink, KafkaSink, Sinks

DAY_US = 86_400 * 1_000_000


def market_names(markets: int) -> list[tuple[str, str]]:
    """(canonical, native) names of `markets` markets: the day's own first, then copies."""
    return [("BTC-USD-PERP", "BTCUSD_PERP")] + [
        (f"BTC{m}-USD-PERP", f"BTC{m}USD_PERP") for m in range(1, markets)
    ]


def produce(s: StackSettings, topic: str, n: int, markets: int = 1) -> None:
    """n trades: the day, then the same day shifted by k days with shifted ids, and so on.
    With markets > 1, trade i goes to market i mod markets (the job partitions by market,
    so this is what lets its parallel subtasks share the work)."""
    names = market_names(markets)
    day = list(binance_files.read_trades(COINM_DAY))
    # The ingest's own encoder (byte-equal to the registry serializer, several times faster).
    encode = TradeEncoder(avro.register_contract(s.registry_url, topic, "trade"))
    p = Producer(
        {
            "bootstrap.servers": s.bootstrap_servers,
            "linger.ms": 50,
            "enable.idempotence": True,
            "compression.type": "lz4",
        }
    )
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
                symbol=names[sent % markets][0],
                native_symbol=names[sent % markets][1],
                first_trade_id=None if t.first_trade_id is None else t.first_trade_id + id_shift,
                last_trade_id=None if t.last_trade_id is None else t.last_trade_id + id_shift,
            )
            try:
                p.produce(topic, key=t2.key.encode(), value=encode(t2))
            except BufferError:  # the local queue is full (a busy machine): wait, then retry
                p.poll(1.0)
                p.produce(topic, key=t2.key.encode(), value=encode(t2))
            p.poll(0)
            sent += 1
        k += 1
    assert p.flush(120) == 0


def production_sinks(s: StackSettings, prefix: str, iceberg: bool) -> tuple[Sinks, list[str]]:
    """The candles job's production outputs on fresh topics/namespace: exactly-once candles
    and DLQ topics, plus Iceberg silver.candles. Returns (sinks, catalog DDL)."""
    out_c, out_l = unique_name(f"{prefix}-candles"), unique_name(f"{prefix}-late")
    topics.ensure_topics(
        topics.admin(s.bootstrap_servers), [topics.TopicSpec(out_c), topics.TopicSpec(out_l)]
    )
    sinks = Sinks(
        candles=[KafkaSink(out_c, "candle", s.bootstrap_servers, s.registry_url, f"{out_c}-tx")],
        late=[KafkaSink(out_l, "late_trade", s.bootstrap_servers, s.registry_url, f"{out_l}-tx")],
    )
    if not iceberg:
        return sinks, []
    ns = unique_name(prefix, sep="_")
    ensure_silver_table(s, ns)
    sinks.candles.append(IcebergSink(s.catalog_name, ns, "candles"))
    return sinks, [catalog.flink_catalog_ddl(s)]


def bronze_sink(s: StackSettings, prefix: str) -> tuple[IcebergSink, list[str]]:
    """A fresh `<namespace>.trades` bronze table. Returns (sink, catalog DDL)."""
    ns = unique_name(prefix, sep="_")
    ensure_bronze_table(s, ns)
    return IcebergSink(s.catalog_name, ns, "trades"), [catalog.flink_catalog_ddl(s)]
