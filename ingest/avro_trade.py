"""A hand-written Avro encoder for the Trade contract, in the Confluent wire format.

Why: the generic path (records.to_avro + fastavro through AvroSerializer) costs more per
trade than parsing does, and ingest must sustain 100k trades/s on one core. The Trade
schema is fixed per version, so its binary layout is written out here field by field; a
test checks the bytes equal fastavro's for real trades, so the two cannot drift apart.
Decimals follow records.fit_decimal: exactly 18 places, refused (never rounded) when a
value has more fractional digits or does not fit DECIMAL(38,18).
"""

from __future__ import annotations

import struct
from decimal import Context, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from candleflow.contracts import DECIMAL_PRECISION, DECIMAL_SCALE, schema
from candleflow.domain import InstrumentKind, Side, Trade
from candleflow.records import MAX_MICROS, DecimalRangeError

# side and kind are Avro strings in trade/v1.avsc (Flink's Avro format cannot read enums).
_MAX_UNSCALED = 10**DECIMAL_PRECISION
# Enough precision that scaling a DECIMAL(38,18) value by 10^18 is always exact.
_EXACT = Context(prec=DECIMAL_PRECISION + 40, traps=[InvalidOperation])


def _varint(z: int) -> bytes:
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


# Varints are little-endian 7-bit groups, so every full 14-bit chunk below the top one
# always becomes the same two bytes (continuation bits set): a long is a few table
# lookups joined, no loop. µs times (~2^52 zig-zagged) are 3 chunks + a small top part.
_SMALL = [_varint(z) for z in range(1 << 14)]
_LOW14 = [bytes(((z & 0x7F) | 0x80, ((z >> 7) & 0x7F) | 0x80)) for z in range(1 << 14)]


def _long(n: int) -> bytes:
    """Avro long: zig-zag, then base-128 varint."""
    z = (n << 1) ^ (n >> 63)
    if z < 0x4000:
        return _SMALL[z]
    if z < 0x10000000:
        return _LOW14[z & 0x3FFF] + _SMALL[z >> 14]
    if z < 0x40000000000:
        return _LOW14[z & 0x3FFF] + _LOW14[(z >> 14) & 0x3FFF] + _SMALL[z >> 28]
    if z < 0x100000000000000:
        return (
            _LOW14[z & 0x3FFF]
            + _LOW14[(z >> 14) & 0x3FFF]
            + _LOW14[(z >> 28) & 0x3FFF]
            + _SMALL[z >> 42]
        )
    return (
        _LOW14[z & 0x3FFF]
        + _LOW14[(z >> 14) & 0x3FFF]
        + _LOW14[(z >> 28) & 0x3FFF]
        + _LOW14[(z >> 42) & 0x3FFF]
        + _varint(z >> 56)
    )


_ONE_BYTE = _SMALL[:0x80]


@lru_cache(maxsize=4096)
def _string(text: str) -> bytes:
    raw = text.encode()
    return _long(len(raw)) + raw


