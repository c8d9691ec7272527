"""The one WebSocket loop every exchange runs through.

connect -> subscribe -> read frames -> parse -> drop already-sent trades -> produce,
with: jittered exponential backoff between attempts; a circuit breaker that stops
hammering an exchange that keeps failing; a staleness watchdog per connection where ANY
frame or a pong to our ping counts as activity (so a quiet symbol never causes a
restart, but a dead TCP connection does); resubscription on every new connection; gap
detection by trade-id continuity and REST backfill of the missing ids after a short
grace (reordered frames fill their own "gap" first and need no REST call).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
from aiohttp import WSMsgType

from candleflow.domain import Trade
from ingest import ADAPTERS, binance, coinbase, kraken, metrics
from ingest.backfill import fetch_gap
from ingest.common import METRICS_SYNC_S, SINK_POLL_S, ParseOptions, Reject, now_us
from ingest.gaps import Gap, GapTracker
from ingest.rest import RestError

log = logging.getLogger(__name__)


class Sink(Protocol):
    def produce_many(self, trades: list[Trade]) -> None: ...
    def produce_reject(self, reject: Reject) -> None: ...
    def poll(self, timeout: float = 0) -> int: ...


@dataclass(slots=True)
class LoopSettings:
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    stale_after_s: float = 30.0  # no frame and no pong for this long: reconnect
    ping_interval_s: float = 10.0
    breaker_failures: int = 5  # consecutive failed attempts that open the circuit
    breaker_open_s: float = 60.0
    backfill_grace_s: float = 1.0  # let reordered frames arrive before calling REST
    open_timeout_s: float = 10.0


@dataclass(slots=True)
class Endpoint:
    """Where and how one connection subscribes."""

    exchange: str
    url: str
    subscribe: list[str]
    aggregate: bool = False  # Binance aggTrade stream: backfill from /aggTrades
    contiguous_ids: bool = True


def endpoint(
    exchange: str,
    symbols: list[str],
    *,
    ws_base: str | None = None,
    binance_kind: str = "trade",
    coinbase_api: str = "advanced",
) -> Endpoint:
    """The URL and subscribe frames of one connection for these symbols."""
    if exchange == "binance":
        base = ws_base or binance.WS_URL
        return Endpoint(
            exchange,
            base.rstrip("/") + binance.combined_stream_path(symbols, binance_kind),
            [],
            aggregate=binance_kind == "aggTrade",
        )
    if exchange == "coinbase":
        default = (
            coinbase.ADVANCED_WS_URL if coinbase_api == "advanced" else coinbase.EXCHANGE_WS_URL
        )
        return Endpoint(
            exchange, ws_base or default, coinbase.subscribe_message(symbols, coinbase_api)
        )
    if exchange == "kraken":
        return Endpoint(exchange, ws_base or kraken.WS_URL, [kraken.subscribe_message(symbols)])
    raise ValueError(f"unknown exchange {exchange!r}; one of {sorted(ADAPTERS)}")


@dataclass(slots=True)
class CircuitBreaker:
    failures_to_open: int
    open_s: float
    failures: int = 0
    opened_at: float | None = None

    def record(self, ok: bool) -> None:
        if ok:
            self.failures, self.opened_at = 0, None
            return
        self.failures += 1
        if self.failures >= self.failures_to_open and self.opened_at is None:
            self.opened_at = time.monotonic()

    def wait_s(self) -> float:
        """Seconds until an attempt is allowed (half-open after open_s)."""
        if self.opened_at is None:
            return 0.0
        return max(0.0, self.opened_at + self.open_s - time.monotonic())


def backoff_s(attempt: int, settings: LoopSettings, rng: random.Random) -> float:
    """Exponential backoff with equal jitter: half fixed, half random, capped."""
    ceiling = min(settings.backoff_cap_s, settings.backoff_base_s * (2 ** min(attempt, 20)))
    return float(ceiling / 2 + rng.uniform(0, ceiling / 2))


@dataclass
class Stats:
    frames: int = 0
    trades: int = 0
    duplicates: int = 0
    rejects: int = 0
    controls: int = 0
    connects: int = 0
    gaps_found: int = 0  # missing trade ids still missing after the grace
    gaps_filled: int = 0
    gaps_unfillable: int = 0
    reordered: int = 0  # "missing" ids that arrived late on the stream by themselves
    sequence_gaps: int = 0
    last_activity: float = field(default_factory=time.monotonic)


class Connection:
    def __init__(
        self,
        endpoint: Endpoint,
        sink: Sink,
        *,
        options: ParseOptions | None = None,
        settings: LoopSettings | None = None,
        rest_base: str | None = None,
        tracker: GapTracker | None = None,
        seed: int | None = None,
        fast_lane: Callable[[Connection], Callable[[str | bytes], None]] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.sink = sink
        self.parse: Callable[..., Any] = ADAPTERS[endpoint.exchange].parse
        self.options = options or ParseOptions()
        self.settings = settings or LoopSettings()
        self.rest_base = rest_base
        self.tracker = tracker or GapTracker()
        self.stats = Stats()
        self.breaker = CircuitBreaker(self.settings.breaker_failures, self.settings.breaker_open_s)
        self._rng = random.Random(seed)
        self._gaps: asyncio.Queue[tuple[float, Gap]] = asyncio.Queue()
        self._sequence: int | None = None
        self._label = endpoint.exchange
        # Prometheus updates cost microseconds each (labels() lookup + a lock), more than
        # parsing a frame; the hot path counts in plain ints and sync_metrics() hands the
        # differences on at most every METRICS_SYNC_S (and when a session ends).
        self._trade_frames = self._control_frames = 0
        self._stream_trades = self._stream_duplicates = 0
        self._synced = (0, 0, 0, 0)
        self._synced_at = self._polled_at = time.monotonic()
        self._before_sync: Callable[[], None] | None = None  # the lane's fold of its counts
        # A fast lane chosen by the caller (ingest.lane.fast_lane: Binance frames into a sink
        # that takes Avro bytes) replaces receive(); it falls back to handle().
        if fast_lane is not None:
            self.receive = fast_lane(self)  # type: ignore[method-assign,assignment]

    # --- frames ---------------------------------------------------------------------

    def receive(self, frame: str | bytes) -> None:
        """What the WebSocket loop does with every frame: note the activity, handle the
        frame, and serve the sink's delivery reports every SINK_POLL_S (the sink also
        serves them every few dozen messages on its own)."""
        now = time.monotonic()
        self.stats.last_activity = now
        self.handle(frame)
        if now - self._polled_at >= SINK_POLL_S:
            self._polled_at = now
            self.sink.poll(0)

    def handle(self, frame: str | bytes) -> None:
        """Parse one frame and produce what is new. Synchronous: the hot path."""
        stats, ex = self.stats, self._label
        stats.frames += 1
        result = self.parse(frame, now_us(), self.options)
        if isinstance(result, Reject):
            stats.rejects += 1
            metrics.FRAMES.labels(ex, "reject").inc()
            metrics.REJECTS.labels(ex, result.reason.value).inc()
            self.sink.produce_reject(result)
            return
        if result.sequence is not None:
            if self._sequence is not None and result.sequence > self._sequence + 1:
                stats.sequence_gaps += 1
                metrics.SEQUENCE_GAPS.labels(ex).inc()
                log.warning(
                    "%s sequence jump %d -> %d: frames lost, trade ids will tell which",
                    ex,
                    self._sequence,
                    result.sequence,
                )
            self._sequence = result.sequence
        if result.control is not None:
            stats.controls += 1
            self._control_frames += 1
        else:
            self._trade_frames += 1
            fresh = self._admit(result)
            if fresh:
                self.sink.produce_many(fresh)
        if time.monotonic() - self._synced_at >= METRICS_SYNC_S:
            self.sync_metrics()

    def _admit(self, trades: list[Trade], source: str = "stream") -> list[Trade]:
        fresh = []
        observe = self.tracker.observe
        for trade in trades:
            new, gap = observe(trade)
            if new:
                fresh.append(trade)
            if gap is not None and self.endpoint.contiguous_ids:
                self._gaps.put_nowait((time.monotonic() + self.settings.backfill_grace_s, gap))
        dup = len(trades) - len(fresh)
        self.stats.duplicates += dup
        self.stats.trades += len(fresh)
        if source == "stream":  # the hot path: counted here, synced to Prometheus later
            self._stream_trades += len(fresh)
            self._stream_duplicates += dup
        else:
            if dup:
                metrics.DUPLICATES.labels(self._label).inc(dup)
            metrics.TRADES.labels(self._label, source).inc(len(fresh))
        return fresh

    def sync_metrics(self) -> None:
        """Hand the hot path's counts since the last sync on to Prometheus."""
        if self._before_sync is not None:
            self._before_sync()
        now = (
            self._trade_frames,
            self._control_frames,
            self._stream_trades,
            self._stream_duplicates,
        )
        trade_frames, control_frames, trades, dups = (
            a - b for a, b in zip(now, self._synced, strict=True)
        )
        ex = self._label
        if trade_frames:
            metrics.FRAMES.labels(ex, "trades").inc(trade_frames)
        if control_frames:
            metrics.FRAMES.labels(ex, "control").inc(control_frames)
        if trades:
            metrics.TRADES.labels(ex, "stream").inc(trades)
        if dups:
            metrics.DUPLICATES.labels(ex).inc(dups)
        self._synced = now
        self._synced_at = time.monotonic()

    # --- gap backfill ---------------------------------------------------------------

    async def _backfill_worker(self, session: aiohttp.ClientSession) -> None:
        while True:
            due, gap = await self._gaps.get()
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            await self.backfill(session, gap)

    async def backfill(self, session: aiohttp.ClientSession, gap: Gap) -> None:
        ex, tracker = self._label, self.tracker
        missing = tracker.missing_in(gap.exchange, gap.symbol, gap.first_id, gap.last_id)
        self.stats.reordered += gap.size - len(missing)
        if not missing:
            return
        self.stats.gaps_found += len(missing)
        metrics.GAPS_FOUND.labels(ex).inc(len(missing))
        lo, hi = missing[0], missing[-1]
        log.warning(
            "%s %s: %d trade ids missing in %d..%d, backfilling over REST",
            ex,
            gap.symbol,
            len(missing),
            lo,
            hi,
        )
        try:
            trades = await fetch_gap(
                session,
                Gap(gap.exchange, gap.symbol, lo, hi, gap.after_time_us),
                rest_base=self.rest_base,
                aggregate=self.endpoint.aggregate,
            )
        except RestError as exc:
            log.error("%s %s: backfill of %d..%d failed: %s", ex, gap.symbol, lo, hi, exc)
            trades = []
        fresh = self._admit(trades, "backfill")
        if fresh:
            self.sink.produce_many(fresh)
        self.stats.gaps_filled += len(fresh)
        metrics.GAPS_FILLED.labels(ex).inc(len(fresh))
        unfillable = tracker.give_up(gap.exchange, gap.symbol, lo, hi)
        if unfillable:
            self.stats.gaps_unfillable += unfillable
            metrics.GAPS_UNFILLABLE.labels(ex).inc(unfillable)
            log.error(
                "%s %s: %d trade ids in %d..%d could not be backfilled",
                ex,
                gap.symbol,
                unfillable,
                lo,
                hi,
            )
        else:
            log.info("%s %s: gap %d..%d filled (%d trades)", ex, gap.symbol, lo, hi, len(fresh))

    async def drain_gaps(self, session: aiohttp.ClientSession) -> None:
        """Backfill every queued gap now (shutdown and tests)."""
        while not self._gaps.empty():
            _, gap = self._gaps.get_nowait()
            await self.backfill(session, gap)

    # --- the loop -------------------------------------------------------------------

    async def _watchdog(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Ping; a pong (or any frame, see _read) is activity. Stale -> close."""
        stats, settings = self.stats, self.settings
        while True:
            await asyncio.sleep(min(settings.ping_interval_s, settings.stale_after_s / 2))
            if time.monotonic() - stats.last_activity > settings.stale_after_s:
                log.warning(
                    "%s: no frame or pong for %.0fs, reconnecting",
                    self._label,
                    settings.stale_after_s,
                )
                metrics.RECONNECTS.labels(self._label, "stale").inc()
                return  # the reader sees this task end and leaves (close is bounded)
            with contextlib.suppress(Exception):
                await ws.ping()  # the reader notes the pong as activity

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Every frame of the connection into receive(), until it closes.

        One task reads for the connection's whole life; stop and the watchdog cancel it
        (only ever at an await, never halfway through a frame). Racing a fresh recv()
        future against them per frame cost ~20 µs a frame, more than the whole parse +
        encode + produce of its trades. Pings are answered here and pongs (to the
        watchdog's pings) count as activity."""
        receive, stats = self.receive, self.stats
        count = 0
        while True:
            msg = await ws.receive()
            kind = msg.type
            if kind is WSMsgType.TEXT or kind is WSMsgType.BINARY:
                receive(msg.data)
                count += 1
                if not count & 63:
                    # receive() hands back buffered frames without yielding: let the
                    # watchdog, the stop signal and the backfill worker run now and then
                    await asyncio.sleep(0)
            elif kind is WSMsgType.PING:
                stats.last_activity = time.monotonic()
                await ws.pong(msg.data)
            elif kind is WSMsgType.PONG:
                stats.last_activity = time.monotonic()
            else:  # CLOSE, CLOSING, CLOSED, ERROR
                log.warning(
                    "%s: connection closed: %s %s", self._label, kind.name, msg.data or msg.extra
                )
                return

    async def _session(self, stop: asyncio.Event) -> bool:
        """One connection's life; True if it received at least one frame.

        aiohttp's WebSocket client, not the websockets library: its compiled frame reader
        costs ~7 µs of CPU a frame against ~17 µs (bench/ingest/ws_read.py)."""
        frames_before = self.stats.frames
        # no total timeout: the connection lives for hours; the handshake is bounded below
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        async with session:
            async with asyncio.timeout(self.settings.open_timeout_s):
                ws = await session.ws_connect(
                    self.endpoint.url,
                    timeout=aiohttp.ClientWSTimeout(ws_close=2),
                    autoping=False,  # _read answers pings and sees pongs (watchdog activity)
                    heartbeat=None,
                    max_msg_size=2**24,
                )
            return await self._connected(stop, ws, frames_before)

    async def _connected(
        self, stop: asyncio.Event, ws: aiohttp.ClientWebSocketResponse, frames_before: int
    ) -> bool:
        async with ws:
            self.stats.connects += 1
            self._sequence = None  # sequence numbers count per connection
            for message in self.endpoint.subscribe:
                await ws.send_str(message)
            self.stats.last_activity = time.monotonic()
            reader = asyncio.create_task(self._read(ws))
            watchdog = asyncio.create_task(self._watchdog(ws))
            stopper = asyncio.create_task(stop.wait())
            try:
                # ends when the connection closes, stop is requested or the watchdog gives up
                await asyncio.wait({reader, watchdog, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if reader.done():
                    reader.result()  # closed (logged) or a real error, which propagates
            finally:
                for task in (reader, watchdog, stopper):
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
                self.sync_metrics()
        return self.stats.frames > frames_before

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, read and reconnect until `stop` is set."""
        attempt = 0
        async with aiohttp.ClientSession() as session:
            worker = asyncio.create_task(self._backfill_worker(session))
            try:
                while not stop.is_set():
                    wait = self.breaker.wait_s()
                    metrics.CIRCUIT_OPEN.labels(self._label).set(1 if wait else 0)
                    if wait:
                        log.error(
                            "%s: circuit open after %d failures, next try in %.0fs",
                            self._label,
                            self.breaker.failures,
                            wait,
                        )
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), wait)
                        continue
                    reason = "closed"
                    try:
                        ok = await self._session(stop)
                    except (OSError, TimeoutError, aiohttp.ClientError) as exc:
                        ok, reason = False, type(exc).__name__
                        log.warning("%s: connection failed: %s", self._label, exc)
                    self.breaker.record(ok)
                    if stop.is_set():
                        break
                    attempt = 0 if ok else attempt + 1
                    metrics.RECONNECTS.labels(self._label, reason).inc()
                    delay = backoff_s(attempt, self.settings, self._rng)
                    log.info("%s: reconnecting in %.2fs (%s)", self._label, delay, reason)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), delay)
                await self.drain_gaps(session)
            finally:
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker

    def healthy(self) -> bool:
        return (
            self.breaker.wait_s() == 0
            and time.monotonic() - self.stats.last_activity < 2 * self.settings.stale_after_s
        )
