"""The Spark Structured Streaming peer: trades.v1 -> 1-minute candles -> Kafka (or noop).

Runs in the peers environment (`make setup-peers`), started by bench/peers/run.py:
    $CANDLEFLOW_CACHE/peers-venv/bin/python -m bench.peers.spark_candles --topic T ...

What a data engineer would write: the Kafka source (read_committed), `from_avro` on the
Confluent payload (the 5-byte header stripped), a 10 s watermark, a tumbling 1-minute
window, open and close with `min_by`/`max_by` on (event_time, trade_id), the same
per-trade arithmetic as the candles job in Spark decimals, append mode (one final row per
window once the watermark passes), `to_json` to a Kafka topic (at-least-once) and
`Trigger.AvailableNow` so a bounded backlog ends the query. Prints one JSON line: the
progress of every micro-batch with the JVM's CPU by thread at its end (bench/candles'
thread_cpu), so the orchestrator computes the same sustained rate and CPU per trade as
for the Flink job.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

from bench.candles import thread_cpu
from bench.peers.spark_env import session

TRADE_SCHEMA = Path(__file__).resolve().parents[2] / "candleflow/contracts/trade/v1.avsc"


def java_child() -> int | None:
    """The JVM pyspark started (a java child of this process)."""
    me = str(os.getpid())
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            comm, rest = text.split("(", 1)[1].rsplit(")", 1)
            if comm == "java" and rest.split()[1] == me:
                return int(stat.parent.name)
        except (OSError, IndexError, ValueError):
            continue
    return None


def candles_query(spark, args):
    from pyspark.sql import functions as F
    from pyspark.sql.avro.functions import from_avro

    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", args.bootstrap)
        .option("subscribe", args.topic)
        .option("startingOffsets", "earliest")
        .option("kafka.isolation.level", "read_committed")
        .option("failOnDataLoss", "true")
    )
    if args.max_offsets:
        reader = reader.option("maxOffsetsPerTrigger", str(args.max_offsets))
    if args.min_partitions:
        reader = reader.option("minPartitions", str(args.min_partitions))
    payload = F.expr("substring(value, 6, length(value) - 5)")  # Confluent: magic + schema id
    t = reader.load().select(from_avro(payload, TRADE_SCHEMA.read_text()).alias("t")).select("t.*")
    # A trade's quote amount: price x quantity, or for inverse contracts (COIN-M) the base
    # amount quantity x contract_size / price (docs/semantics.md), in Spark's decimals.
    quote = F.when(
        F.col("kind") == "INVERSE", F.col("quantity") * F.col("contract_size") / F.col("price")
    ).otherwise(F.col("price") * F.col("quantity"))
    buy = F.col("side") == "BUY"
    first = F.coalesce("first_trade_id", "trade_id")
    last = F.coalesce("last_trade_id", "trade_id")
    order = F.struct("event_time", "trade_id")
    if args.naive:  # first/last in arrival order: what docs/semantics.md warns against
        open_, close = F.first("price"), F.last("price")
    else:
        open_, close = F.min_by("price", order), F.max_by("price", order)
    c = (
        t.withColumn("quote", quote)
        .withWatermark("event_time", "10 seconds")
        .groupBy(F.window("event_time", "1 minute"), "exchange", "symbol")
        .agg(
            open_.alias("open"),
            F.max("price").alias("high"),
            F.min("price").alias("low"),
            close.alias("close"),
            F.sum("quantity").alias("volume"),
            F.sum("quote").alias("quote_volume"),
            F.sum(last - first + 1).alias("trade_count"),
            F.sum(F.when(buy, F.col("quantity")).otherwise(0)).alias("taker_buy_volume"),
            F.sum(F.when(buy, F.col("quote")).otherwise(0)).alias("taker_buy_quote_volume"),
            F.min(first).alias("first_trade_id"),
            F.max(last).alias("last_trade_id"),
            F.first("kind").alias("kind"),
            F.first("contract_size").alias("contract_size"),
        )
    )
    vwap = F.when(
        F.col("kind") == "INVERSE",
        F.col("volume") * F.col("contract_size") / F.col("quote_volume"),
    ).otherwise(F.col("quote_volume") / F.col("volume"))
    out = c.select(
        "exchange",
        "symbol",
        F.lit("1m").alias("interval"),
        F.unix_micros(F.col("window.start")).alias("window_start_us"),
        F.unix_micros(F.col("window.end")).alias("window_end_us"),
        "open",
        "high",
        "low",
        "close",
        "volume",
        "quote_volume",
        "trade_count",
        "taker_buy_volume",
        "taker_buy_quote_volume",
        vwap.alias("vwap"),
        "first_trade_id",
        "last_trade_id",
    )
    return out.select(
        F.concat_ws(":", "exchange", "symbol").alias("key"),
        F.to_json(F.struct(*out.columns)).alias("value"),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--out-topic", help="Kafka sink topic (default: the noop sink)")
    ap.add_argument("--max-offsets", type=int, default=0, help="maxOffsetsPerTrigger (0: unset)")
    ap.add_argument("--min-partitions", type=int, default=0, help="minPartitions (0: unset)")
    ap.add_argument("--naive", action="store_true", help="open/close as first/last by arrival")
    args = ap.parse_args()
    started = time.time()
    spark = session("candles-peer", {"spark.sql.streaming.numRecentProgressUpdates": "100000"})
    spark.sparkContext.setLogLevel("ERROR")
    jvm = java_child()
    samples: list[dict] = []

    def sample(rows: int) -> dict:
        """Now, rows read, and CPU seconds by JVM thread (+ this Python process as tid 0)."""
        cpu = thread_cpu.cpu_by_thread(jvm) if jvm else {}
        ru = resource.getrusage(resource.RUSAGE_SELF)
        cpu[0] = ("python driver", ru.ru_utime + ru.ru_stime)
        return {"t": time.monotonic(), "rows": rows, "cpu": {str(k): v for k, v in cpu.items()}}

    from pyspark.sql.streaming import StreamingQueryListener

    class Progress(StreamingQueryListener):
        def onQueryStarted(self, event):
            pass

        def onQueryProgress(self, event):
            samples.append(sample(event.progress.numInputRows))

        def onQueryIdle(self, event):
            pass

        def onQueryTerminated(self, event):
            pass

    spark.streams.addListener(Progress())
    session_ready = time.time()
    with tempfile.TemporaryDirectory(prefix="spark-peer-ckpt-") as ckpt:
        w = (
            candles_query(spark, args)
            .writeStream.outputMode("append")
            .option("checkpointLocation", ckpt)
        )
        if args.out_topic:
            w = (
                w.format("kafka")
                .option("kafka.bootstrap.servers", args.bootstrap)
                .option("topic", args.out_topic)
            )
        else:
            w = w.format("noop")
        start_sample = sample(0)
        query = w.trigger(availableNow=True).start()
        query_started = time.time()
        query.awaitTermination()
        ended = time.time()
        # the listener runs on its own thread: let the last batch's event land
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(samples) < len(query.recentProgress):
            time.sleep(0.1)
    print(
        json.dumps(
            {
                "started": started,
                "session_ready": session_ready,
                "query_started": query_started,
                "ended": ended,
                "batches": len(query.recentProgress),
                "samples": samples,
                "start_sample": start_sample,
            }
        ),
        flush=True,
    )
    spark.stop()


if __name__ == "__main__":
    main()
