"""Binance spot (and COIN-M) trades: `<symbol>@trade` and `<symbol>@aggTrade` over combined
streams, and the REST backfill by trade id. Pure functions, no I/O.

Formats and limits are from Binance's own documentation (shared/reference/binance/).
"""

from __future__ import annotations

import json
from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Any

import msgspec

from candleflow.domain import InstrumentKind, Side, Trade
from candleflow.epoch import to_us
from candleflow.records import MAX_MICROS
from candleflow.symbols import from_binance, to_binance
from ingest.common import (
    DEFAULT_OPTIONS,
    MAX_LONG,
    Bad,
    ParseOptions,
    Reject,
    RejectReason,
    TradeBatch,
    admit,
    batch,
    check_symbol,
    dec,
    decimals,
    epoch_to_us,
    flag,
    get,
    integer,
    make_trade,
    new_decimal,
    parse_json,
    reject,
)
from ingest.rest import RestRequest

EXCHANGE = "binance"
WS_URL = "wss://stream.binance.com:9443"
REST_URL = "https://api.binance.com"

# "A single connection can listen to a maximum of 1024 streams."
MAX_STREAMS_PER_CONNECTION = 1024
# "WebSocket connections have a limit of 5 incoming messages per second" (ping, pong and
# JSON control messages we send count; market data we receive does not).
MAX_INCOMING_MESSAGES_PER_SECOND = 5
# "A single connection ... is only valid for 24 hours"; reconnect a little before.
MAX_CONNECTION_AGE_S = 24 * 3600 - 300
# "If the WebSocket server does not receive a pong frame back ... within a minute".
SERVER_PING_INTERVAL_S = 20
# "300 connections per attempt every 5 minutes per IP".
MAX_CONNECTIONS_PER_5_MIN = 300
# REST: historicalTrades weight 25, aggTrades weight 4, limit <= 1000 per call.
REST_MAX_LIMIT = 1000
REST_WEIGHT = {"/api/v3/historicalTrades": 25, "/api/v3/aggTrades": 4}
REST_WEIGHT_PER_MINUTE = 6000

STREAM_KINDS = ("trade", "aggTrade")


@lru_cache(maxsize=4096)
def _market(native: str) -> tuple[str, InstrumentKind, Decimal | None]:
    """Canonical symbol and instrument kind of a native symbol (cached: hot path)."""
    symbol = from_binance(native)
    if native.upper().endswith("_PERP") or "_" in native and native[-4:].isdigit():
        # COIN-M inverse contracts: 100 USD for BTC, 10 USD for every other coin.
        size = Decimal(100) if native.upper().startswith("BTC") else Decimal(10)
        return symbol, InstrumentKind.INVERSE, size
    return symbol, InstrumentKind.SPOT, None


def market_of(native: Any) -> tuple[str, InstrumentKind, Decimal | None]:
    if type(native) is not str:
        raise Bad(RejectReason.BAD_TYPE, "symbol is not a string")
    try:
        return _market(native)
    except ValueError:
        raise Bad(RejectReason.UNKNOWN_SYMBOL, f"unknown symbol {native[:40]!r}") from None


def stream_names(symbols: list[str], kind: str = "trade") -> list[str]:
    if kind not in STREAM_KINDS:
        raise ValueError(f"stream kind must be one of {STREAM_KINDS}")
    return [f"{to_binance(s).lower()}@{kind}" for s in symbols]


def combined_stream_path(symbols: list[str], kind: str = "trade") -> str:
    """The URL path of one combined-stream connection (at most 1024 streams)."""
    names = stream_names(symbols, kind)
    if len(names) > MAX_STREAMS_PER_CONNECTION:
        raise ValueError(f"{len(names)} streams exceed {MAX_STREAMS_PER_CONNECTION} per connection")
    return "/stream?streams=" + "/".join(names)


def subscribe_message(symbols: list[str], kind: str = "trade", request_id: int = 1) -> str:
    """SUBSCRIBE for an already open combined-stream connection (one control message)."""
    return json.dumps(
        {"method": "SUBSCRIBE", "params": stream_names(symbols, kind), "id": request_id}
    )


