"""Real COIN-M trades through Kafka -> the candles job -> Kafka (exactly-once) + Iceberg, and
the same topic -> the bronze job -> Iceberg bronze.trades, compared with the reference on
every field."""

from __future__ import annotations

import pyarrow.parquet
import pytest
from confluent_kafka import Consumer, Producer

from adapters import avro, catalog, iceberg_files
from candleflow import binance_files, reference
from candleflow.config import CandleSettings
from candleflow.domain import Candle
from devstack.sample_data import COINM_DAY
from jobs.candle_iceberg import ensure_tables
from jobs.candle_tables import CANDLE_COLUMNS
from tests.jobs.harness import iceberg_trades, run_bronze_on_stack, run_candles_on_stack

pytestmark = [pytest.mark.integration, pytest.mark.flink]

SETTINGS = CandleSettings(intervals="1m,5m", allowed_lateness_seconds=120)


def arrival(trades):
    """Exchange order; every 97th trade delayed by 100 s (a correction), every 89th by 400 s
    (the DLQ), every 53rd sent twice."""
    keyed = []
    for n, t in enumerate(trades):
        delay = 100_000_000 if n % 97 == 5 else 400_000_000 if n % 89 == 3 else 0
        keyed.append((t.event_time_us + delay, n, t))
        if n % 53 == 7:
            keyed.append((t.event_time_us + 30_000_000, n, t))
    keyed.sort(key=lambda x: (x[0], x[1]))
    return [t for _, _, t in keyed]


def produce(settings, topic, trades) -> None:
    ser = avro.serializer(avro.registry_client(settings), "trade")
    producer = Producer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "enable.idempotence": True,
            "linger.ms": 20,
        }
    )
    ctx = avro.value_context(topic)
    for t in trades:
        producer.produce(topic, key=t.key.encode(), value=ser(t, ctx))
        producer.poll(0)
    assert producer.flush(60) == 0


def consume_committed(settings, topic, contract):
    de = avro.deserializer(avro.registry_client(settings), contract)
    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": f"{topic}-reader",
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    out, idle = [], 0
    while idle < 10:
        msg = consumer.poll(1.0)
        if msg is None:
            idle += 1
            continue
        assert msg.error() is None, msg.error()
        idle = 0
        out.append(de(msg.value(), avro.value_context(topic)))
    consumer.close()
    return out


def iceberg_candles(settings, ns) -> dict:
    """silver.candles as Flink reads it (batch): PyIceberg 0.8 cannot apply the equality
    deletes an upsert table carries."""
    from pyflink.table import EnvironmentSettings, TableEnvironment

    from jobs.flink_env import connector_jars

    t_env = TableEnvironment.create(EnvironmentSettings.in_batch_mode())
    t_env.get_config().set("pipeline.jars", ";".join(p.as_uri() for p in connector_jars(settings)))
    t_env.execute_sql(catalog.flink_catalog_ddl(settings))
    names = [n for n, _ in CANDLE_COLUMNS]
    query = (
        f"SELECT {', '.join(f'`{n}`' for n in names)} FROM "
        f"`{settings.catalog_name}`.`{ns}`.`candles`"
    )
    out = {}
    with t_env.execute_sql(query).collect() as rows:
        for row in rows:
            r = dict(zip(names, row, strict=True))
            c = Candle(
                r["exchange"],
                r["symbol"],
                r["interval"],
                _us(r["window_start"]),
                _us(r["window_end"]),
                r["open"],
                r["high"],
                r["low"],
                r["close"],
                r["volume"],
                r["quote_volume"],
                r["trade_count"],
                r["taker_buy_volume"],
                r["taker_buy_quote_volume"],
                r["vwap"],
                r["first_trade_id"],
                r["last_trade_id"],
                r["revision"],
                r["is_empty"],
            )
            key = reference.candle_key(c)
            assert key not in out, f"two rows for {key} in silver.candles"
            out[key] = c
    return out


def _us(ts) -> int:
    import datetime as dt

    return int(ts.replace(tzinfo=dt.UTC).timestamp()) * 1_000_000 + ts.microsecond


@pytest.mark.skipif(not COINM_DAY.exists(), reason="shared data not present")
def test_real_trades_through_kafka_to_kafka_and_iceberg(
    stack, unique_topic, unique_namespace, tmp_path
):
    s = stack.settings
    trades = [
        t
        for t in binance_files.read_trades(COINM_DAY)
        if t.event_time_us < 1_778_198_400_000_000 + 2 * 3600 * 1_000_000
    ]
    sent = arrival(trades)
    ref = reference.stream_reference(sent, settings=SETTINGS)
    assert ref.late and ref.duplicates and any(c.revision for c in ref.emissions)

    t_topic, c_topic, l_topic = (
        unique_topic("trades"),
        unique_topic("candles"),
        unique_topic("late"),
    )
    produce(s, t_topic, sent)
    topics = (t_topic, c_topic, l_topic)
    run_candles_on_stack(s, topics, unique_namespace, SETTINGS, tmp_path / "ckpt", parallelism=2)

    want = ref.final()
    # candles.v1: each revision exactly once, the last one equal to the reference.
    got = consume_committed(s, c_topic, "candle")
    keys = [(reference.candle_key(c), c.revision) for c in got]
    assert len(keys) == len(set(keys)), "a candle revision was written twice"
    assert sorted(got, key=lambda c: (reference.candle_key(c), c.revision)) == sorted(
        ref.emissions, key=lambda c: (reference.candle_key(c), c.revision)
    )
    # trades.late.v1: exactly the reference's DLQ.
    late = consume_committed(s, l_topic, "late_trade")
    assert sorted((lt.trade.trade_id, lt.interval, lt.window_start_us) for lt in late) == sorted(
        (lt.trade.trade_id, lt.interval, lt.window_start_us) for lt in ref.late
    )
    # silver.candles: one row per window, the last revision.
    assert iceberg_candles(s, unique_namespace) == want
    # bronze.trades (the bronze job, same topic): every accepted trade once, every field.
    run_bronze_on_stack(s, t_topic, unique_namespace, tmp_path / "ckpt-bronze", parallelism=2)
    landed = iceberg_trades(s, unique_namespace)

    def by_id(t):
        return (t.exchange, t.symbol, t.trade_id)

    assert sorted(landed, key=by_id) == sorted(ref.accepted, key=by_id)
    # Both tables' Parquet files are zstd (Iceberg's gzip default cost the bronze writer most).
    for name in ("trades", "candles"):
        table = catalog.catalog(s).load_table(f"{unique_namespace}.{name}")
        files = iceberg_files.data_files(table, table.current_snapshot())
        assert files
        for uri, _sequence in files:
            path = iceberg_files.local_path(uri)
            meta = pyarrow.parquet.ParquetFile(path).metadata
            assert meta.row_group(0).column(0).compression == "ZSTD", (name, path)


def test_tables_of_an_earlier_version_get_zstd(stack, unique_namespace):
    """A table created without a codec (Iceberg's default: gzip) is switched to zstd."""
    s = stack.settings
    bronze, silver = ensure_tables(s, bronze=unique_namespace, silver=unique_namespace)
    for table in (bronze, silver):
        with table.transaction() as tx:
            tx.remove_properties("write.parquet.compression-codec")
        assert (
            "write.parquet.compression-codec"
            not in catalog.catalog(s).load_table(table.name()).properties
        )
    for table in ensure_tables(s, bronze=unique_namespace, silver=unique_namespace):
        assert table.properties["write.parquet.compression-codec"] == "zstd"
