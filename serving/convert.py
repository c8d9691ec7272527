"""Domain records <-> protobuf messages, and cursors <-> Kafka positions. Pure functions."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from candleflow.domain import Anomaly, Candle, Explanation
from serving.pb import pb

# A Kafka position: (topic, partition) -> next offset to read.
Positions = dict[tuple[str, int], int]


def dec_str(value: Decimal | None) -> str:
    """Exact decimal text without exponent or trailing zeros ("50000", "0.00012")."""
    if value is None:
        return ""
    # Not Decimal.normalize(): it rounds to the context precision (28 digits).
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def candle_to_pb(c: Candle, *, in_progress: bool = False) -> Any:
    msg = pb.Candle(
        exchange=c.exchange,
        symbol=c.symbol,
        interval=c.interval,
        window_start_us=c.window_start_us,
        window_end_us=c.window_end_us,
        open=dec_str(c.open),
        high=dec_str(c.high),
        low=dec_str(c.low),
        close=dec_str(c.close),
        volume=dec_str(c.volume),
        quote_volume=dec_str(c.quote_volume),
        trade_count=c.trade_count,
        taker_buy_volume=dec_str(c.taker_buy_volume),
        taker_buy_quote_volume=dec_str(c.taker_buy_quote_volume),
        vwap=dec_str(c.vwap),
        revision=c.revision,
        is_empty=c.is_empty,
        in_progress=in_progress,
        volatility=dec_str(c.volatility),
    )
    if c.first_trade_id is not None:
        msg.first_trade_id = c.first_trade_id
    if c.last_trade_id is not None:
        msg.last_trade_id = c.last_trade_id
    return msg


def candle_from_pb(m: Any) -> Candle:
    return Candle(
        exchange=m.exchange,
        symbol=m.symbol,
        interval=m.interval,
        window_start_us=m.window_start_us,
        window_end_us=m.window_end_us,
        open=Decimal(m.open),
        high=Decimal(m.high),
        low=Decimal(m.low),
        close=Decimal(m.close),
        volume=Decimal(m.volume),
        quote_volume=Decimal(m.quote_volume),
        trade_count=m.trade_count,
        taker_buy_volume=Decimal(m.taker_buy_volume),
        taker_buy_quote_volume=Decimal(m.taker_buy_quote_volume),
        vwap=Decimal(m.vwap) if m.vwap else None,
        first_trade_id=m.first_trade_id if m.HasField("first_trade_id") else None,
        last_trade_id=m.last_trade_id if m.HasField("last_trade_id") else None,
        revision=m.revision,
        is_empty=m.is_empty,
    )


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
