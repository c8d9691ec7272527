"""One Kafka consumer per process, fanned out to every subscriber.

A thread reads candles, anomalies and explanations (read_committed) and hands decoded
batches to the event loop; `_dispatch` runs on the loop, so registering a subscriber and
dispatching a record never interleave: a subscriber registered at hub position P receives
exactly the records at offsets >= P (the seam of a resume, see serving/streams.py).

Slow clients: each subscriber has a bounded queue (ServingSettings.queue_capacity
events). When it is full the subscriber is cut off from the hub; its stream drains what
it has queued, then ends with RESOURCE_EXHAUSTED and a resume cursor, so memory per
subscriber stays bounded and one slow client never slows the others.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import structlog
from confluent_kafka import Consumer, TopicPartition

from serving import metrics
from serving.kafka_io import Decoder, Positions, Record, consumer_config, list_offsets, partitions

log = structlog.get_logger(__name__)

# Serializes one record as a stream event carrying the given resume cursor.
Encoder = Callable[[Record, Positions], bytes]


@dataclass(eq=False)
class Subscriber:
    """A stream's membership in the hub: which records it wants and its bounded queue."""

    stream: str  # "candles" or "anomalies"
    topics: frozenset[str]
    accept: Callable[[Record], bool]
    capacity: int
    floor: Positions  # skip records below the subscriber's own cursor (cursor ahead of hub)
    queue: collections.deque[tuple[Record, bytes]] = field(default_factory=collections.deque)
    ahead: Positions | None = None
    # The stream's task waits on this future when its queue is empty (a bare future: an
    # asyncio.Event costs a deque and a second future per wait, once per event x subscriber).
    waiter: asyncio.Future[None] | None = None
    overflowed: bool = False
    closed: bool = False
    heartbeat_due: bool = False
    last_sent: float = field(default_factory=time.monotonic)

    def offer(self, rec: Record, payload: bytes) -> None:
        if self.overflowed or rec.offset < self.floor.get((rec.topic, rec.partition), 0):
            return
        if len(self.queue) >= self.capacity:
            self.overflowed = True
        else:
            self.queue.append((rec, payload))
        self.wake()

    def wake(self) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)


