"""Domain records <-> protobuf messages, and cursors <-> Kafka positions. Pure functions."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from candleflow.candle_map import CANDLE_COLUMNS, DERIVED_COLUMNS, Column, candle_from_row
from candleflow.decimal_text import plain
from candleflow.domain import Anomaly, Candle, Explanation
from serving.pb import pb

# A Kafka position: (topic, partition) -> next offset to read.
Positions = dict[tuple[str, int], int]


dec_str = plain  # exact decimal text: candleflow.decimal_text.plain

# The candle's fields come from the candle contract (candleflow.candle_map): the protobuf
# Candle names each field as the domain attribute does (timestamps `*_us`), decimals as
# their exact text ("" for none), optional ids unset for none.


_PB_COLUMNS = (*CANDLE_COLUMNS, *DERIVED_COLUMNS)  # stored fields, then derived (volatility)


def candle_to_pb(c: Candle, *, in_progress: bool = False) -> Any:
    fields: dict[str, Any] = {"in_progress": in_progress}
    for col in _PB_COLUMNS:
        value = getattr(c, col.attr)
        if value is not None:
            fields[col.attr] = plain(value) if col.kind == "decimal" else value
    return pb.Candle(**fields)


def _pb_value(m: Any, col: Column) -> Any:
    value = getattr(m, col.attr)
    if col.nullable and (value == "" if col.kind == "decimal" else not m.HasField(col.attr)):
        return None
    return value


def candle_from_pb(m: Any) -> Candle:
    return candle_from_row({col.name: _pb_value(m, col) for col in CANDLE_COLUMNS})


def anomaly_to_pb(a: Anomaly) -> Any:
    return pb.Anomaly(
        anomaly_id=a.anomaly_id,
        rule=a.rule,
        severity=a.severity,
        exchange=a.exchange,
        symbol=a.symbol,
        interval=a.interval,
        window_start_us=a.window_start_us,
        window_end_us=a.window_end_us,
        value=a.value,
        threshold=a.threshold,
        status=a.status,
        candle_revision=a.candle_revision,
        details=dict(a.details),
    )


def explanation_to_pb(e: Explanation) -> Any:
    return pb.Explanation(
        anomaly_id=e.anomaly_id,
        summary=e.summary,
        key_factors=list(e.key_factors),
        confidence=e.confidence,
        caveats=list(e.caveats),
        model=e.model,
        offline=e.offline,
        created_at_us=e.created_at_us,
    )


def cursor_to_pb(positions: Mapping[tuple[str, int], int]) -> Any:
    return pb.Cursor(
        offsets=[
            pb.PartitionOffset(topic=t, partition=p, offset=o)
            for (t, p), o in sorted(positions.items())
        ]
    )


def cursor_from_pb(cursor: Any) -> Positions:
    return {(o.topic, o.partition): o.offset for o in cursor.offsets}


def cursor_to_token(cursor: Any) -> str:
    """Opaque text form of a cursor (for trailing metadata and the command line)."""
    return base64.urlsafe_b64encode(cursor.SerializeToString()).decode()


def cursor_from_token(token: str) -> Any:
    return pb.Cursor.FromString(base64.urlsafe_b64decode(token.encode()))
