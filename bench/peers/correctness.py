"""Peer correctness: each peer's 1-minute candles against the batch reference on the COIN-M day.

The day (105,280 real aggregate trades) goes to a fresh topic twice: in trade order, and
with arrival shuffled within a few seconds (each trade sent at its trade time plus a
seeded random delay of up to `jitter_s`, inside the 10 s watermark/grace, so no trade is
late for anyone). A peer's output topic is read to its end (read_committed), each
window's last emission is kept, and every field is compared with
`candleflow.reference.batch_candles(day, "1m")`: the table lists, per field, how many
windows differ, plus the windows missing or extra.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition

from adapters import avro, topics
from candleflow import binance_files
from candleflow.config import StackSettings
from candleflow.domain import KLINE_FIELDS, Candle, Trade
from candleflow.reference import batch_candles, candle_key
from devstack.sample_data import COINM_DAY
from devstack.testing import unique_name
from ingest.avro_trade import TradeEncoder

# The fields of a candle a peer computes (revision and is_empty are Candleflow's own).
FIELDS = (*KLINE_FIELDS, "vwap", "first_trade_id", "last_trade_id")


def day_trades() -> list[Trade]:
    return list(binance_files.read_trades(COINM_DAY))


def shuffled(trades: Sequence[Trade], jitter_s: float, seed: int = 14) -> list[Trade]:
    """Arrival order when each trade is delayed by up to jitter_s (seeded)."""
    rng = random.Random(seed)
    jitter_us = int(jitter_s * 1_000_000)
    return sorted(trades, key=lambda t: t.event_time_us + rng.randrange(jitter_us + 1))


def produce_trades(s: StackSettings, trades: Iterable[Trade], prefix: str) -> str:
    """A fresh 1-partition topic holding `trades` in the given order (as ingest writes them)."""
    topic = unique_name(prefix)
    topics.ensure_topics(topics.admin(s.bootstrap_servers), [topics.TopicSpec(topic)])
    encode = TradeEncoder(avro.register_contract(s.registry_url, topic, "trade"))
    p = Producer({"bootstrap.servers": s.bootstrap_servers, "enable.idempotence": True})
    for t in trades:
        try:
            p.produce(topic, key=t.key.encode(), value=encode(t))
        except BufferError:
            p.poll(1.0)
            p.produce(topic, key=t.key.encode(), value=encode(t))
        p.poll(0)
    assert p.flush(120) == 0
    return topic


def read_values(s: StackSettings, topic: str, timeout_s: float = 60.0) -> list[bytes]:
    """Every committed value of `topic`, reading its partitions to their end."""
    c = Consumer(
        {
            "bootstrap.servers": s.bootstrap_servers,
            "group.id": unique_name("peers-reader"),
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    try:
        meta = c.list_topics(topic, timeout=10).topics[topic]
        parts = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions]
        ends = {tp.partition: c.get_watermark_offsets(tp, timeout=10)[1] for tp in parts}
        todo = {p for p, end in ends.items() if end > 0}
        c.assign(parts)
        out: list[bytes] = []
        deadline = time.monotonic() + timeout_s
        while todo and time.monotonic() < deadline:
            msg = c.poll(0.5)
            if msg is None:  # read_committed: trailing transaction markers are never delivered
                for tp in c.position([TopicPartition(topic, p) for p in list(todo)]):
                    if tp.offset >= ends[tp.partition]:
                        todo.discard(tp.partition)
                continue
            if msg.error():
                raise KafkaException(msg.error())
            out.append(msg.value())
            if msg.offset() + 1 >= ends[msg.partition()]:
                todo.discard(msg.partition())
        if todo:
            raise TimeoutError(f"could not read {topic} to its end in {timeout_s}s")
        return out
    finally:
        c.close()


def json_candles(values: Iterable[bytes]) -> list[dict[str, Any]]:
    """The peers' JSON candles (Spark writes decimals as JSON numbers, the plain peer as
    strings): every decimal as an exact Decimal."""
    out = []
    for v in values:
        d = json.loads(v, parse_float=Decimal)
        for k in FIELDS:
            if isinstance(d.get(k), str):
                d[k] = Decimal(d[k])
        out.append(d)
    return out


def avro_candles(s: StackSettings, topic: str, values: Iterable[bytes]) -> list[dict[str, Any]]:
    """The candles job's Avro candles as dicts (the Candle's own field names)."""
    from dataclasses import asdict

    de = avro.deserializer(avro.registry_client(s), "candle")
    ctx = avro.value_context(topic)
    return [asdict(de(v, ctx)) for v in values]


@dataclass
class Comparison:
    reference: int  # windows in the reference
    emissions: int  # records the peer wrote
    windows: int  # distinct windows the peer wrote
    missing: list[int] = field(default_factory=list)  # window starts (µs) not written
    extra: list[int] = field(default_factory=list)
    differ: dict[str, int] = field(default_factory=dict)  # field -> windows that differ
    examples: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # field -> (ref, peer)
    missing_empty: int = 0  # of the missing windows, empty ones (no trades)

    def summary(self) -> str:
        if not self.missing and not self.extra and not self.differ:
            return f"equal on every field ({self.reference} windows)"
        parts = []
        if self.missing:
            parts.append(
                f"{len(self.missing)} of {self.reference} windows missing"
                f" ({self.missing_empty} empty, {len(self.missing) - self.missing_empty} with"
                " trades)"
            )
        if self.extra:
            parts.append(f"{len(self.extra)} extra windows")
        for f, n in self.differ.items():
            ref, got = self.examples[f]
            parts.append(f"{f} in {n} (e.g. {ref} vs {got})")
        return "; ".join(parts)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        return a is not None and b is not None and Decimal(a) == Decimal(b)
    return bool(a == b)


def compare(reference: Sequence[Candle], got: Sequence[dict[str, Any]]) -> Comparison:
    """Each window's last emission (highest revision, else the last written) vs the reference."""
    last: dict[tuple, dict[str, Any]] = {}
    for d in got:
        key = (d["exchange"], d["symbol"], d["interval"], d["window_start_us"])
        if key not in last or d.get("revision", 0) >= last[key].get("revision", 0):
            last[key] = d
    ref = {candle_key(c): c for c in reference}
    out = Comparison(len(ref), len(got), len(last))
    for key, c in ref.items():
        d = last.get(key)
        if d is None:
            out.missing.append(key[3])
            out.missing_empty += c.is_empty
            continue
        for f in FIELDS:
            if not _same(getattr(c, f), d.get(f)):
                out.differ[f] = out.differ.get(f, 0) + 1
                out.examples.setdefault(f, (getattr(c, f), d.get(f)))
    out.extra = sorted(k[3] for k in last if k not in ref)
    return out


def reference_candles(trades: Sequence[Trade]) -> list[Candle]:
    return batch_candles(trades, "1m")


Runner = Callable[[str], list[dict[str, Any]]]  # input topic -> the peer's candles