def _trade(data: dict[str, Any], ingest_time_us: int, options: ParseOptions) -> Trade:
    native = get(data, "s")
    symbol, kind, contract_size = market_of(native)
    check_symbol(symbol, options)  # first: an unsubscribed market is named as such
    event = data.get("e")
    first: int | None
    last: int | None
    if event == "aggTrade":
        trade_id = integer(get(data, "a"), "a")
        first, last = integer(get(data, "f"), "f"), integer(get(data, "l"), "l")
        if last < first:
            raise Bad(RejectReason.BAD_TYPE, f"aggTrade last id {last} < first id {first}")
    else:
        trade_id = integer(get(data, "t"), "t")
        first = last = None
    event_time_us = epoch_to_us(get(data, "T"), "T")
    admit(symbol, event_time_us, ingest_time_us, options)
    return Trade(
        exchange=EXCHANGE,
        symbol=symbol,
        native_symbol=native,
        trade_id=trade_id,
        price=dec(get(data, "p"), "p"),
        quantity=dec(get(data, "q"), "q"),
        side=Side.SELL if flag(get(data, "m"), "m") else Side.BUY,
        event_time_us=event_time_us,
        ingest_time_us=ingest_time_us,
        first_trade_id=first,
        last_trade_id=last,
        kind=kind,
        contract_size=contract_size,
    )


# The hot path decodes a combined-stream frame with msgspec straight into these typed
# structs: JSON syntax, every field's type and the event tag are checked in C, and the
# struct only ever holds what the frame said (ids stay ints, prices stay their exact text).
# Every documented field is declared and any other refused (forbid_unknown_fields), so a
# frame the structs accept is one the checked path reads field for field the same way;
# whatever msgspec refuses goes to the checked path, which names the reject reason.
# Range checks in C too (msgspec constraints): ids are Avro longs >= 0, a trade time is a
# positive epoch ms or µs value (told apart by magnitude, as epoch_to_us) up to year 9999.
# A value outside them fails the decode, and the checked path names the reason.
_Id = Annotated[int, msgspec.Meta(ge=0, le=MAX_LONG)]
_Epoch = Annotated[int, msgspec.Meta(gt=0, le=MAX_MICROS)]


# Fields in Binance's own order (kw_only lets E, with its default, come first): msgspec
# matches the next expected field first, ~8 % faster than looking each key up.
class _AggTrade(
    msgspec.Struct,
    tag_field="e",
    tag="aggTrade",
    forbid_unknown_fields=True,
    gc=False,
    kw_only=True,
):
    E: int = 0
    s: str
    a: _Id
    p: str
    q: str
    f: _Id
    l: _Id  # noqa: E741 - Binance's field name
    T: _Epoch
    m: bool
    M: bool = False


class _RawTrade(
    msgspec.Struct, tag_field="e", tag="trade", forbid_unknown_fields=True, gc=False, kw_only=True
):
    E: int = 0
    s: str
    t: _Id
    p: str
    q: str
    T: _Epoch
    m: bool
    M: bool = False


class _Combined(msgspec.Struct, forbid_unknown_fields=True, gc=False):  # no cycles possible
    stream: str
    data: _AggTrade | _RawTrade


decode_combined = msgspec.json.Decoder(_Combined).decode
_decimal = decimals.get  # (the cache is only ever cleared, never replaced)
_SELL, _BUY = Side.SELL, Side.BUY  # (an Enum member lookup costs ~0.1 µs per trade)

# native symbol -> (canonical symbol, kind, contract size); only symbols that map
_markets: dict[str, tuple[str, InstrumentKind, Decimal | None]] = {}


def market_fast(native: str) -> tuple[str, InstrumentKind, Decimal | None]:
    """_market, from a plain dict (the hot path); raises ValueError for an unknown symbol."""
    found = _markets.get(native)
    if found is None:
        found = _market(native)
        if len(_markets) < 4096:
            _markets[native] = found
    return found


