"""Where a replay stopped: the last trade of each market already in the trades topic.

A replay produces in file order with the idempotent producer (one market = one key = one
partition, order kept, no gaps after retries), so what a killed replay left in a partition
is a prefix of the file's trades of that market. `last_trades` reads the last record of
every partition; `replay(..., resume_after=...)` then skips each market's trades up to and
including that one, so a restarted replay continues without a gap and without a duplicate.
"""

from __future__ import annotations

from confluent_kafka import Consumer, TopicPartition

from adapters import avro
from candleflow.config import StackSettings
from candleflow.domain import Trade

Market = tuple[str, str]  # (exchange, symbol)


class ResumeError(RuntimeError):
    """The topic's last trade of a market is not in the files being replayed."""


def last_trades(stack: StackSettings, topic: str, timeout: float = 30.0) -> dict[Market, Trade]:
    """The last trade of each market in `topic` (one read of each partition's last record)."""
    consumer = Consumer(
        stack.kafka_config(
            **{
                "group.id": "candleflow-ingest-resume",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                # The producer is not transactional: every written record counts.
                "isolation.level": "read_uncommitted",
            }
        )
    )
    decode = avro.deserializer(avro.registry_client(stack), "trade")
    ctx = avro.value_context(topic)
    found: dict[Market, Trade] = {}
    try:
        meta = consumer.list_topics(topic, timeout=timeout).topics[topic]
        if meta.error is not None:
            raise ResumeError(f"cannot read topic {topic}: {meta.error}")
        wanted = []
        for p in sorted(meta.partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
            if high > low:
                wanted.append(TopicPartition(topic, p, high - 1))
        if not wanted:
            return found
        consumer.assign(wanted)
        pending = {tp.partition for tp in wanted}
        while pending:
            msg = consumer.poll(timeout)
            if msg is None:
                raise ResumeError(f"no record read from {topic} partitions {sorted(pending)}")
            if msg.error() is not None:
                raise ResumeError(f"reading {topic}: {msg.error()}")
            pending.discard(msg.partition())
            value = msg.value()
            if value is None:
                continue
            trade = decode(value, ctx)
            assert isinstance(trade, Trade)
            found[(trade.exchange, trade.symbol)] = trade
        return found
    finally:
        consumer.close()


class Skipper:
    """Drops each market's trades up to and including its resume point, then lets all pass.

    Raises ResumeError at the end if a resume point was never met (the files are not the
    ones the topic was filled from): resuming would otherwise duplicate or lose trades."""

    def __init__(self, resume_after: dict[Market, Trade]) -> None:
        self.waiting = {m: t.trade_id for m, t in resume_after.items()}
        self.skipped = 0

    def keep(self, trades: list[Trade]) -> list[Trade]:
        if not self.waiting:
            return trades
        out = []
        for t in trades:
            market = (t.exchange, t.symbol)
            last = self.waiting.get(market)
            if last is None:
                out.append(t)
                continue
            self.skipped += 1
            if t.trade_id == last:
                del self.waiting[market]
        return out

    def check_done(self) -> None:
        if self.waiting:
            raise ResumeError(
                "resume point not found in the replayed files for "
                + ", ".join(f"{e}:{s} trade {i}" for (e, s), i in sorted(self.waiting.items()))
            )
