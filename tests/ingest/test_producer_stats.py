"""Produce latency from librdkafka's statistics (statistics.interval.ms + stats_cb): the
mapping of a real statistics document to the Prometheus gauges, and on the real broker the
gauges filling with sane values in both delivery-report modes (errors-only is the default)."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from candleflow.binance_files import read_trades
from candleflow.config import Topics
from devstack.fakes.exchange import binance_agg_frames
from devstack.sample_data import COINM_DAY
from devstack.stack import Stack
from ingest import metrics
from ingest.connection import Connection, endpoint
from ingest.lane import fast_lane
from ingest.producer import ProducerSettings, TradeProducer

# Recorded from librdkafka 2.16.0 (confluent-kafka 2.16.0) producing trades to the test
# stack's broker with TradeProducer(statistics_interval_ms=200): not hand-written.
RECORDED = Path(__file__).parent / "data" / "librdkafka_stats.json"
WINDOWS = {"rtt": "rtt", "queue": "int_latency", "outbuf": "outbuf_latency"}


def _gauge(broker: str, kind: str, stat: str) -> float | None:
    return REGISTRY.get_sample_value(
        "candleflow_ingest_kafka_broker_latency_seconds",
        {"broker": broker, "kind": kind, "stat": stat},
    )


def _check_exported(stats: dict) -> None:  # type: ignore[type-arg]
    """The gauges hold exactly the document's values, µs -> s, for every real broker."""
    brokers = {n: b for n, b in stats["brokers"].items() if b["nodeid"] >= 0}
    assert brokers
    for name, broker in brokers.items():
        for kind, window in WINDOWS.items():
            w = broker[window]
            labels = {"broker": name, "kind": kind}
            assert (
                REGISTRY.get_sample_value("candleflow_ingest_kafka_broker_latency_samples", labels)
                == w["cnt"]
            )
            assert (
                REGISTRY.get_sample_value(
                    "candleflow_ingest_kafka_broker_latency_out_of_range", labels
                )
                == w["outofrange"]
            )
            if w["cnt"]:
                for stat in ("p50", "p99", "avg", "max"):
                    assert _gauge(name, kind, stat) == w[stat] / 1e6
    assert REGISTRY.get_sample_value("candleflow_ingest_kafka_queue_messages") == stats["msg_cnt"]


def test_recorded_statistics_map_to_the_gauges() -> None:
    stats = json.loads(RECORDED.read_text())
    rows = metrics.librdkafka_latencies(stats)
    (name,) = {b for b, *_ in rows}
    assert name == "127.0.0.1:29092/1"
    assert [kind for _, kind, *_ in rows] == ["rtt", "queue", "outbuf"]
    rtt = stats["brokers"][name]["rtt"]
    (_, _, samples, out_of_range, seconds), *_ = rows
    assert (samples, out_of_range) == (rtt["cnt"], rtt["outofrange"])
    assert seconds == {s: rtt[s] / 1_000_000 for s in ("p50", "p99", "avg", "max")}
    # sane: seconds, ordered (a histogram percentile is its bucket's value, which can lie a
    # little above the exact max: 35.327 ms against 35.176 in this document)
    assert 0 < seconds["p50"] <= seconds["p99"] < 10
    assert 0 < seconds["avg"] <= seconds["max"] < 10
    metrics.export_librdkafka_stats(stats)
    _check_exported(stats)

    # A window without samples (nothing sent): the counts say so, the latencies stay
    # those of the last window that had samples; bootstrap entries (nodeid -1) are skipped.
    idle = copy.deepcopy(stats)
    for window in WINDOWS.values():
        idle["brokers"][name][window].update(
            {k: 0 for k in ("min", "max", "avg", "sum", "p50", "p99", "cnt")}
        )
    idle["brokers"]["127.0.0.1:29092/bootstrap"] = dict(stats["brokers"][name], nodeid=-1)
    metrics.export_librdkafka_stats(idle)
    labels = {"broker": name, "kind": "rtt"}
    assert REGISTRY.get_sample_value("candleflow_ingest_kafka_broker_latency_samples", labels) == 0
    assert _gauge(name, "rtt", "p99") == rtt["p99"] / 1e6
    assert _gauge("127.0.0.1:29092/bootstrap", "rtt", "p99") is None


def test_default_settings_are_errors_only_reports_with_statistics() -> None:
    settings = ProducerSettings()
    assert settings.delivery_reports == "errors"
    assert settings.statistics_interval_ms == 5000


@pytest.mark.integration
@pytest.mark.parametrize("reports", ["errors", "all"])
def test_statistics_gauges_fill_from_the_real_broker(
    stack: Stack, unique_topic: Callable[..., str], reports: str
) -> None:
    topic, rejects = unique_topic("trades", partitions=3), unique_topic("rejects")
    producer = TradeProducer(
        stack.settings,
        Topics(),
        trades_topic=topic,
        rejects_topic=rejects,
        settings=ProducerSettings(delivery_reports=reports, statistics_interval_ms=100),
    )
    histogram_before = (
        REGISTRY.get_sample_value("candleflow_ingest_produce_latency_seconds_count") or 0.0
    )
    trades = [t for _, t in zip(range(2000), read_trades(COINM_DAY), strict=False)]
    conn = Connection(
        endpoint("binance", ["BTC-USD-PERP"], binance_kind="aggTrade"),
        producer,
        fast_lane=fast_lane("binance", producer),
    )
    stats: dict | None = None  # type: ignore[type-arg]
    deadline = time.monotonic() + 30
    frames = iter(binance_agg_frames(trades, "BTCUSD_PERP"))
    # produce in small steps until a statistics window saw produce requests and messages
    while stats is None and time.monotonic() < deadline:
        for frame in frames:
            conn.receive(frame)
            if producer.produced % 100 == 0:
                break
        producer.poll(0.05)
        if producer.last_stats is not None:
            doc = json.loads(producer.last_stats)
            real = [b for b in doc["brokers"].values() if b["nodeid"] >= 0]
            if real and all(b["rtt"]["cnt"] and b["int_latency"]["cnt"] for b in real):
                stats = doc
    assert stats is not None, "no statistics window with produce requests within 30 s"
    _check_exported(stats)  # the gauges are this (latest) document's values
    for name, broker in stats["brokers"].items():
        if broker["nodeid"] < 0:
            continue
        for kind in ("rtt", "queue"):
            p50, p99 = _gauge(name, kind, "p50"), _gauge(name, kind, "p99")
            avg, top = _gauge(name, kind, "avg"), _gauge(name, kind, "max")
            assert p50 is not None and p99 is not None and avg is not None and top is not None
            # sane: within a local broker's reach, ordered, and not left in µs (a
            # percentile is a histogram bucket's value and may lie a little above max)
            assert 0 <= p50 <= p99 < 30 and top < 30, (kind, p50, p99, top)
            assert 0 < avg <= top
        assert _gauge(name, "rtt", "max") > 0  # type: ignore[operator]
    producer.close()
    assert producer.delivered == producer.produced and producer.failed == 0
    histogram_after = REGISTRY.get_sample_value("candleflow_ingest_produce_latency_seconds_count")
    if reports == "all":  # the per-message histogram stays in "all" mode
        assert histogram_after is not None and histogram_after > histogram_before
    else:  # errors-only: no per-message latency at all (the statistics carry it)
        assert (histogram_after or 0.0) == histogram_before
