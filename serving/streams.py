"""The live streams: cursor resolution, replay from Kafka, the seam to the hub, live events.

Resume without gap or duplicate: a cursor is, for every partition of the stream's
topics, the next offset to read. A stream first replays [cursor, hub position) with its
own short-lived consumer (catching up in rounds while the hub moves on), then registers
with the hub, which atomically returns the position P it starts at; the last replay round
reads [cursor, P) and the hub delivers exactly the records >= P. Records below the
subscriber's cursor are never delivered (the cursor may be ahead of a freshly restarted
hub). Offsets identify records, so this holds across server restarts too.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import structlog

from candleflow.domain import Anomaly, Explanation
from serving import convert, metrics
from serving.hub import Hub, Subscriber, now_us
from serving.kafka_io import Decoder, Positions, Record, list_offsets, partitions, replay
from serving.pb import pb

log = structlog.get_logger(__name__)

# A batched CandleEvent is the concatenation of its `events` (field 6, length-delimited):
# built from the shared pre-serialized events without decoding or re-encoding them.
_EVENTS_TAG = b"\x32"
MAX_BATCH = 256  # events per message: ~80 KB, well under clients' 4 MB receive limit


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def pack_events(payloads: list[bytes]) -> bytes:
    """One CandleEvent carrying `payloads` (serialized CandleEvents) in `events`."""
    return b"".join(_EVENTS_TAG + _varint(len(p)) + p for p in payloads)


class SlowClient(Exception):
    """The subscriber's queue overflowed; carries the cursor to resume from."""

    def __init__(self, cursor: Positions):
        super().__init__("client too slow: queue full")
        self.cursor = cursor


class CursorExpired(Exception):
    """The cursor points below a partition's first offset: retention deleted records the
    client has not seen. Resuming would skip them silently, so the stream refuses
    (OUT_OF_RANGE); the client must restart from a time or the beginning."""


def check_cursor(given: Positions, earliest: Positions, latest: Positions) -> None:
    """A cursor this server can resume: its partitions exist and its offsets are inside
    [earliest, latest]. Raises validate.BadArgument (a foreign or made-up cursor) or
    CursorExpired (records deleted by retention)."""
    from serving.validate import BadArgument

    for i, (tp, offset) in enumerate(given.items()):
        field = f"cursor.offsets[{i}]"
        if tp not in earliest:
            have = sorted(p for t, p in earliest if t == tp[0])
            raise BadArgument(
                f"{field}.partition", f"{tp[0]} has no partition {tp[1]} (partitions {have})"
            )
        if offset < earliest[tp]:
            raise CursorExpired(
                f"{field}.offset: {offset} of {tp[0]}[{tp[1]}] was deleted by retention "
                f"(first offset now {earliest[tp]}); restart with start_time_us or "
                "from_beginning"
            )
        if offset > latest[tp]:
            raise BadArgument(
                f"{field}.offset",
                f"{offset} is past the end of {tp[0]}[{tp[1]}] (last offset {latest[tp]}): "
                "not a cursor of this cluster",
            )


class Joins:
    """Recent anomalies and explanations by id, to pair them (bounded LRU)."""

    def __init__(self, capacity: int = 100_000):
        self.capacity = capacity
        self.anomalies: collections.OrderedDict[str, Anomaly] = collections.OrderedDict()
        self.explanations: collections.OrderedDict[str, Explanation] = collections.OrderedDict()

    def add(self, rec: Record) -> None:
        if rec.kind == "anomaly":
            self._put(self.anomalies, rec.value.anomaly_id, rec.value)
        elif rec.kind == "explanation":
            self._put(self.explanations, rec.value.anomaly_id, rec.value)

    def _put(self, d: collections.OrderedDict[str, Any], key: str, value: Any) -> None:
        d[key] = value
        d.move_to_end(key)
        while len(d) > self.capacity:
            d.popitem(last=False)

    def pair(self, anomaly_id: str) -> Any:
        msg = pb.AnomalyWithExplanation()
        if (a := self.anomalies.get(anomaly_id)) is not None:
            msg.anomaly.CopyFrom(convert.anomaly_to_pb(a))
        else:
            msg.anomaly.anomaly_id = anomaly_id
        if (e := self.explanations.get(anomaly_id)) is not None:
            msg.explanation.CopyFrom(convert.explanation_to_pb(e))
        return msg


