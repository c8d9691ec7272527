"""Coinbase trades from both public WebSocket APIs, and REST backfill by trade id.

- Advanced Trade (wss://advanced-trade-ws.coinbase.com): channel `market_trades`; a
  snapshot arrives newest first (and so can an update carrying several trades); every
  frame of a connection carries `sequence_num`, counting across all channels, so a jump
  means frames were lost.
- Exchange (wss://ws-feed.exchange.coinbase.com): channel `matches`, `match` and
  `last_match` messages, `trade_id` per product without gaps.

Side: in both APIs `side` is the MAKER order's side (documented for Exchange; for
Advanced Trade the recorded capture shows it: "SELL" trades print at the best ask, "BUY"
at the best bid). Candleflow stores the taker side, so it is inverted here.
"""

from __future__ import annotations

import json
from decimal import Decimal
from functools import lru_cache
from operator import attrgetter
from typing import Any, Literal

import msgspec

from candleflow.domain import InstrumentKind, Side, Trade
from candleflow.symbols import is_canonical
from ingest.common import (
    DEFAULT_OPTIONS,
    MAX_LONG,
    Bad,
    ParseOptions,
    Reject,
    RejectReason,
    TradeBatch,
    _seconds,
    admit,
    batch,
    check_symbol,
    dec,
    decimals,
    get,
    integer,
    iso_to_us,
    iso_to_us_fast,
    make_trade,
    new_decimal,
    parse_json,
    reject,
)
from ingest.rest import RestRequest

EXCHANGE = "coinbase"
ADVANCED_WS_URL = "wss://advanced-trade-ws.coinbase.com"
EXCHANGE_WS_URL = "wss://ws-feed.exchange.coinbase.com"
EXCHANGE_REST_URL = "https://api.exchange.coinbase.com"
REST_MAX_LIMIT = 1000  # /products/{id}/trades page size
# Public REST endpoints: 10 requests/s per IP.
REST_REQUESTS_PER_SECOND = 10

_TAKER = {"BUY": Side.SELL, "SELL": Side.BUY, "buy": Side.SELL, "sell": Side.BUY}
_CONTROL_CHANNELS = {
    "subscriptions": "subscriptions",
    "heartbeats": "heartbeat",
    "status": "status",
}
_CONTROL_TYPES = {"subscriptions": "subscriptions", "heartbeat": "heartbeat"}


def subscribe_message(symbols: list[str], api: str = "advanced") -> list[str]:
    """The frames that subscribe to trades (plus heartbeats, which keep a quiet product's
    connection alive and give the watchdog something to see)."""
    for s in symbols:
        if not is_canonical(s):
            raise ValueError(f"{s!r} is not a canonical symbol like BTC-USD")
    if api == "advanced":
        return [
            json.dumps({"type": "subscribe", "product_ids": symbols, "channel": channel})
            for channel in ("market_trades", "heartbeats")
        ]
    if api == "exchange":
        return [
            json.dumps(
                {"type": "subscribe", "product_ids": symbols, "channels": ["matches", "heartbeat"]}
            )
        ]
    raise ValueError("api must be 'advanced' or 'exchange'")


def _trade(row: Any, ingest_time_us: int, options: ParseOptions) -> Trade:
    if type(row) is not dict:
        raise Bad(RejectReason.BAD_TYPE, "trade is not an object")
    product = get(row, "product_id")
    if type(product) is not str or not is_canonical(product):
        raise Bad(RejectReason.UNKNOWN_SYMBOL, f"product {str(product)[:40]!r}")
    check_symbol(product, options)  # first: an unsubscribed market is named as such
    maker_side = get(row, "side")
    side = _TAKER.get(maker_side) if type(maker_side) is str else None
    if side is None:
        raise Bad(RejectReason.BAD_TYPE, f"side {str(maker_side)[:20]!r}")
    event_time_us = iso_to_us(get(row, "time"), "time")
    admit(product, event_time_us, ingest_time_us, options)
    sequence = row.get("sequence")  # Exchange `match` only (Trade v2)
    return Trade(
        exchange=EXCHANGE,
        symbol=product,
        native_symbol=product,
        trade_id=integer(get(row, "trade_id"), "trade_id"),
        price=dec(get(row, "price"), "price"),
        quantity=dec(get(row, "size"), "size"),
        side=side,
        event_time_us=event_time_us,
        ingest_time_us=ingest_time_us,
        kind=InstrumentKind.SPOT,
        sequence=None if sequence is None else integer(sequence, "sequence"),
    )


