"""The compact context of one anomaly, given to the model as quoted data.

Everything here is numbers and identifiers computed by Candleflow. Any outside text (for
example a headline) goes into `notes` as a JSON string inside the <data> block: the
system prompt tells the model that the block is data, never instructions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from candleflow.domain import Anomaly, Candle


def utc(us: int) -> str:
    return datetime.fromtimestamp(us / 1_000_000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _dec(x: Decimal | None) -> str | None:
    return None if x is None else format(x.normalize(), "f")


def candle_row(c: Candle) -> dict[str, object]:
    return {
        "window_start": utc(c.window_start_us),
        "open": _dec(c.open),
        "high": _dec(c.high),
        "low": _dec(c.low),
        "close": _dec(c.close),
        "volume": _dec(c.volume),
        "trades": c.trade_count,
        "empty": c.is_empty,
        "revision": c.revision,
    }


@dataclass(frozen=True)
class AnomalyContext:
    anomaly: Anomaly
    series: list[Candle] = field(default_factory=list)  # same market, up to and incl. the window
    peers: list[Candle] = field(default_factory=list)  # same symbol and window, other exchanges
    notes: list[str] = field(default_factory=list)  # outside text: quoted data only

    def to_dict(self) -> dict[str, object]:
        a = self.anomaly
        return {
            "anomaly": {
                "rule": a.rule,
                "severity": a.severity,
                "exchange": a.exchange,
                "symbol": a.symbol,
                "interval": a.interval,
                "window_start": utc(a.window_start_us),
                "window_end": utc(a.window_end_us),
                "value": a.value,
                "threshold": a.threshold,
                "numbers": dict(sorted(a.details.items())),
            },
            "candles_same_market": [candle_row(c) for c in self.series],
            "same_symbol_other_exchanges": [
                {"exchange": c.exchange, **candle_row(c)} for c in self.peers
            ],
            "notes": list(self.notes),
        }

    def render(self) -> str:
        """The user message: the data block, quoted as JSON, then the request."""
        data = json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=False)
        return (
            "<data>\n" + data + "\n</data>\n"
            "Explain this anomaly for a trader, using only the data above. "
            "Answer with the record_explanation tool."
        )
