"""Prometheus metrics of the gRPC service (served on --metrics-port)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SUBSCRIBERS = Gauge("candleflow_serving_subscribers", "Open streams", ["stream"])
MESSAGES_SENT = Counter("candleflow_serving_messages_sent_total", "Events sent", ["stream"])
RECORDS_CONSUMED = Counter(
    "candleflow_serving_records_consumed_total",
    "Kafka records read by the shared consumer",
    ["topic"],
)
REPLAYED = Counter(
    "candleflow_serving_records_replayed_total", "Kafka records read for cursor replays", ["stream"]
)
DELIVERY_LAG = Histogram(
    "candleflow_serving_delivery_lag_seconds",
    "Kafka append time -> handed to the stream, live events only",
    ["stream"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
STREAM_LAG = Gauge(
    "candleflow_serving_stream_lag_seconds",
    "Per stream: Kafka append time of its last event -> now at sending",
    ["peer_stream"],
)
SLOW_CLIENTS = Counter(
    "candleflow_serving_slow_client_disconnects_total",
    "Streams ended with RESOURCE_EXHAUSTED (queue full)",
    ["stream"],
)
QUEUE_DEPTH = Gauge("candleflow_serving_max_queue_depth", "Deepest subscriber queue", ["stream"])