class Hub:
    """The shared consumer and the subscriber registry. Call start() inside the loop."""

    def __init__(
        self,
        bootstrap: str,
        decoder: Decoder,
        topics: Iterable[str],
        encoders: dict[str, Encoder],
        on_record: Callable[[Record], None] | None = None,
        heartbeat_s: float = 15.0,
        batch: int = 500,
    ):
        self.bootstrap = bootstrap
        self.decoder = decoder
        self.topics = list(topics)
        self.positions: Positions = {}
        self.subscribers: set[Subscriber] = set()
        self._on_record = on_record
        self._heartbeat_s = heartbeat_s
        self._ticker: asyncio.Task[None] | None = None
        self._encoders = encoders
        self._batch = batch
        self._stop = threading.Event()
        self._inflight = threading.Semaphore(4)  # batches handed to the loop, not dispatched
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.ready = asyncio.Event()
        self.error: BaseException | None = None

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self, wait_ready: float = 30.0) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="hub-consumer", daemon=True)
        self._thread.start()
        self._ticker = asyncio.create_task(self._tick())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ready.wait(), wait_ready)

    async def stop(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.cancel()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 10)

    def _run(self) -> None:
        consumer: Consumer | None = None
        try:
            while not self._stop.is_set():  # topics may not exist yet when the server starts
                try:
                    tps = partitions(self.bootstrap, self.topics)
                    start = list_offsets(self.bootstrap, tps, "latest")
                    break
                except Exception as exc:  # noqa: BLE001 - retried, logged
                    log.warning("hub.waiting_for_topics", error=str(exc))
                    self._stop.wait(2.0)
            else:
                return
            consumer = Consumer(consumer_config(self.bootstrap))
            consumer.assign([TopicPartition(t, p, o) for (t, p), o in start.items()])
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self._set_start, start)
            log.info("hub.started", positions={f"{t}/{p}": o for (t, p), o in start.items()})
            while not self._stop.is_set():
                # consume(n, timeout) waits out the whole timeout unless n arrive: block on
                # the first record only, then take what is already fetched.
                first = consumer.poll(0.2)
                if first is None:
                    continue
                msgs = [first, *consumer.consume(self._batch - 1, 0)]
                batch = []
                for msg in msgs:
                    if msg.error() is not None:
                        log.warning("hub.consume_error", error=str(msg.error()))
                        continue
                    batch.append(self.decoder.decode(msg))
                if batch:
                    while not self._inflight.acquire(timeout=0.5):
                        if self._stop.is_set():
                            return
                    self._loop.call_soon_threadsafe(self._dispatch, batch)
        except BaseException as exc:  # surfaced through health and logs
            self.error = exc
            log.exception("hub.failed")
        finally:
            if consumer is not None:
                consumer.close()

    async def _tick(self) -> None:
        """One timer for all subscribers: wake those idle for a heartbeat interval."""
        while True:
            await asyncio.sleep(self._heartbeat_s / 4)
            now = time.monotonic()
            for sub in self.subscribers:
                if not sub.queue and now - sub.last_sent >= self._heartbeat_s:
                    sub.heartbeat_due = True
                    sub.wake()

    def _set_start(self, start: Positions) -> None:
        self.positions.update(start)
        self.ready.set()

    # --- on the event loop ----------------------------------------------------------------

    def _dispatch(self, batch: list[Record]) -> None:
        self._inflight.release()
        by_topic: dict[str, list[Subscriber]] = collections.defaultdict(list)
        for sub in self.subscribers:
            for t in sub.topics:
                by_topic[t].append(sub)
        for rec in batch:
            self.positions[(rec.topic, rec.partition)] = rec.offset + 1
            metrics.RECORDS_CONSUMED.labels(rec.topic).inc()
            if self._on_record is not None:
                self._on_record(rec)
            shared: dict[str, bytes] = {}  # one serialized event per stream kind, shared
            for sub in by_topic.get(rec.topic, ()):
                if not sub.accept(rec):
                    continue
                if sub.ahead is not None:  # its own cursor is ahead of the hub somewhere
                    payload = self._encoders[sub.stream](rec, self._cursor(sub, sub.ahead))
                    if all(self.positions.get(tp, 0) >= o for tp, o in sub.ahead.items()):
                        sub.ahead = None
                elif sub.stream in shared:
                    payload = shared[sub.stream]
                else:
                    payload = self._encoders[sub.stream](rec, self._cursor(sub, None))
                    shared[sub.stream] = payload
                sub.offer(rec, payload)
                if sub.overflowed and not sub.closed:
                    self.unregister(sub)
                    metrics.SLOW_CLIENTS.labels(sub.stream).inc()

    def _cursor(self, sub: Subscriber, ahead: Positions | None) -> Positions:
        pos = {tp: o for tp, o in self.positions.items() if tp[0] in sub.topics}
        if ahead:
            for tp, o in ahead.items():
                pos[tp] = max(pos.get(tp, 0), o)
        return pos

    def register(self, sub: Subscriber) -> Positions:
        """Add a subscriber; returns the hub position it starts at (the seam)."""
        if not self.ready.is_set():
            raise RuntimeError("the hub has not reached Kafka yet")
        start = {tp: o for tp, o in self.positions.items() if tp[0] in sub.topics}
        ahead = {tp: o for tp, o in sub.floor.items() if o > start.get(tp, 0)}
        sub.ahead = ahead or None
        self.subscribers.add(sub)
        metrics.SUBSCRIBERS.labels(sub.stream).inc()
        return start

    def unregister(self, sub: Subscriber) -> None:
        if not sub.closed:
            sub.closed = True
            self.subscribers.discard(sub)
            metrics.SUBSCRIBERS.labels(sub.stream).dec()

    def position(self, topics: Iterable[str]) -> Positions:
        wanted = set(topics)
        return {tp: o for tp, o in self.positions.items() if tp[0] in wanted}

    def healthy(self) -> bool:
        return self.error is None and self._thread is not None and self._thread.is_alive()


def now_us() -> int:
    return time.time_ns() // 1000
