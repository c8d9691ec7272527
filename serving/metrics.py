"""Prometheus metrics of the gRPC service (served on --metrics-port).

The per-event metrics (messages sent, delivery lag, per-stream lag) are updated once per
(event, subscriber) on the event loop: a prometheus-client call costs 2-9 us there (a lock
and, for a histogram, a Python loop over the buckets), a large share of the fan-out's own
cost. They are kept in plain counters instead (loop thread only) and turned into metric
families when scraped (`_HotPathCollector`), with the same names and labels as before.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterator

from prometheus_client import REGISTRY, Counter, Gauge
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

SUBSCRIBERS = Gauge("candleflow_serving_subscribers", "Open streams", ["stream"])
RECORDS_CONSUMED = Counter(
    "candleflow_serving_records_consumed_total",
    "Kafka records read by the shared consumer",
    ["topic"],
)
REPLAYED = Counter(
    "candleflow_serving_records_replayed_total", "Kafka records read for cursor replays", ["stream"]
)
SLOW_CLIENTS = Counter(
    "candleflow_serving_slow_client_disconnects_total",
    "Streams ended with RESOURCE_EXHAUSTED (queue full)",
    ["stream"],
)
QUEUE_DEPTH = Gauge("candleflow_serving_max_queue_depth", "Deepest subscriber queue", ["stream"])

LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_LE = (*map(floatToGoString, LAG_BUCKETS), "+Inf")  # "le" labels as prometheus-client writes


class LagHistogram:
    """A histogram's state without locks: observe() is a bisect and two additions."""

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(LAG_BUCKETS) + 1)  # last: above the highest bound
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(LAG_BUCKETS, value)] += 1  # le: value <= bound
        self.sum += value

    def cumulative(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        total = 0
        for bound, n in zip(_LE, list(self.counts), strict=True):
            total += n
            out.append((bound, total))
        return out


# stream kind -> events handed to gRPC / their Kafka-time -> hand-off lag
MESSAGES_SENT: defaultdict[str, int] = defaultdict(int)
DELIVERY_LAG: defaultdict[str, LagHistogram] = defaultdict(LagHistogram)
# "<kind>:<stream id>" -> Kafka time of its last event -> now at sending, seconds
STREAM_LAG: dict[str, float] = {}


class _HotPathCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        sent = CounterMetricFamily(
            "candleflow_serving_messages_sent", "Events sent", labels=["stream"]
        )
        for kind, n in list(MESSAGES_SENT.items()):
            sent.add_metric([kind], n)
        yield sent
        lag = HistogramMetricFamily(
            "candleflow_serving_delivery_lag_seconds",
            "Kafka append time -> handed to the stream, live events only",
            labels=["stream"],
        )
        for kind, hist in list(DELIVERY_LAG.items()):
            lag.add_metric([kind], hist.cumulative(), hist.sum)
        yield lag
        per_stream = GaugeMetricFamily(
            "candleflow_serving_stream_lag_seconds",
            "Per stream: Kafka append time of its last event -> now at sending",
            labels=["peer_stream"],
        )
        for label, seconds in list(STREAM_LAG.items()):
            per_stream.add_metric([label], seconds)
        yield per_stream


REGISTRY.register(_HotPathCollector())