def _decimal(value: Decimal, name: str) -> bytes:
    """bytes decimal(38,18): length + big-endian two's complement of value x 10^18."""
    try:
        scaled = value.scaleb(DECIMAL_SCALE, _EXACT)
        unscaled = int(scaled)
    except (InvalidOperation, ValueError, OverflowError):
        raise DecimalRangeError(f"{name}: {value} is not a finite number") from None
    if unscaled != scaled:
        raise DecimalRangeError(f"{name}: {value} has more than {DECIMAL_SCALE} decimal places")
    if unscaled >= _MAX_UNSCALED or -unscaled >= _MAX_UNSCALED:
        raise DecimalRangeError(f"{name}: {value} does not fit DECIMAL(38,18)")
    # fastavro's length: the fewest bytes holding the value plus a sign bit
    if unscaled >= 0:
        raw = unscaled.to_bytes((unscaled.bit_length() + 8) // 8, "big")
    else:
        raw = unscaled.to_bytes(((-unscaled).bit_length() + 8) // 8, "big", signed=True)
    return _ONE_BYTE[len(raw) << 1] + raw  # len < 64: one varint byte


# Prices and sizes repeat a lot in a trade stream (the same price level, round sizes), so
# the encoded bytes are kept per value: a hit is one dict lookup instead of the scaling,
# range checks and to_bytes. Keyed by value (equal Decimals encode to equal bytes, 1.0 and
# 1 alike); only values that encoded without error are kept; cleared when full (bounded).
_DECIMAL_CACHE_MAX = 1 << 16
_decimal_bytes: dict[Decimal, bytes] = {}


def _cached_decimal(value: Decimal, name: str) -> bytes:
    try:
        return _decimal_bytes[value]
    except KeyError:
        pass
    except TypeError:  # a signalling NaN cannot be hashed: _decimal names the problem
        return _decimal(value, name)
    out = _decimal(value, name)
    if len(_decimal_bytes) >= _DECIMAL_CACHE_MAX:
        _decimal_bytes.clear()
    _decimal_bytes[value] = out
    return out


@lru_cache(maxsize=4096)
def _head(exchange: str, symbol: str, native: str) -> bytes:
    return _string(exchange) + _string(symbol) + _string(native)


@lru_cache(maxsize=256)
def _tail(kind: InstrumentKind, contract_size: Decimal | None) -> bytes:
    """The fields after last_trade_id of a trade without an exchange sequence (every Binance
    and Kraken trade; the fast lane writes it as is): kind, contract_size, null sequence."""
    if contract_size is None:
        return _string(kind.value) + b"\x00" + _NULL
    return _string(kind.value) + b"\x02" + _decimal(contract_size, "contract_size") + _NULL


_NULL = b"\x00"  # branch 0 of a ["null", ...] union


_SIDE_BYTES = {side: _string(side.value) for side in Side}

# The encoding API of the Binance lane (ingest/lane.py), which writes a trade's record from
# the frame's fields without building a Trade: the same pieces encode_body joins, so both
# write the same bytes (tests/ingest/test_lane.py).
varint = _varint  # an Avro long's zig-zag varint bytes
LOW14 = _LOW14  # the first two varint bytes of each 14-bit value (multi-byte longs)
cached_decimal = _cached_decimal  # a decimal(38,18) field's bytes, cached by value
market_head = _head  # exchange, symbol, native symbol
market_tail = _tail  # kind, contract size, a null sequence (Trade v2)
SIDE_BYTES = _SIDE_BYTES  # side -> its string's bytes


# µs times from 1970-01-26 to year 3111 zig-zag to [2^42, 2^56): exactly four varint
# pieces, written straight into the join (no intermediate bytes objects).
_TIME_LO, _TIME_HI = 1 << 41, 1 << 55


def encode_body(t: Trade, prefix: bytes = b"") -> bytes:
    """The Avro body of a trade, after `prefix` (the wire-format header, if any)."""
    event, ingest = t.event_time_us, t.ingest_time_us
    if not (0 <= event <= MAX_MICROS and 0 <= ingest <= MAX_MICROS):
        raise ValueError(f"trade {t.trade_id}: time outside years 1970..9999")
    first, last = t.first_trade_id, t.last_trade_id
    try:
        price = _decimal_bytes[t.price]
    except (KeyError, TypeError):
        price = _cached_decimal(t.price, "price")
    try:
        quantity = _decimal_bytes[t.quantity]
    except (KeyError, TypeError):
        quantity = _cached_decimal(t.quantity, "quantity")
    head = _head(t.exchange, t.symbol, t.native_symbol)
    first_bytes = b"\x00" if first is None else b"\x02" + _long(first)
    last_bytes = b"\x00" if last is None else b"\x02" + _long(last)
    tail = _tail(t.kind, t.contract_size)
    if t.sequence is not None:  # Trade v2's last field, branch 1 of ["null", "long"]
        tail = tail[:-1] + b"\x02" + _long(t.sequence)
    if _TIME_LO <= event < _TIME_HI and _TIME_LO <= ingest < _TIME_HI:
        ze, zi = event << 1, ingest << 1  # zig-zag of a non-negative number
        return b"".join(
            (
                prefix,
                head,
                _long(t.trade_id),
                price,
                quantity,
                _SIDE_BYTES[t.side],
                _LOW14[ze & 0x3FFF],
                _LOW14[(ze >> 14) & 0x3FFF],
                _LOW14[(ze >> 28) & 0x3FFF],
                _SMALL[ze >> 42],
                _LOW14[zi & 0x3FFF],
                _LOW14[(zi >> 14) & 0x3FFF],
                _LOW14[(zi >> 28) & 0x3FFF],
                _SMALL[zi >> 42],
                first_bytes,
                last_bytes,
                tail,
            )
        )
    return b"".join(
        (
            prefix,
            head,
            _long(t.trade_id),
            price,
            quantity,
            _SIDE_BYTES[t.side],
            _long(event),
            _long(ingest),
            first_bytes,
            last_bytes,
            tail,
        )
    )


def wire_header(schema_id: int) -> bytes:
    """Confluent wire format: magic byte 0, then the 4-byte big-endian schema id."""
    return b"\x00" + struct.pack(">I", schema_id)


# The field layout encode_body writes, in order. A contract change that this encoder
# does not follow fails here, loudly, instead of writing bytes of another schema.
_LAYOUT = [
    ("exchange", "string"),
    ("symbol", "string"),
    ("native_symbol", "string"),
    ("trade_id", "long"),
    ("price", "decimal"),
    ("quantity", "decimal"),
    ("side", "string"),
    ("event_time", "timestamp-micros"),
    ("ingest_time", "timestamp-micros"),
    ("first_trade_id", "null|long"),
    ("last_trade_id", "null|long"),
    ("kind", "string"),
    ("contract_size", "null|decimal"),
    ("sequence", "null|long"),
]


def _kind(avro_type: Any) -> str:
    if isinstance(avro_type, list):
        return "|".join(_kind(t) for t in avro_type)
    if isinstance(avro_type, dict):
        return str(avro_type.get("logicalType") or avro_type["type"])
    return str(avro_type)


def check_schema() -> None:
    fields = [(f["name"], _kind(f["type"])) for f in schema("trade")["fields"]]
    if fields != _LAYOUT:
        raise RuntimeError(
            f"ingest/avro_trade.py writes {_LAYOUT}, but the Trade contract is "
            f"{fields}: update the encoder with the contract"
        )


class TradeEncoder:
    """Encodes trades for one registered schema id."""

    __slots__ = ("header",)

    def __init__(self, schema_id: int) -> None:
        check_schema()
        self.header = wire_header(schema_id)

    def __call__(self, t: Trade) -> bytes:
        return encode_body(t, self.header)
