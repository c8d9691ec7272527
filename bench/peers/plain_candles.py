"""The simplest peer: one Python process, a read_committed consumer doing the candle arithmetic.

Runs in the peers environment (`make setup-peers`), started by bench/peers/run.py:
    $CANDLEFLOW_CACHE/peers-venv/bin/python -m bench.peers.plain_candles --topic T ...

What someone without a stream processor would write: confluent-kafka's Consumer
(read_committed, offsets committed after the candles are flushed: at-least-once),
fastavro on the Confluent payload (the 5-byte header stripped), exact Decimals with the
same per-trade arithmetic as the candles job, one dict of open 1-minute windows, a 10 s
watermark (highest trade time seen - 10 s, over the whole topic, as Spark's), a window
emitted once when the watermark passes its end, a trade for a window already past the
watermark dropped (counted), and at the end of the bounded input every open window
flushed. Candles go to a Kafka topic as JSON (idempotent producer, no transactions).
Prints one JSON line with its progress samples (time, trades, process CPU).
"""

from __future__ import annotations

import argparse
import decimal
import io
import json
import time
import uuid
from decimal import Decimal
from pathlib import Path

import fastavro
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

TRADE_SCHEMA = Path(__file__).resolve().parents[2] / "candleflow/contracts/trade/v1.avsc"
WINDOW_US = 60_000_000
DELAY_US = 10_000_000
CTX = decimal.Context(prec=80, rounding=decimal.ROUND_HALF_UP)
SCALE = Decimal("1E-18")


def trade_schema():
    """The contract, its times read as plain longs (they are UTC µs already)."""
    raw = json.loads(TRADE_SCHEMA.read_text())
    for f in raw["fields"]:
        if isinstance(f["type"], dict) and f["type"].get("logicalType") == "timestamp-micros":
            f["type"] = "long"
    return fastavro.parse_schema(raw)


class Window:
    __slots__ = ("ok", "o", "ck", "c", "h", "l", "v", "q", "n", "bv", "bq", "f", "la", "cs", "inv")

    def __init__(self, t: dict, quote: Decimal) -> None:
        key = (t["event_time"], t["trade_id"])
        p = t["price"]
        self.ok, self.o, self.ck, self.c, self.h, self.l = key, p, key, p, p, p
        self.v, self.q, self.n = t["quantity"], quote, 0
        self.bv = self.bq = Decimal(0)
        self.f, self.la = first_last(t)
        self.n = self.la - self.f + 1
        if t["side"] == "BUY":
            self.bv, self.bq = t["quantity"], quote
        self.cs, self.inv = t["contract_size"], t["kind"] == "INVERSE"

    def add(self, t: dict, quote: Decimal) -> None:
        key = (t["event_time"], t["trade_id"])
        p = t["price"]
        if key < self.ok:
            self.ok, self.o = key, p
        if key > self.ck:
            self.ck, self.c = key, p
        if p > self.h:
            self.h = p
        if p < self.l:
            self.l = p
        q = t["quantity"]
        self.v = CTX.add(self.v, q)
        self.q = CTX.add(self.q, quote)
        f, la = first_last(t)
        self.n += la - f + 1
        if t["side"] == "BUY":
            self.bv = CTX.add(self.bv, q)
            self.bq = CTX.add(self.bq, quote)
        self.f, self.la = min(self.f, f), max(self.la, la)

    def candle(self, exchange: str, symbol: str, start: int) -> dict:
        if self.inv:
            vwap = CTX.divide(CTX.multiply(self.v, self.cs), self.q).quantize(SCALE, context=CTX)
        else:
            vwap = CTX.divide(self.q, self.v).quantize(SCALE, context=CTX)
        return {
            "exchange": exchange,
            "symbol": symbol,
            "interval": "1m",
            "window_start_us": start,
            "window_end_us": start + WINDOW_US,
            **{
                k: str(x)
                for k, x in (
                    ("open", self.o),
                    ("high", self.h),
                    ("low", self.l),
                    ("close", self.c),
                    ("volume", self.v),
                    ("quote_volume", self.q),
                )
            },
            "trade_count": self.n,
            "taker_buy_volume": str(self.bv),
            "taker_buy_quote_volume": str(self.bq),
            "vwap": str(vwap),
            "first_trade_id": self.f,
            "last_trade_id": self.la,
        }


def first_last(t: dict) -> tuple[int, int]:
    f, la = t["first_trade_id"], t["last_trade_id"]
    return (t["trade_id"] if f is None else f), (t["trade_id"] if la is None else la)


def quote_amount(t: dict) -> Decimal:
    if t["kind"] == "INVERSE":
        notional = CTX.multiply(t["quantity"], t["contract_size"])
        return CTX.divide(notional, t["price"]).quantize(SCALE, context=CTX)
    return CTX.multiply(t["price"], t["quantity"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--out-topic", required=True)
    args = ap.parse_args()
    started = time.time()
    schema = trade_schema()
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": f"plain-candles-{uuid.uuid4().hex[:8]}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    producer = Producer(
        {"bootstrap.servers": args.bootstrap, "enable.idempotence": True, "linger.ms": 20}
    )
    meta = consumer.list_topics(args.topic, timeout=10).topics[args.topic]
    parts = [TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in meta.partitions]
    ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in parts}
    todo = {p for p, end in ends.items() if end > 0}
    consumer.assign(parts)

    windows: dict[tuple[str, str, int], Window] = {}
    high = None  # highest trade time seen
    late = rows = 0
    samples: list[tuple[float, int, float]] = []
    next_sample = 0.0

    def emit(due) -> None:
        for key in sorted(k for k in windows if due(k)):
            w = windows.pop(key)
            value = json.dumps(w.candle(*key)).encode()
            producer.produce(args.out_topic, key=f"{key[0]}:{key[1]}".encode(), value=value)
        producer.poll(0)

    ready = time.time()
    while todo:
        batch = consumer.consume(1000, 0.5)
        for msg in batch:
            if msg.error():
                raise RuntimeError(msg.error())
            t = fastavro.schemaless_reader(io.BytesIO(msg.value()[5:]), schema, None)
            et = t["event_time"]
            start = et - et % WINDOW_US
            if high is not None and start + WINDOW_US <= high - DELAY_US:
                late += 1  # its window is past the watermark: emitted already, or never will be
            else:
                key = (t["exchange"], t["symbol"], start)
                w = windows.get(key)
                if w is None:
                    windows[key] = Window(t, quote_amount(t))
                else:
                    w.add(t, quote_amount(t))
                if high is None or et > high:
                    high = et
            if msg.offset() + 1 >= ends[msg.partition()]:
                todo.discard(msg.partition())
        rows += len(batch)
        if high is not None:
            emit(lambda k, wm=high - DELAY_US: k[2] + WINDOW_US <= wm)
        now = time.monotonic()
        if now >= next_sample:
            samples.append((now, rows, time.process_time()))
            next_sample = now + 0.5
        if not batch:  # read_committed: trailing transaction markers are never delivered
            for tp in consumer.position([TopicPartition(args.topic, p) for p in list(todo)]):
                if tp.offset >= ends[tp.partition]:
                    todo.discard(tp.partition)
    emit(lambda k: True)  # end of the bounded input
    assert producer.flush(60) == 0
    consumer.commit(asynchronous=False)  # after the candles are out: at-least-once
    samples.append((time.monotonic(), rows, time.process_time()))
    ended = time.time()
    consumer.close()
    print(
        json.dumps(
            {
                "started": started,
                "ready": ready,
                "ended": ended,
                "rows": rows,
                "late": late,
                "samples": samples,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
