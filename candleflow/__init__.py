"""Candleflow: exact event-time OHLCV candles from exchange trades.

This package is the domain core: types, intervals, symbols, configuration and the
Avro contracts. It imports no Kafka, Flink or gRPC code (those live in ingest/,
jobs/, serving/), so every other part can depend on it cheaply.
"""

__version__ = "0.1.0"