def parse(
    frame: str | bytes, ingest_time_us: int, options: ParseOptions = DEFAULT_OPTIONS
) -> TradeBatch | Reject:
    """One WebSocket frame (combined or raw stream) -> its trades, a control note, or a Reject.

    The common frame (one trade of a combined stream): _trade's checks on the struct msgspec
    decoded (types already checked in C; symbol and skew by the same admit()); any doubt ->
    the checked path, which names the reason (or accepts the frame)."""
    try:
        d = decode_combined(frame).data  # ids and time range-checked in C (_Id, _Epoch)
        native = d.s
        symbol, kind, contract_size = _markets.get(native) or market_fast(native)
        event_time_us = to_us(d.T)
        if options.checks:
            admit(symbol, event_time_us, ingest_time_us, options)
        p, q = d.p, d.q
        price = _decimal(p) or new_decimal(p)
        quantity = _decimal(q) or new_decimal(q)
        first: int | None
        last: int | None
        if type(d) is _AggTrade:  # (an isinstance() call costs more)
            trade_id, first, last = d.a, d.f, d.l
            if last < first:
                raise ValueError
        else:
            trade_id, first, last = d.t, None, None  # type: ignore[union-attr]  # a _RawTrade
        out = TradeBatch()  # (+ append: cheaper than building it from a tuple)
        out.append(
            make_trade(  # Trade(...) with every field, positional (hot path)
                EXCHANGE,
                symbol,
                native,
                trade_id,
                price,
                quantity,
                _SELL if d.m else _BUY,
                event_time_us,
                ingest_time_us,
                first,
                last,
                kind,
                contract_size,
                None,  # sequence: Binance has none (Trade v2)
            )
        )
        return out
    except Exception:  # noqa: BLE001, S110 - the checked path says what was wrong
        pass
    return _parse_checked(frame, ingest_time_us, options)


def _parse_checked(
    frame: str | bytes, ingest_time_us: int, options: ParseOptions
) -> TradeBatch | Reject:
    try:
        obj = parse_json(frame)
        if type(obj) is not dict:
            raise Bad(RejectReason.UNEXPECTED_MESSAGE, f"top level is {type(obj).__name__}")
        data = obj.get("data", obj) if "stream" in obj else obj
        if type(data) is not dict:
            raise Bad(RejectReason.BAD_TYPE, "data is not an object")
        event = data.get("e")
        if event == "trade" or event == "aggTrade":
            return batch((_trade(data, ingest_time_us, options),))
        if event == "serverShutdown":
            return batch(control="server_shutdown")
        if "result" in obj and "id" in obj:  # reply to SUBSCRIBE / LIST_SUBSCRIPTIONS
            return batch(control="subscribe_ack")
        if "stream" not in obj and "e" not in obj and not ({"code", "msg"} - obj.keys()):
            raise Bad(
                RejectReason.UNEXPECTED_MESSAGE,
                f"error {obj.get('code')}: {str(obj.get('msg'))[:100]}",
            )
        if "stream" in obj and "data" not in obj:
            raise Bad(RejectReason.MISSING_FIELD, "missing data")
        raise Bad(RejectReason.UNEXPECTED_MESSAGE, f"event {str(event)[:40]!r} is not a trade")
    except Bad as bad:
        return reject(EXCHANGE, frame, bad, ingest_time_us)


# --- REST backfill ------------------------------------------------------------------


def backfill_request(
    symbol: str, from_id: int, aggregate: bool = False, limit: int = REST_MAX_LIMIT
) -> RestRequest:
    """Trades with id >= from_id (historicalTrades), or aggregate trades (aggTrades)."""
    path = "/api/v3/aggTrades" if aggregate else "/api/v3/historicalTrades"
    return RestRequest(
        "GET",
        REST_URL + path,
        {
            "symbol": to_binance(symbol),
            "fromId": str(from_id),
            "limit": str(min(limit, REST_MAX_LIMIT)),
        },
        weight=REST_WEIGHT[path],
    )


def parse_backfill(
    body: str | bytes,
    symbol: str,
    aggregate: bool,
    ingest_time_us: int,
    options: ParseOptions = DEFAULT_OPTIONS,
) -> list[Trade] | Reject:
    """The JSON array of /api/v3/historicalTrades or /api/v3/aggTrades -> trades, id order."""
    try:
        rows = parse_json(body)
        if type(rows) is not list:
            raise Bad(RejectReason.UNEXPECTED_MESSAGE, "REST response is not an array")
        native = to_binance(symbol)
        trades = []
        for row in rows:
            if type(row) is not dict:
                raise Bad(RejectReason.BAD_TYPE, "REST row is not an object")
            if aggregate:
                data = dict(row, e="aggTrade", s=native)
            else:
                data = {
                    "e": "trade",
                    "s": native,
                    "t": get(row, "id"),
                    "p": get(row, "price"),
                    "q": get(row, "qty"),
                    "T": get(row, "time"),
                    "m": get(row, "isBuyerMaker"),
                }
            trades.append(_trade(data, ingest_time_us, options))
        trades.sort(key=lambda t: t.trade_id)
        return trades
    except Bad as bad:
        return reject(EXCHANGE, body, bad, ingest_time_us)
