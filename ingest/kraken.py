"""Kraken trades: WebSocket v2 `trade` channel (trade_id per book, a snapshot of the last
50 on subscribe), the v1 array frames found in recorded captures, and REST backfill.

v2 sends prices and quantities as JSON numbers, so v2 frames are read with every number
as an exact Decimal (never through float). v1 trades carry no trade id: a stable id is
derived from the trade time (µs x 1000 + position among trades of the same µs in the
frame), which identifies a trade for dedup but is not contiguous, so gap detection
applies to v2 only (`IDS_CONTIGUOUS_V1 = False`).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from candleflow.domain import InstrumentKind, Side, Trade
from candleflow.symbols import base_quote, from_slash
from ingest.common import (
    DEFAULT_OPTIONS,
    Bad,
    ParseOptions,
    Reject,
    RejectReason,
    TradeBatch,
    admit,
    batch,
    check_symbol,
    dec,
    get,
    integer,
    iso_to_us,
    make_trade,
    parse_json,
    reject,
    seconds_to_us,
)
from ingest.rest import RestRequest

EXCHANGE = "kraken"
WS_URL = "wss://ws.kraken.com/v2"
REST_URL = "https://api.kraken.com"
REST_MAX_COUNT = 1000
IDS_CONTIGUOUS_V1 = False
SNAPSHOT_SIZE = 50  # v2 sends the last 50 trades on subscribe

_SIDES = {"buy": Side.BUY, "sell": Side.SELL, "b": Side.BUY, "s": Side.SELL}
_V1_CONTROL = {"heartbeat": "heartbeat", "systemStatus": "status", "pong": "pong"}
_V2_CONTROL = {"heartbeat": "heartbeat", "status": "status"}
_REST_ALIASES = {"BTC": "XBT", "DOGE": "XDG"}


def subscribe_message(symbols: list[str], snapshot: bool = True) -> str:
    """v2 subscribe to the trade channel (Kraken's own v2 symbols: BTC/USD)."""
    pairs = ["/".join(base_quote(s)) for s in symbols]
    return json.dumps(
        {
            "method": "subscribe",
            "params": {"channel": "trade", "symbol": pairs, "snapshot": snapshot},
        }
    )


@lru_cache(maxsize=4096)
def _canonical(native: str) -> str:
    return from_slash(native)


def canonical(native: Any) -> str:
    if type(native) is not str or "/" not in native:
        raise Bad(RejectReason.UNKNOWN_SYMBOL, f"pair {str(native)[:40]!r}")
    return _canonical(native)


def _side(value: Any) -> Side:
    side = _SIDES.get(value) if type(value) is str else None
    if side is None:
        raise Bad(RejectReason.BAD_TYPE, f"side {str(value)[:20]!r}")
    return side


def _v2_trade(row: Any, ingest_time_us: int, options: ParseOptions) -> Trade:
    if type(row) is not dict:
        raise Bad(RejectReason.BAD_TYPE, "trade is not an object")
    native = get(row, "symbol")
    symbol = canonical(native)
    event_time_us = iso_to_us(get(row, "timestamp"), "timestamp")
    admit(symbol, event_time_us, ingest_time_us, options)
    return Trade(
        exchange=EXCHANGE,
        symbol=symbol,
        native_symbol=native,
        trade_id=integer(get(row, "trade_id"), "trade_id"),
        price=dec(get(row, "price"), "price"),
        quantity=dec(get(row, "qty"), "qty"),
        side=_side(get(row, "side")),
        event_time_us=event_time_us,
        ingest_time_us=ingest_time_us,
        kind=InstrumentKind.SPOT,
    )


def _v1(obj: list[Any], ingest_time_us: int, options: ParseOptions) -> TradeBatch:
    if len(obj) < 4 or obj[-2] != "trade":
        name = obj[-2] if len(obj) >= 3 and type(obj[-2]) is str else "?"
        raise Bad(RejectReason.UNEXPECTED_MESSAGE, f"v1 channel {name[:40]!r} is not trade")
    native = obj[-1]
    symbol = canonical(native)
    check_symbol(symbol, options)
    rows = obj[1]
    if type(rows) is not list:
        raise Bad(RejectReason.BAD_TYPE, "v1 trades is not an array")
    trades: list[Trade] = []
    last_time, same_time = -1, 0
    for row in rows:
        if type(row) is not list:
            raise Bad(RejectReason.BAD_TYPE, "v1 trade is not an array")
        event_time_us = seconds_to_us(get(row, 2, "time"), "time")
        admit(symbol, event_time_us, ingest_time_us, options)
        same_time = same_time + 1 if event_time_us == last_time else 0
        last_time = event_time_us
        trades.append(
            make_trade(  # Trade(...) with every field, positional (hot path)
                EXCHANGE,
                symbol,
                native,
                event_time_us * 1000 + same_time,
                dec(get(row, 0, "price"), "price"),
                dec(get(row, 1, "volume"), "volume"),
                _side(get(row, 3, "side")),
                event_time_us,
                ingest_time_us,
                None,
                None,
                InstrumentKind.SPOT,
                None,
                None,
            )
        )
    return batch(trades)


def _v2(obj: dict[str, Any], ingest_time_us: int, options: ParseOptions) -> TradeBatch:
    channel = obj.get("channel")
    if channel == "trade":
        rows = get(obj, "data")
        if type(rows) is not list:
            raise Bad(RejectReason.BAD_TYPE, "data is not an array")
        trades = [_v2_trade(row, ingest_time_us, options) for row in rows]
        if len(trades) > 1:
            trades.sort(key=lambda t: (t.symbol, t.trade_id))
        return batch(trades)
    if channel in _V2_CONTROL:
        return batch(control=_V2_CONTROL[channel])
    method = obj.get("method")
    if method is not None:
        if obj.get("success", True) is not True:
            raise Bad(
                RejectReason.UNEXPECTED_MESSAGE, f"{method} failed: {str(obj.get('error'))[:100]}"
            )
        return batch(control=str(method)[:40])
    event = obj.get("event")
    if event in _V1_CONTROL:
        return batch(control=_V1_CONTROL[event])
    if event == "subscriptionStatus":
        if obj.get("status") == "error":
            raise Bad(
                RejectReason.UNEXPECTED_MESSAGE,
                f"subscription error: {str(obj.get('errorMessage'))[:100]}",
            )
        return batch(control="subscription")
    if channel is None and event is None:
        raise Bad(RejectReason.MISSING_FIELD, "missing channel/event")
    raise Bad(RejectReason.UNEXPECTED_MESSAGE, f"channel {str(channel or event)[:40]!r}")


def parse(
    frame: str | bytes, ingest_time_us: int, options: ParseOptions = DEFAULT_OPTIONS
) -> TradeBatch | Reject:
    """A v2 object frame or a v1 array frame -> trades in id order, control, or Reject."""
    try:
        # v1 arrays carry numbers as strings: the fast reader is exact for them.
        first = frame[:1]
        v1 = first == "[" or first == b"["
        obj = parse_json(frame, exact=not v1)
        if type(obj) is list:
            return _v1(obj, ingest_time_us, options)
        if type(obj) is not dict:
            raise Bad(RejectReason.UNEXPECTED_MESSAGE, f"top level is {type(obj).__name__}")
        return _v2(obj, ingest_time_us, options)
    except Bad as bad:
        return reject(EXCHANGE, frame, bad, ingest_time_us)


# --- REST backfill: GET /0/public/Trades?pair=XBTUSD&since=<unix seconds> -----------


def rest_pair(symbol: str) -> str:
    base, quote = base_quote(symbol)
    return _REST_ALIASES.get(base, base) + _REST_ALIASES.get(quote, quote)


def backfill_request(symbol: str, since_time_us: int, count: int = REST_MAX_COUNT) -> RestRequest:
    """Trades from `since` on (Kraken pages by time, not id; the caller filters by id)."""
    return RestRequest(
        "GET",
        f"{REST_URL}/0/public/Trades",
        {
            "pair": rest_pair(symbol),
            "since": str(since_time_us // 1_000_000),
            "count": str(min(count, REST_MAX_COUNT)),
        },
    )


def parse_backfill(
    body: str | bytes, symbol: str, ingest_time_us: int, options: ParseOptions = DEFAULT_OPTIONS
) -> list[Trade] | Reject:
    """{"error":[],"result":{"<PAIR>":[[price, volume, time, side, type, misc, id]], "last"}}."""
    try:
        obj = parse_json(body, exact=True)
        if type(obj) is not dict:
            raise Bad(RejectReason.UNEXPECTED_MESSAGE, "REST response is not an object")
        if obj.get("error"):
            raise Bad(RejectReason.UNEXPECTED_MESSAGE, f"REST error {str(obj['error'])[:100]}")
        result = get(obj, "result")
        if type(result) is not dict:
            raise Bad(RejectReason.BAD_TYPE, "REST result is not an object")
        rows: Any = next((v for k, v in result.items() if k != "last"), [])
        if type(rows) is not list:
            raise Bad(RejectReason.BAD_TYPE, "REST trades is not an array")
        native = "/".join(base_quote(symbol))
        trades = []
        for row in rows:
            if type(row) is not list:
                raise Bad(RejectReason.BAD_TYPE, "REST trade is not an array")
            trades.append(
                _v2_trade(
                    {
                        "symbol": native,
                        "price": get(row, 0, "price"),
                        "qty": get(row, 1, "volume"),
                        "timestamp": _iso(seconds_to_us(get(row, 2, "time"), "time")),
                        "side": get(row, 3, "side"),
                        "trade_id": get(row, 6, "trade_id"),
                    },
                    ingest_time_us,
                    options,
                )
            )
        trades.sort(key=lambda t: t.trade_id)
        return trades
    except Bad as bad:
        return reject(EXCHANGE, body, bad, ingest_time_us)


def _iso(us: int) -> str:
    from datetime import UTC, datetime

    return (
        datetime.fromtimestamp(us // 1_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        + f".{us % 1_000_000:06d}Z"
    )
