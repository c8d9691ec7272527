"""The fan-out hot path's pure parts: batched events as concatenated bytes, and the
lock-free metrics exposed with the same names, buckets and values as prometheus-client."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY, CollectorRegistry, Histogram

from serving import convert, metrics
from serving.pb import pb
from serving.streams import pack_events
from tests.serving import data

CANDLES = data.spot_candles()[:64]


def _event(i: int, pad: int) -> bytes:
    ev = pb.CandleEvent(
        candle=convert.candle_to_pb(CANDLES[i % len(CANDLES)]),
        cursor=convert.cursor_to_pb({("candles.v1", p): i * 7 + p for p in range(pad)}),
        kafka_timestamp_us=1_700_000_000_000_000 + i,
    )
    return ev.SerializeToString()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 63), st.integers(0, 700)), min_size=1, max_size=12))
def test_packed_events_decode_to_the_same_events_in_order(spec):
    # Cursors of up to 700 partitions make events from ~300 B to ~20 KB: 2- and 3-byte
    # length prefixes.
    payloads = [_event(i, pad) for i, pad in spec]
    msg = pb.CandleEvent.FromString(pack_events(payloads))
    assert [e.SerializeToString() for e in msg.events] == payloads
    assert [convert.candle_from_pb(e.candle) for e in msg.events] == [
        CANDLES[i % len(CANDLES)] for i, _ in spec
    ]
    assert msg.WhichOneof("event") is None and not msg.HasField("cursor")


def test_lag_histogram_matches_prometheus_client():
    values = [0.0, 0.004, 0.005, 0.0051, 0.01, 0.3, 1.0, 2.6, 29.9, 30.0, 31.0, 1e6]
    reference = Histogram(
        "ref_lag_seconds", "", registry=CollectorRegistry(), buckets=metrics.LAG_BUCKETS
    )
    ours = metrics.LagHistogram()
    for v in values:
        reference.observe(v)
        ours.observe(v)
    want = {
        s.labels["le"]: s.value
        for s in next(iter(reference.collect())).samples
        if s.name.endswith("_bucket")
    }
    assert dict(ours.cumulative()) == {le: int(n) for le, n in want.items()}
    assert ours.sum == sum(values)


def test_hot_path_metrics_are_exposed_under_their_names():
    kind = "test-kind"
    metrics.MESSAGES_SENT[kind] += 41
    metrics.MESSAGES_SENT[kind] += 1
    metrics.DELIVERY_LAG[kind].observe(0.02)
    metrics.DELIVERY_LAG[kind].observe(0.2)
    metrics.STREAM_LAG[f"{kind}:7"] = 0.125
    get = REGISTRY.get_sample_value
    assert get("candleflow_serving_messages_sent_total", {"stream": kind}) == 42
    lag = "candleflow_serving_delivery_lag_seconds"
    assert get(f"{lag}_bucket", {"stream": kind, "le": "0.01"}) == 0
    assert get(f"{lag}_bucket", {"stream": kind, "le": "0.025"}) == 1
    assert get(f"{lag}_bucket", {"stream": kind, "le": "0.25"}) == 2
    assert get(f"{lag}_bucket", {"stream": kind, "le": "+Inf"}) == 2
    assert get(f"{lag}_count", {"stream": kind}) == 2
    assert abs(get(f"{lag}_sum", {"stream": kind}) - 0.22) < 1e-12
    assert get("candleflow_serving_stream_lag_seconds", {"peer_stream": f"{kind}:7"}) == 0.125
    metrics.STREAM_LAG.pop(f"{kind}:7")
    assert get("candleflow_serving_stream_lag_seconds", {"peer_stream": f"{kind}:7"}) is None