@lru_cache(maxsize=4096)
def _product_ok(product: str) -> bool:
    return is_canonical(product)


_ZERO = Decimal(0)
_BY_MARKET_AND_ID = attrgetter("symbol", "trade_id")


def _fast_trade(row: Any, ingest_time_us: int, options: ParseOptions) -> Trade:
    """The hot path: _trade's checks inlined; anything unusual raises and the caller
    re-runs _trade, which names the exact reason (or accepts the row)."""
    product, p, q, tid = row["product_id"], row["price"], row["size"], row["trade_id"]
    if (
        type(product) is not str
        or not _product_ok(product)
        or type(p) is not str
        or type(q) is not str
    ):
        raise TypeError
    event_time_us = iso_to_us_fast(row["time"])
    if options.checks:
        admit(product, event_time_us, ingest_time_us, options)
    side = _TAKER[row["side"]]
    # validated (positive, finite, < 10^20) Decimals, shared per distinct text
    price = decimals.get(p) or new_decimal(p)
    quantity = decimals.get(q) or new_decimal(q)
    if type(tid) is str:
        if not (tid.isascii() and tid.isdigit()):
            raise ValueError
        tid = int(tid)
    elif type(tid) is not int or tid < 0:
        raise TypeError
    if tid > MAX_LONG:
        raise ValueError
    sequence = row.get("sequence")  # Exchange `match` only (Trade v2)
    if sequence is not None and (type(sequence) is not int or not 0 <= sequence <= MAX_LONG):
        raise ValueError
    return _spot(product, tid, price, quantity, side, event_time_us, ingest_time_us, sequence)


def _spot(
    product: str,
    tid: int,
    price: Decimal,
    quantity: Decimal,
    side: Side,
    event_time_us: int,
    ingest_time_us: int,
    sequence: int | None = None,
) -> Trade:
    """Trade(...) of a Coinbase spot trade, every field positional (the hot paths')."""
    return make_trade(
        EXCHANGE,
        product,
        product,
        tid,
        price,
        quantity,
        side,
        event_time_us,
        ingest_time_us,
        None,
        None,
        _SPOT,
        None,
        sequence,
    )


