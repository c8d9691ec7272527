"""Replay recorded trades into Kafka at a speed factor, preserving event times.

Sources: data.binance.vision trade/aggTrade files (zip or csv, with or without header,
ms or µs, spot or futures; read by candleflow.binance_files) and recorded WebSocket
captures (ingest.captures, parsed by the same adapters as live frames). Trades keep
their exchange time; the ingest time is the recorded receive time where the capture has
one, else the trade's own time, so a replay is deterministic and produces the same
records every time. Speed: 1 = as recorded, N = N times faster, None = as fast as the
producer goes. Within one run a trade seen twice (overlapping files) is produced once.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from candleflow.binance_files import read_trades
from candleflow.domain import Trade
from ingest import ADAPTERS, metrics
from ingest.captures import is_capture, read_frames
from ingest.common import DEFAULT_OPTIONS, Reject
from ingest.connection import Sink
from ingest.gaps import GapTracker
from ingest.resume import Market, Skipper

log = logging.getLogger(__name__)

BATCH = 512  # trades handed to the producer at once


@dataclass
class ReplayResult:
    trades: int = 0
    duplicates: int = 0
    rejects: int = 0
    frames: int = 0
    seconds: float = 0.0
    stopped: bool = False
    resumed_past: int = 0  # trades skipped because the topic already had them (resume)


def _capture_batches(path: Path) -> Iterator[list[Trade] | Reject]:
    for frame in read_frames(path):
        adapter = ADAPTERS[frame.exchange]
        if frame.ts is not None:
            result = adapter.parse(frame.data, int(frame.ts * 1_000_000), DEFAULT_OPTIONS)
        else:
            result = adapter.parse(frame.data, 0, DEFAULT_OPTIONS)
            if not isinstance(result, Reject):
                result = [dataclasses.replace(t, ingest_time_us=t.event_time_us) for t in result]
        if isinstance(result, Reject):
            # other channels the recorder subscribed to (books, tickers) are not ours to
            # reject on replay: only frames that claim to be trades count
            if result.reason.value != "UNEXPECTED_MESSAGE":
                yield result
            continue
        if result:
            yield list(result)


def _file_batches(
    path: Path, kind: str | None = None, symbol: str | None = None
) -> Iterator[list[Trade] | Reject]:
    batch: list[Trade] = []
    for trade in read_trades(path, file_kind=kind, symbol=symbol):
        batch.append(trade)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def batches(
    path: str | Path, kind: str | None = None, symbol: str | None = None
) -> Iterator[list[Trade] | Reject]:
    """The trades of a file, in recorded order, in small lists (and rejects of captures).
    `kind` and `symbol` apply to data.binance.vision files (default: from the content and
    the file name, see candleflow.binance_files.read_trades)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(path)
    return _capture_batches(path) if is_capture(path) else _file_batches(path, kind, symbol)


class Pacer:
    """Sleeps so that event time advances `speed` times faster than the wall clock."""

    def __init__(self, speed: float | None, stop: threading.Event) -> None:
        self.speed = speed
        self.stop = stop
        self._t0: int | None = None
        self._w0 = 0.0

    def wait_for(self, event_time_us: int) -> None:
        if not self.speed:
            return
        if self._t0 is None:
            self._t0, self._w0 = event_time_us, time.monotonic()
            return
        ahead = self._w0 + (event_time_us - self._t0) / 1e6 / self.speed - time.monotonic()
        if ahead > 0.002:
            self.stop.wait(ahead)


def replay(
    paths: list[str | Path],
    sink: Sink,
    *,
    speed: float | None = None,
    stop: threading.Event | None = None,
    progress: Callable[[int], None] | None = None,
    resume_after: dict[Market, Trade] | None = None,
    kind: str | None = None,
    symbol: str | None = None,
) -> ReplayResult:
    """Produce every trade of `paths` into `sink`; returns what was done. `kind` and `symbol`
    apply to every data.binance.vision file (see `batches`). With `resume_after`
    (ingest.resume.last_trades of the topic), each market's trades up to and including that
    trade are skipped: a killed replay, restarted, continues where it was."""
    stop = stop or threading.Event()
    skipper = Skipper(resume_after or {})
    pacer = Pacer(speed, stop)
    tracker = GapTracker()
    result = ReplayResult()
    started = time.monotonic()
    for path in paths:
        exchange = Path(path).name
        for item in batches(path, kind, symbol):
            if stop.is_set():
                result.stopped = True
                break
            if isinstance(item, Reject):
                result.rejects += 1
                metrics.REJECTS.labels(item.exchange, item.reason.value).inc()
                sink.produce_reject(item)
                continue
            result.frames += 1
            if skipper.waiting:
                kept = skipper.keep(item)
                if progress is not None and len(kept) < len(item):
                    progress(len(item) - len(kept))
                item = kept
                if not item:
                    continue
            pacer.wait_for(item[0].event_time_us)
            fresh = [t for t in item if tracker.observe(t)[0]]
            result.duplicates += len(item) - len(fresh)
            if fresh:
                sink.produce_many(fresh)
                sink.poll(0)  # serve delivery reports once per batch
                result.trades += len(fresh)
                metrics.TRADES.labels(fresh[0].exchange, "replay").inc(len(fresh))
            if progress is not None:
                progress(len(item))
        if result.stopped:
            break
        log.info("replayed %s: %d trades so far", exchange, result.trades)
    result.seconds = time.monotonic() - started
    result.resumed_past = skipper.skipped
    if not result.stopped:
        skipper.check_done()
    return result
