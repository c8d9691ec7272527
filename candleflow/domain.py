"""Domain records. Prices and quantities are Decimal; times are UTC epoch microseconds.

These mirror the Avro contracts in candleflow/contracts/ field for field (see
candleflow.contracts for the mapping to and from Avro records).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Context, Decimal
from enum import StrEnum

# Wide enough that products and sums of DECIMAL(38,18) values are exact.
_WIDE = Context(prec=80, rounding=ROUND_HALF_UP)
_SCALE_18 = Decimal("1E-18")
# Candle.volatility: 18 decimal places (the contracts' DECIMAL(38,18)), rounded half up as
# Flink's DECIMAL arithmetic (and the VWAP) rounds; |value| < 10^20 to fit it.
VOLATILITY_SCALE = 18
_VOLATILITY_QUANTUM = Decimal(1).scaleb(-VOLATILITY_SCALE)
_VOLATILITY_LIMIT = Decimal(10) ** 20


# The exchanges Candleflow ingests (ingest.ADAPTERS has one adapter per name).
EXCHANGES = ("binance", "coinbase", "kraken")


class Side(StrEnum):
    """The taker's side: BUY means the buyer was the aggressor (Binance is_buyer_maker=false)."""

    BUY = "BUY"
    SELL = "SELL"
    UNKNOWN = "UNKNOWN"


class InstrumentKind(StrEnum):
    """How volume converts to the second volume column of a candle.

    SPOT and LINEAR: quote volume = price x quantity (in the quote asset).
    INVERSE (Binance COIN-M): quantity is in contracts of `contract_size` quote units;
    the second column is the base-asset volume = quantity x contract_size / price,
    exactly the column Binance's COIN-M klines report there.
    """

    SPOT = "SPOT"
    LINEAR = "LINEAR"
    INVERSE = "INVERSE"


@dataclass(frozen=True, slots=True)
class Trade:
    exchange: str  # lower case: binance, coinbase, kraken
    symbol: str  # canonical BASE-QUOTE[-SUFFIX]
    native_symbol: str
    trade_id: int  # identity within (exchange, symbol); for an aggregate trade, its agg id
    price: Decimal
    quantity: Decimal
    side: Side
    event_time_us: int  # the exchange's trade time
    ingest_time_us: int  # when Candleflow received it
    # An exchange aggregate trade stands for first..last raw trades (count = last - first + 1).
    first_trade_id: int | None = None
    last_trade_id: int | None = None
    kind: InstrumentKind = InstrumentKind.SPOT
    contract_size: Decimal | None = None  # INVERSE only
    # Trade v2: the exchange's own sequence number of the trade, where its feed has one
    # (Coinbase Exchange `match.sequence`, per product); None otherwise and in v1 data.
    sequence: int | None = None

    @property
    def trade_count(self) -> int:
        if self.first_trade_id is None or self.last_trade_id is None:
            return 1
        return self.last_trade_id - self.first_trade_id + 1

    @property
    def quote_quantity(self) -> Decimal:
        """The trade's quote_volume amount. INVERSE: base asset, rounded to 18 decimals half
        up (docs/semantics.md "Volumes of inverse (COIN-M) contracts"); others exact."""
        if self.kind is InstrumentKind.INVERSE:
            assert self.contract_size is not None
            notional = _WIDE.multiply(self.quantity, self.contract_size)
            return _WIDE.divide(notional, self.price).quantize(_SCALE_18, context=_WIDE)
        return _WIDE.multiply(self.price, self.quantity)

    @property
    def key(self) -> str:
        """Kafka message key: all trades of one market land in one partition, in order."""
        return f"{self.exchange}:{self.symbol}"


# The candle fields an exchange's own kline carries, in kline order (reconcile compares
# these; the backfill CSV and the history queries start with them).
KLINE_FIELDS = (
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "trade_count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
)
# Its exact-decimal fields, and with the VWAP every decimal column of a candle.
KLINE_DECIMALS = tuple(f for f in KLINE_FIELDS if f != "trade_count")
CANDLE_DECIMAL_FIELDS = (*KLINE_DECIMALS, "vwap")


@dataclass(frozen=True, slots=True)
class Candle:
    exchange: str
    symbol: str
    interval: str
    window_start_us: int
    window_end_us: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    trade_count: int
    taker_buy_volume: Decimal
    taker_buy_quote_volume: Decimal
    vwap: Decimal | None  # None for an empty window
    first_trade_id: int | None
    last_trade_id: int | None
    revision: int = 0
    is_empty: bool = False

    @property
    def volatility(self) -> Decimal | None:
        """Candle v2's figure of the window's own fields: see volatility()."""
        return volatility(self.high, self.low, self.open, self.is_empty)


def volatility(high: Decimal, low: Decimal, open_: Decimal, is_empty: bool) -> Decimal | None:
    """A candle's range relative to its open, (high - low) / open, at VOLATILITY_SCALE
    decimal places rounded half up. A figure of the candle's own fields, so every candle has
    it, v1 data included; None for an empty window, and where it would not fit the
    contracts' DECIMAL(38,18) (open <= 0, or a range of 10^20 opens or more: validated
    trades give neither). docs/semantics.md "Volatility (Candle v2)"."""
    if is_empty or open_ <= 0:
        return None
    ratio = _WIDE.divide(_WIDE.subtract(high, low), open_)
    value = ratio.quantize(_VOLATILITY_QUANTUM, context=_WIDE)
    return value if value.copy_abs() < _VOLATILITY_LIMIT else None


@dataclass(frozen=True, slots=True)
class LateTrade:
    trade: Trade
    interval: str
    window_start_us: int
    reason: str  # e.g. BEYOND_ALLOWED_LATENESS
    watermark_us: int


@dataclass(frozen=True, slots=True)
class Anomaly:
    anomaly_id: str
    rule: str
    severity: str
    exchange: str
    symbol: str
    interval: str
    window_start_us: int
    window_end_us: int
    value: float
    threshold: float
    status: str = "ACTIVE"  # or RETRACTED
    candle_revision: int = 0
    details: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Explanation:
    anomaly_id: str
    summary: str
    key_factors: list[str]
    confidence: float
    caveats: list[str]
    model: str
    offline: bool
    created_at_us: int
