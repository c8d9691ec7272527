"""Recent candles for the explainer's context, read from candles.v1 (read_committed).

A background-free cache: before each context is built it reads candles.v1 up to the
current end, so the candles that produced an anomaly (written before it) are there. It
keeps the latest revision of the last `keep` windows per (exchange, symbol, interval).
"""

from __future__ import annotations

import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition
from confluent_kafka.schema_registry.avro import AvroDeserializer

from adapters import avro
from candleflow.anomaly_rules import ALL_EXCHANGES
from candleflow.config import StackSettings
from candleflow.domain import Anomaly, Candle
from candleflow.intervals import Interval
from explainer.context import AnomalyContext

Key = tuple[str, str, str]


class CandleCache:
    def __init__(
        self,
        stack: StackSettings,
        topic: str,
        context_candles: int,
        lookback_minutes: int,
        keep: int = 500,
    ) -> None:
        self.stack, self.topic, self.n, self.keep = stack, topic, context_candles, keep
        self.lookback_ms = lookback_minutes * 60_000
        self.series: dict[Key, dict[int, Candle]] = {}
        self._consumer: Consumer | None = None
        self._deser: AvroDeserializer | None = None

    def _open(self) -> Consumer | None:
        if self._consumer is not None:
            return self._consumer
        c = Consumer(
            self.stack.kafka_config(
                **{
                    "group.id": f"candleflow-explainer-candles-{uuid.uuid4().hex}",
                    "isolation.level": "read_committed",
                    "enable.auto.commit": False,
                }
            )
        )
        meta = c.list_topics(self.topic, timeout=10)
        if meta.topics[self.topic].error is not None:
            c.close()
            return None  # no candles topic (yet): contexts carry the anomaly's numbers only
        start_ms = int(time.time() * 1000) - self.lookback_ms
        parts = [
            TopicPartition(self.topic, p, start_ms) for p in meta.topics[self.topic].partitions
        ]
        found = c.offsets_for_times(parts, timeout=10)
        c.assign(
            [
                TopicPartition(
                    self.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
                )
                for tp in found
            ]
        )
        self._deser = avro.deserializer(avro.registry_client(self.stack), "candle")
        self._consumer = c
        return c

    def catch_up(self, timeout_s: float = 5.0) -> None:
        c = self._open()
        if c is None:
            return
        assert self._deser is not None
        deadline = time.monotonic() + timeout_s
        ends = {tp.partition: c.get_watermark_offsets(tp, timeout=5)[1] for tp in c.assignment()}
        while time.monotonic() < deadline:
            msgs = c.consume(num_messages=500, timeout=0.2)
            for msg in msgs:
                if msg.error():
                    raise KafkaException(msg.error())
                self.add(self._deser(msg.value(), avro.value_context(self.topic)))  # type: ignore[arg-type]
            if not msgs:
                pos = c.position(c.assignment())
                if all(tp.offset < 0 or tp.offset >= ends[tp.partition] for tp in pos):
                    return

    def add(self, candle: Candle) -> None:
        key = (candle.exchange, candle.symbol, candle.interval)
        windows = self.series.setdefault(key, {})
        old = windows.get(candle.window_start_us)
        if old is None or candle.revision > old.revision:
            windows[candle.window_start_us] = candle
        if len(windows) > self.keep:
            for ws in sorted(windows)[: len(windows) - self.keep]:
                del windows[ws]

    def context(self, anomaly: Anomaly) -> AnomalyContext:
        self.catch_up()
        step = Interval.parse(anomaly.interval).micros
        ws = anomaly.window_start_us
        series: list[Candle] = []
        if anomaly.exchange != ALL_EXCHANGES:
            windows = self.series.get((anomaly.exchange, anomaly.symbol, anomaly.interval), {})
            series = [
                windows[w] for w in range(ws - self.n * step, ws + step, step) if w in windows
            ]
        peers = [
            windows[ws]
            for (ex, sym, iv), windows in sorted(self.series.items())
            if sym == anomaly.symbol
            and iv == anomaly.interval
            and ex != anomaly.exchange
            and ws in windows
        ]
        return AnomalyContext(anomaly, series=series, peers=peers)

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