# Advanced Trade `market_trades` frames, decoded by msgspec straight into typed structs
# (see binance.py: every field declared, anything else refused and left to the checked
# path, which names the reject reason).
class _Row(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    product_id: str
    trade_id: str | int
    price: str
    size: str
    time: str
    side: str


# (fields in the order Coinbase sends them: msgspec matches the next expected one first)
class _Event(msgspec.Struct, forbid_unknown_fields=True, gc=False, kw_only=True):  # no cycles
    type: str = ""
    trades: list[_Row]


class _MarketTrades(msgspec.Struct, forbid_unknown_fields=True, gc=False, kw_only=True):
    channel: Literal["market_trades"]
    client_id: str = ""
    timestamp: str = ""
    sequence_num: int | None = None
    events: list[_Event]


decode_market_trades = msgspec.json.Decoder(_MarketTrades).decode
# integers orjson reads as integers (beyond, it reads a float: a BAD_TYPE sequence_num)
_INT_MIN, _UINT_MAX = -(1 << 63), (1 << 64) - 1


_products: dict[str, bool] = {}  # product id -> canonical (is_canonical, cached)
_SPOT = InstrumentKind.SPOT


def _fast_market_trades(
    frame: str | bytes, ingest_time_us: int, options: ParseOptions
) -> TradeBatch:
    """A market_trades frame on the hot path: _fast_trade's checks per decoded row, inlined
    (iso_to_us_fast's too); anything unusual raises and the checked path decides."""
    msg = decode_market_trades(frame)
    sequence = msg.sequence_num
    if sequence is not None and not _INT_MIN <= sequence <= _UINT_MAX:
        raise ValueError
    checks, seconds, products, taker, cached = (
        options.checks,
        _seconds_dot,
        _products,
        _TAKER,
        decimals.get,
    )
    trades = TradeBatch()  # filled in place: no copy into the batch at the end
    append = trades.append
    # Snapshots come newest first: while every row is of one product with a strictly
    # smaller id than the row before, reversing is the sort (see _sorted).
    descending = True
    last_product, last_tid = "", MAX_LONG + 1
    for event in msg.events:
        for row in event.trades:
            product = row.product_id  # (one by one: a 5-name unpack builds a tuple)
            p = row.price
            q = row.size
            given = row.trade_id
            at = row.time
            ok = products.get(product)
            if ok is None:
                ok = is_canonical(product)
                if len(products) < 4096:
                    products[product] = ok
            if not ok:
                raise ValueError
            price = cached(p) or new_decimal(p)
            quantity = cached(q) or new_decimal(q)
            if type(given) is str:
                if not (given.isascii() and given.isdigit()):
                    raise ValueError
                tid = int(given)
            else:
                tid = given  # type: ignore[assignment]  # an int here
            if not 0 <= tid <= MAX_LONG:
                raise ValueError
            # iso_to_us_fast, inlined: the whole second with its "." from a cache
            # (keys only ever come from times iso_to_us_fast accepted), then the digits
            base = seconds.get(at[:20])
            digits = at[20:-1]
            if base is None or at[-1:] != "Z" or not digits.isdigit() or not digits.isascii():
                event_time_us = _time_us(at)  # fills the cache, or raises
            elif len(digits) == 6:
                event_time_us = base + int(digits)
            elif len(digits) <= 9:
                event_time_us = base + int(digits[:6]) * _FRACTION_SCALE[len(digits)]
            else:
                raise ValueError
            if checks:
                admit(product, event_time_us, ingest_time_us, options)
            if descending and (tid >= last_tid or product != last_product) and trades:
                descending = False
            last_product, last_tid = product, tid
            append(  # Advanced Trade has no per-trade sequence
                _spot(product, tid, price, quantity, taker[row.side], event_time_us, ingest_time_us)
            )
    if descending:
        trades.reverse()
    else:
        _sorted(trades)
    if sequence is not None:
        trades.sequence = sequence
    return trades


# 1-9 fraction digits -> the factor that makes their first six µs ("5" -> 500000)
_FRACTION_SCALE = (0, 100_000, 10_000, 1_000, 100, 10, 1, 1, 1, 1)
# "YYYY-MM-DDTHH:MM:SS." -> that second in µs, for the market_trades hot path; bounded
_seconds_dot: dict[str, int] = {}


def _time_us(at: str) -> int:
    """iso_to_us_fast(at) (raises for anything else), and its second into _seconds_dot."""
    us = iso_to_us_fast(at)
    if len(_seconds_dot) >= 4096:
        _seconds_dot.clear()
    _seconds_dot[at[:20]] = _seconds[at[:19]]
    return us


def _one(row: Any, ingest_time_us: int, options: ParseOptions) -> Trade:
    try:
        return _fast_trade(row, ingest_time_us, options)
    except Exception:  # the slow path says what was wrong
        return _trade(row, ingest_time_us, options)


def _sorted(trades: list[Trade]) -> list[Trade]:
    # Snapshots (and multi-trade updates) come newest first: hand them on in id order.
    if len(trades) > 1:
        trades.sort(key=_BY_MARKET_AND_ID)
    return trades


def _advanced(obj: dict[str, Any], ingest_time_us: int, options: ParseOptions) -> TradeBatch:
    channel = obj["channel"]
    sequence = obj.get("sequence_num")
    if sequence is not None and type(sequence) is not int:
        raise Bad(RejectReason.BAD_TYPE, "sequence_num is not an integer")
    if channel == "market_trades":
        events = get(obj, "events")
        if type(events) is not list:
            raise Bad(RejectReason.BAD_TYPE, "events is not an array")
        trades = []
        for event in events:
            rows = get(event, "trades")
            if type(rows) is not list:
                raise Bad(RejectReason.BAD_TYPE, "trades is not an array")
            trades.extend([_one(row, ingest_time_us, options) for row in rows])
        return batch(_sorted(trades), sequence=sequence)
    control = _CONTROL_CHANNELS.get(channel) if type(channel) is str else None
    if control is None:
        raise Bad(RejectReason.UNEXPECTED_MESSAGE, f"channel {str(channel)[:40]!r}")
    return batch(control=control, sequence=sequence)


def parse(
    frame: str | bytes, ingest_time_us: int, options: ParseOptions = DEFAULT_OPTIONS
) -> TradeBatch | Reject:
    """One frame of either API -> trades in id order, a control note, or a Reject."""
    try:
        return _fast_market_trades(frame, ingest_time_us, options)
    except Exception:  # noqa: BLE001, S110 - not a plain market_trades frame: checked path
        pass
    return _parse_checked(frame, ingest_time_us, options)


def _parse_checked(
    frame: str | bytes, ingest_time_us: int, options: ParseOptions
) -> TradeBatch | Reject:
    try:
        obj = parse_json(frame)
        if type(obj) is not dict:
            raise Bad(RejectReason.UNEXPECTED_MESSAGE, f"top level is {type(obj).__name__}")
        if "channel" in obj:
            return _advanced(obj, ingest_time_us, options)
        kind = obj.get("type")
        if kind == "match" or kind == "last_match":
            return batch((_one(obj, ingest_time_us, options),))
        control = _CONTROL_TYPES.get(kind) if type(kind) is str else None
        if control is not None:
            return batch(control=control)
        if kind is None:
            raise Bad(RejectReason.MISSING_FIELD, "missing channel/type")
        detail = obj.get("message") or obj.get("reason") or ""
        raise Bad(RejectReason.UNEXPECTED_MESSAGE, f"type {str(kind)[:40]!r} {str(detail)[:80]}")
    except Bad as bad:
        return reject(EXCHANGE, frame, bad, ingest_time_us)


# --- REST backfill (Exchange API: trades by id, newest first, `after` = older than) ---


def backfill_request(symbol: str, before_id: int, limit: int = REST_MAX_LIMIT) -> RestRequest:
    """Trades with trade_id < before_id, newest first: page backwards from the gap's end+1."""
    return RestRequest(
        "GET",
        f"{EXCHANGE_REST_URL}/products/{symbol}/trades",
        {"after": str(before_id), "limit": str(min(limit, REST_MAX_LIMIT))},
    )


def parse_backfill(
    body: str | bytes, symbol: str, ingest_time_us: int, options: ParseOptions = DEFAULT_OPTIONS
) -> list[Trade] | Reject:
    try:
        rows = parse_json(body)
        if type(rows) is not list:
            raise Bad(RejectReason.UNEXPECTED_MESSAGE, "REST response is not an array")
        trades = [
            _trade(
                dict(row, product_id=symbol) if type(row) is dict else row, ingest_time_us, options
            )
            for row in rows
        ]
        trades.sort(key=lambda t: t.trade_id)
        return trades
    except Bad as bad:
        return reject(EXCHANGE, body, bad, ingest_time_us)
