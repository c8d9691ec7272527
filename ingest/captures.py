"""Recorded WebSocket sessions: read the frames back exactly as they were received.

Two layouts are found in shared/data/captures/:
- `<EXCHANGE>.jsonl.zst`: cryptofeed's recording format, one JSON object a line
  (`{"t":"header",...}`, then `{"t":"recv"|"send"|"http"|"connect", "conn", "ts", "data"}`);
- `<exchange>_*.jsonl`: one raw frame a line, the exchange named by the file name.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import zstandard

from candleflow.domain import EXCHANGES


@dataclass(frozen=True, slots=True)
class Frame:
    exchange: str
    conn: str  # connection id within the recording
    ts: float | None  # receive time in epoch seconds, when recorded
    data: str  # the raw frame text


def _open_text(path: Path) -> io.TextIOBase:
    raw = path.open("rb")
    if path.suffix == ".zst":
        stream = zstandard.ZstdDecompressor().stream_reader(raw, closefd=True)
        return io.TextIOWrapper(stream, encoding="utf-8")
    return io.TextIOWrapper(raw, encoding="utf-8")


def exchange_of(path: Path) -> str:
    name = path.name.lower()
    for exchange in EXCHANGES:
        if name.startswith(exchange):
            return exchange
    raise ValueError(
        f"cannot tell the exchange of capture {path.name!r} "
        f"(expected a name starting with one of {EXCHANGES})"
    )


def is_capture(path: Path) -> bool:
    return path.name.endswith((".jsonl", ".jsonl.zst"))


def read_frames(path: str | Path, exchange: str | None = None) -> Iterator[Frame]:
    """Every received WebSocket frame of a capture file, in recorded order."""
    path = Path(path)
    exchange = exchange or exchange_of(path)
    with _open_text(path) as lines:
        for line in lines:
            line = line.rstrip("\n")
            if not line:
                continue
            if line.startswith('{"t":'):
                record = json.loads(line)
                if record.get("t") == "recv":
                    yield Frame(
                        exchange, str(record.get("conn", "")), record.get("ts"), record["data"]
                    )
            else:
                yield Frame(exchange, path.name, None, line)