class Streams:
    def __init__(
        self,
        bootstrap: str,
        decoder: Decoder,
        candles_topic: str,
        anomalies_topic: str,
        explanations_topic: str,
        queue_capacity: int = 10_000,
        heartbeat_s: float = 15.0,
        replay_threads: int = 16,
    ):
        self.bootstrap = bootstrap
        self.decoder = decoder
        self.candle_topics = frozenset({candles_topic})
        self.anomaly_topics = frozenset({anomalies_topic, explanations_topic})
        self.queue_capacity = queue_capacity
        self.heartbeat_s = heartbeat_s
        self.joins = Joins()
        self.hub = Hub(
            bootstrap,
            decoder,
            [candles_topic, anomalies_topic, explanations_topic],
            {"candles": self._encode_candle, "anomalies": self._encode_anomaly},
            on_record=self._on_record,
            heartbeat_s=heartbeat_s,
        )
        self._pool = ThreadPoolExecutor(replay_threads, thread_name_prefix="replay")
        self.seen: dict[tuple[str, str], set[str]] = collections.defaultdict(set)

    async def start(self, wait_ready: float = 30.0) -> None:
        await self.hub.start(wait_ready)

    async def stop(self) -> None:
        await self.hub.stop()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _on_record(self, rec: Record) -> None:
        if rec.kind == "candle":
            self.seen[(rec.value.exchange, rec.value.symbol)].add(rec.value.interval)
        else:
            self.joins.add(rec)

    # --- encoders (one serialized event per record and cursor) ----------------------------

    @staticmethod
    def _encode_candle(rec: Record, cursor: Positions, replay_: bool = False) -> bytes:
        data: bytes = pb.CandleEvent(
            candle=convert.candle_to_pb(rec.value),
            cursor=convert.cursor_to_pb(cursor),
            kafka_timestamp_us=rec.timestamp_us,
            replay=replay_,
        ).SerializeToString()
        return data

    def _encode_anomaly(self, rec: Record, cursor: Positions, replay_: bool = False) -> bytes:
        ev = pb.AnomalyEvent(
            cursor=convert.cursor_to_pb(cursor), kafka_timestamp_us=rec.timestamp_us, replay=replay_
        )
        if rec.kind == "anomaly":
            ev.anomaly.CopyFrom(self.joins.pair(rec.value.anomaly_id))
        else:
            ev.explanation_update.CopyFrom(self.joins.pair(rec.value.anomaly_id))
        data: bytes = ev.SerializeToString()
        return data

    # --- filters --------------------------------------------------------------------------

    @staticmethod
    def candle_filter(req: Any) -> Callable[[Record], bool]:
        symbols = frozenset(req.symbols)
        intervals = frozenset(req.intervals)
        exchanges = frozenset(req.exchanges)

        def accept(rec: Record) -> bool:
            c = rec.value
            return (
                c.symbol in symbols
                and (not intervals or c.interval in intervals)
                and (not exchanges or c.exchange in exchanges)
            )

        return accept

    def anomaly_filter(self, req: Any) -> Callable[[Record], bool]:
        symbols = frozenset(req.symbols)

        def accept(rec: Record) -> bool:
            if not symbols:
                return True
            if rec.kind == "anomaly":
                return rec.value.symbol in symbols
            a = self.joins.anomalies.get(rec.value.anomaly_id)
            return a is not None and a.symbol in symbols

        return accept

    # --- the stream -----------------------------------------------------------------------

    async def _start_positions(self, req: Any, topics: frozenset[str]) -> Positions | None:
        which = req.WhichOneof("start")
        if which is None:
            return None  # live from the hub's position
        loop = asyncio.get_running_loop()
        tps = await loop.run_in_executor(self._pool, partitions, self.bootstrap, sorted(topics))
        if which == "cursor":
            given = convert.cursor_from_pb(req.cursor)
            # A partition missing from the cursor is read from its beginning.
            earliest = await loop.run_in_executor(
                self._pool, list_offsets, self.bootstrap, tps, "earliest"
            )
            latest = await loop.run_in_executor(
                self._pool, list_offsets, self.bootstrap, tps, "latest"
            )
            check_cursor(given, earliest, latest)
            return {tp: given.get(tp, earliest[tp]) for tp in tps}
        if which == "start_time_us":
            return await loop.run_in_executor(
                self._pool,
                lambda: list_offsets(self.bootstrap, tps, "timestamp", req.start_time_us),
            )
        return await loop.run_in_executor(self._pool, list_offsets, self.bootstrap, tps, "earliest")

    async def _replay(
        self,
        start: Positions,
        stop: Positions,
        accept: Callable[[Record], bool],
        encode: Callable[..., bytes],
        stream: str,
    ) -> AsyncIterator[bytes]:
        """Events for [start, stop); advances `start` in place (it becomes the cursor)."""
        loop = asyncio.get_running_loop()
        it = replay(self.bootstrap, self.decoder, dict(start), stop)
        empty: list[Record] = []  # sentinel: the replay iterator is exhausted
        while True:
            batch = await loop.run_in_executor(self._pool, next, it, empty)
            if batch is empty:
                break
            metrics.REPLAYED.labels(stream).inc(len(batch))
            for rec in batch:
                if rec.kind != "candle":
                    self.joins.add(rec)
                start[(rec.topic, rec.partition)] = rec.offset + 1
                if accept(rec):
                    yield encode(rec, start, True)
        # Filtered tails and transaction markers: the cursor may move to `stop`.
        for tp, o in stop.items():
            start[tp] = max(start.get(tp, 0), o)

    async def stream(self, kind: str, req: Any, peer: str = "") -> AsyncIterator[bytes]:
        """Serialized events of one subscription; raises SlowClient when it fell behind."""
        topics = self.candle_topics if kind == "candles" else self.anomaly_topics
        accept = self.candle_filter(req) if kind == "candles" else self.anomaly_filter(req)
        encode = self._encode_candle if kind == "candles" else self._encode_anomaly
        if not self.hub.ready.is_set():
            await asyncio.wait_for(self.hub.ready.wait(), 30)
        pos = await self._start_positions(req, topics)
        if pos is not None:
            # Catch up in rounds while the hub moves on, so the live queue stays small.
            for _ in range(10):
                target = self.hub.position(topics)
                behind = sum(max(0, o - pos.get(tp, 0)) for tp, o in target.items())
                if behind <= self.queue_capacity // 4:
                    break
                async for ev in self._replay(pos, target, accept, encode, kind):
                    yield ev
        sub = Subscriber(kind, topics, accept, self.queue_capacity, dict(pos or {}))
        start = self.hub.register(sub)
        metrics_label = f"{kind}:{peer}"
        try:
            if pos is not None:
                async for ev in self._replay(pos, start, accept, encode, kind):
                    yield ev
            last_cursor = dict(pos or start)
            # Live from here: tell the client at once, with the cursor to resume from.
            yield self._heartbeat(kind, last_cursor)
            # Pack what is ready into one message: a window close's candles (1m, 5m, ...)
            # cost one gRPC send per subscriber instead of one each.
            batch = kind == "candles" and req.batch
            lag_hist = metrics.DELIVERY_LAG[kind]
            loop = asyncio.get_running_loop()
            while True:
                if not sub.queue:
                    if sub.overflowed:
                        raise SlowClient(last_cursor)
                    if sub.heartbeat_due:  # set by the hub's ticker (no timer per wait)
                        sub.heartbeat_due = False
                        sub.last_sent = time.monotonic()
                        yield self._heartbeat(kind, last_cursor)
                        continue
                    sub.waiter = loop.create_future()
                    try:
                        await sub.waiter
                    finally:
                        sub.waiter = None
                    continue
                n, lag_s = 0, 0.0
                while sub.queue:  # drain; metrics once per drain
                    if batch and len(sub.queue) > 1:
                        parts: list[bytes] = []
                        while sub.queue and len(parts) < MAX_BATCH:
                            rec, payload = sub.queue.popleft()
                            last_cursor[(rec.topic, rec.partition)] = rec.offset + 1
                            lag_s = (now_us() - rec.timestamp_us) / 1e6
                            lag_hist.observe(lag_s)
                            parts.append(payload)
                        n += len(parts)
                        yield pack_events(parts)
                        continue
                    rec, payload = sub.queue.popleft()
                    last_cursor[(rec.topic, rec.partition)] = rec.offset + 1
                    lag_s = (now_us() - rec.timestamp_us) / 1e6
                    lag_hist.observe(lag_s)
                    n += 1
                    yield payload
                metrics.MESSAGES_SENT[kind] += n
                metrics.STREAM_LAG[metrics_label] = lag_s
                sub.last_sent = time.monotonic()
        finally:
            self.hub.unregister(sub)
            metrics.STREAM_LAG.pop(metrics_label, None)

    def _heartbeat(self, kind: str, cursor: Positions) -> bytes:
        cls = pb.CandleEvent if kind == "candles" else pb.AnomalyEvent
        data: bytes = cls(
            heartbeat=pb.Heartbeat(server_time_us=now_us()), cursor=convert.cursor_to_pb(cursor)
        ).SerializeToString()
        return data
