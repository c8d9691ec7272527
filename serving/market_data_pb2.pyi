from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Cursor(_message.Message):
    __slots__ = ("offsets",)
    OFFSETS_FIELD_NUMBER: _ClassVar[int]
    offsets: _containers.RepeatedCompositeFieldContainer[PartitionOffset]
    def __init__(self, offsets: _Optional[_Iterable[_Union[PartitionOffset, _Mapping]]] = ...) -> None: ...

class PartitionOffset(_message.Message):
    __slots__ = ("topic", "partition", "offset")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    topic: str
    partition: int
    offset: int
    def __init__(self, topic: _Optional[str] = ..., partition: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class Candle(_message.Message):
    __slots__ = ("exchange", "symbol", "interval", "window_start_us", "window_end_us", "open", "high", "low", "close", "volume", "quote_volume", "trade_count", "taker_buy_volume", "taker_buy_quote_volume", "vwap", "first_trade_id", "last_trade_id", "revision", "is_empty", "in_progress", "volatility")
    EXCHANGE_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_US_FIELD_NUMBER: _ClassVar[int]
    WINDOW_END_US_FIELD_NUMBER: _ClassVar[int]
    OPEN_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    LOW_FIELD_NUMBER: _ClassVar[int]
    CLOSE_FIELD_NUMBER: _ClassVar[int]
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    QUOTE_VOLUME_FIELD_NUMBER: _ClassVar[int]
    TRADE_COUNT_FIELD_NUMBER: _ClassVar[int]
    TAKER_BUY_VOLUME_FIELD_NUMBER: _ClassVar[int]
    TAKER_BUY_QUOTE_VOLUME_FIELD_NUMBER: _ClassVar[int]
    VWAP_FIELD_NUMBER: _ClassVar[int]
    FIRST_TRADE_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_TRADE_ID_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    IS_EMPTY_FIELD_NUMBER: _ClassVar[int]
    IN_PROGRESS_FIELD_NUMBER: _ClassVar[int]
    VOLATILITY_FIELD_NUMBER: _ClassVar[int]
    exchange: str
    symbol: str
    interval: str
    window_start_us: int
    window_end_us: int
    open: str
    high: str
    low: str
    close: str
    volume: str
    quote_volume: str
    trade_count: int
    taker_buy_volume: str
    taker_buy_quote_volume: str
    vwap: str
    first_trade_id: int
    last_trade_id: int
    revision: int
    is_empty: bool
    in_progress: bool
    volatility: str
    def __init__(self, exchange: _Optional[str] = ..., symbol: _Optional[str] = ..., interval: _Optional[str] = ..., window_start_us: _Optional[int] = ..., window_end_us: _Optional[int] = ..., open: _Optional[str] = ..., high: _Optional[str] = ..., low: _Optional[str] = ..., close: _Optional[str] = ..., volume: _Optional[str] = ..., quote_volume: _Optional[str] = ..., trade_count: _Optional[int] = ..., taker_buy_volume: _Optional[str] = ..., taker_buy_quote_volume: _Optional[str] = ..., vwap: _Optional[str] = ..., first_trade_id: _Optional[int] = ..., last_trade_id: _Optional[int] = ..., revision: _Optional[int] = ..., is_empty: bool = ..., in_progress: bool = ..., volatility: _Optional[str] = ...) -> None: ...

class StreamCandlesRequest(_message.Message):
    __slots__ = ("symbols", "intervals", "exchanges", "cursor", "start_time_us", "from_beginning", "include_in_progress", "batch")
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    INTERVALS_FIELD_NUMBER: _ClassVar[int]
    EXCHANGES_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    START_TIME_US_FIELD_NUMBER: _ClassVar[int]
    FROM_BEGINNING_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_IN_PROGRESS_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    symbols: _containers.RepeatedScalarFieldContainer[str]
    intervals: _containers.RepeatedScalarFieldContainer[str]
    exchanges: _containers.RepeatedScalarFieldContainer[str]
    cursor: Cursor
    start_time_us: int
    from_beginning: bool
    include_in_progress: bool
    batch: bool
    def __init__(self, symbols: _Optional[_Iterable[str]] = ..., intervals: _Optional[_Iterable[str]] = ..., exchanges: _Optional[_Iterable[str]] = ..., cursor: _Optional[_Union[Cursor, _Mapping]] = ..., start_time_us: _Optional[int] = ..., from_beginning: bool = ..., include_in_progress: bool = ..., batch: bool = ...) -> None: ...

class CandleEvent(_message.Message):
    __slots__ = ("candle", "heartbeat", "cursor", "kafka_timestamp_us", "replay", "events")
    CANDLE_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    KAFKA_TIMESTAMP_US_FIELD_NUMBER: _ClassVar[int]
    REPLAY_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    candle: Candle
    heartbeat: Heartbeat
    cursor: Cursor
    kafka_timestamp_us: int
    replay: bool
    events: _containers.RepeatedCompositeFieldContainer[CandleEvent]
    def __init__(self, candle: _Optional[_Union[Candle, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., cursor: _Optional[_Union[Cursor, _Mapping]] = ..., kafka_timestamp_us: _Optional[int] = ..., replay: bool = ..., events: _Optional[_Iterable[_Union[CandleEvent, _Mapping]]] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("server_time_us",)
    SERVER_TIME_US_FIELD_NUMBER: _ClassVar[int]
    server_time_us: int
    def __init__(self, server_time_us: _Optional[int] = ...) -> None: ...

class GetCandlesRequest(_message.Message):
    __slots__ = ("exchange", "symbol", "interval", "start_us", "end_us", "limit", "snapshot_id", "as_of_us")
    EXCHANGE_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    START_US_FIELD_NUMBER: _ClassVar[int]
    END_US_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_ID_FIELD_NUMBER: _ClassVar[int]
    AS_OF_US_FIELD_NUMBER: _ClassVar[int]
    exchange: str
    symbol: str
    interval: str
    start_us: int
    end_us: int
    limit: int
    snapshot_id: int
    as_of_us: int
    def __init__(self, exchange: _Optional[str] = ..., symbol: _Optional[str] = ..., interval: _Optional[str] = ..., start_us: _Optional[int] = ..., end_us: _Optional[int] = ..., limit: _Optional[int] = ..., snapshot_id: _Optional[int] = ..., as_of_us: _Optional[int] = ...) -> None: ...

class GetCandlesResponse(_message.Message):
    __slots__ = ("candles", "snapshot_id")
    CANDLES_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_ID_FIELD_NUMBER: _ClassVar[int]
    candles: _containers.RepeatedCompositeFieldContainer[Candle]
    snapshot_id: int
    def __init__(self, candles: _Optional[_Iterable[_Union[Candle, _Mapping]]] = ..., snapshot_id: _Optional[int] = ...) -> None: ...

class Anomaly(_message.Message):
    __slots__ = ("anomaly_id", "rule", "severity", "exchange", "symbol", "interval", "window_start_us", "window_end_us", "value", "threshold", "status", "candle_revision", "details")
    class DetailsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ANOMALY_ID_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    EXCHANGE_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_US_FIELD_NUMBER: _ClassVar[int]
    WINDOW_END_US_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CANDLE_REVISION_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
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
    status: str
    candle_revision: int
    details: _containers.ScalarMap[str, str]
    def __init__(self, anomaly_id: _Optional[str] = ..., rule: _Optional[str] = ..., severity: _Optional[str] = ..., exchange: _Optional[str] = ..., symbol: _Optional[str] = ..., interval: _Optional[str] = ..., window_start_us: _Optional[int] = ..., window_end_us: _Optional[int] = ..., value: _Optional[float] = ..., threshold: _Optional[float] = ..., status: _Optional[str] = ..., candle_revision: _Optional[int] = ..., details: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Explanation(_message.Message):
    __slots__ = ("anomaly_id", "summary", "key_factors", "confidence", "caveats", "model", "offline", "created_at_us")
    ANOMALY_ID_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    KEY_FACTORS_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    CAVEATS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    OFFLINE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_US_FIELD_NUMBER: _ClassVar[int]
    anomaly_id: str
    summary: str
    key_factors: _containers.RepeatedScalarFieldContainer[str]
    confidence: float
    caveats: _containers.RepeatedScalarFieldContainer[str]
    model: str
    offline: bool
    created_at_us: int
    def __init__(self, anomaly_id: _Optional[str] = ..., summary: _Optional[str] = ..., key_factors: _Optional[_Iterable[str]] = ..., confidence: _Optional[float] = ..., caveats: _Optional[_Iterable[str]] = ..., model: _Optional[str] = ..., offline: bool = ..., created_at_us: _Optional[int] = ...) -> None: ...

class AnomalyWithExplanation(_message.Message):
    __slots__ = ("anomaly", "explanation")
    ANOMALY_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    anomaly: Anomaly
    explanation: Explanation
    def __init__(self, anomaly: _Optional[_Union[Anomaly, _Mapping]] = ..., explanation: _Optional[_Union[Explanation, _Mapping]] = ...) -> None: ...

class StreamAnomaliesRequest(_message.Message):
    __slots__ = ("symbols", "cursor", "start_time_us", "from_beginning")
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    START_TIME_US_FIELD_NUMBER: _ClassVar[int]
    FROM_BEGINNING_FIELD_NUMBER: _ClassVar[int]
    symbols: _containers.RepeatedScalarFieldContainer[str]
    cursor: Cursor
    start_time_us: int
    from_beginning: bool
    def __init__(self, symbols: _Optional[_Iterable[str]] = ..., cursor: _Optional[_Union[Cursor, _Mapping]] = ..., start_time_us: _Optional[int] = ..., from_beginning: bool = ...) -> None: ...

class AnomalyEvent(_message.Message):
    __slots__ = ("anomaly", "explanation_update", "heartbeat", "cursor", "kafka_timestamp_us", "replay")
    ANOMALY_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_UPDATE_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    KAFKA_TIMESTAMP_US_FIELD_NUMBER: _ClassVar[int]
    REPLAY_FIELD_NUMBER: _ClassVar[int]
    anomaly: AnomalyWithExplanation
    explanation_update: AnomalyWithExplanation
    heartbeat: Heartbeat
    cursor: Cursor
    kafka_timestamp_us: int
    replay: bool
    def __init__(self, anomaly: _Optional[_Union[AnomalyWithExplanation, _Mapping]] = ..., explanation_update: _Optional[_Union[AnomalyWithExplanation, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., cursor: _Optional[_Union[Cursor, _Mapping]] = ..., kafka_timestamp_us: _Optional[int] = ..., replay: bool = ...) -> None: ...

class GetAnomalyRequest(_message.Message):
    __slots__ = ("anomaly_id",)
    ANOMALY_ID_FIELD_NUMBER: _ClassVar[int]
    anomaly_id: str
    def __init__(self, anomaly_id: _Optional[str] = ...) -> None: ...

class ListSymbolsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SymbolInfo(_message.Message):
    __slots__ = ("exchange", "symbol", "intervals")
    EXCHANGE_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    INTERVALS_FIELD_NUMBER: _ClassVar[int]
    exchange: str
    symbol: str
    intervals: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, exchange: _Optional[str] = ..., symbol: _Optional[str] = ..., intervals: _Optional[_Iterable[str]] = ...) -> None: ...

class ListSymbolsResponse(_message.Message):
    __slots__ = ("symbols",)
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    symbols: _containers.RepeatedCompositeFieldContainer[SymbolInfo]
    def __init__(self, symbols: _Optional[_Iterable[_Union[SymbolInfo, _Mapping]]] = ...) -> None: ...
