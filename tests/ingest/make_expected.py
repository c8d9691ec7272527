"""Regenerate tests/ingest/data/expected_trades.tsv from the recorded captures.

Run once, then REVIEW the diff by hand against the raw frames before committing: this
file is the reference the parser tests compare with, value by value.
    .venv/bin/python tests/ingest/make_expected.py
"""

from __future__ import annotations

from pathlib import Path

from devstack.sample_data import CAPTURES
from ingest import ADAPTERS
from ingest.captures import read_frames
from ingest.common import Reject

OUT = Path(__file__).parent / "data" / "expected_trades.tsv"
COLUMNS = (
    "exchange",
    "symbol",
    "native_symbol",
    "trade_id",
    "price",
    "quantity",
    "side",
    "event_time_us",
    "first_trade_id",
    "last_trade_id",
    "kind",
)


def rows() -> dict[tuple[str, str, int], str]:
    out: dict[tuple[str, str, int], str] = {}
    for path in sorted(CAPTURES.glob("*.jsonl*")):
        for frame in read_frames(path):
            result = ADAPTERS[frame.exchange].parse(frame.data, 0)
            if isinstance(result, Reject):
                continue
            for t in result:
                out[(t.exchange, t.symbol, t.trade_id)] = "\t".join(
                    "" if v is None else str(v)
                    for v in (
                        t.exchange,
                        t.symbol,
                        t.native_symbol,
                        t.trade_id,
                        t.price,
                        t.quantity,
                        t.side.value,
                        t.event_time_us,
                        t.first_trade_id,
                        t.last_trade_id,
                        t.kind.value,
                    )
                )
    return out


if __name__ == "__main__":
    lines = ["\t".join(COLUMNS)] + [rows()[k] for k in sorted(rows())]
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {len(lines) - 1} trades to {OUT}")
