"""candles.v1 under a log cleaner that really runs (docs/semantics.md, "The candle topic's key").

The same candle stream, with a correction that retracts a volume spike, goes to two topics
with segments that roll every 100 ms and a cleaner that wants any dirty log:

- the production policy (`default_topics()`: delete, keyed by market, 3 partitions);
- the rejected alternative: compact,delete keyed by window (exchange:symbol:interval:start).

We wait until the cleaner has removed records from the compacted copy (so it has run on this
broker in this time), then check: the production topic holds every record, in per-market
order, and a consumer from earliest rebuilds the same candles and, through the real anomaly
job started from earliest, the same anomalies as before; the compacted copy still holds each
window's latest revision but lost the revision a replay needs to raise the spike again.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from adapters import topics
from candleflow.anomaly_rules import detect_all
from candleflow.config import Topics
from candleflow.domain import Candle
from devstack.testing import unique_name
from explainer.service import read_topic_to_end
from jobs.anomalies import build, make_stream_table_env, production_config
from jobs.operator_uids import execute
from tests.anomalies.test_job_local import crafted
from tests.kafka_cleaner import (
    CLEANER_NOW,
    latest_per_window,
    market_key,
    produce_rolling,
    read_with_offsets,
    wait_until_compacted,
    window_key,
)

pytestmark = [pytest.mark.integration, pytest.mark.flink]


def per_market(candles: list[Candle]) -> dict[str, list[Candle]]:
    out: dict[str, list[Candle]] = defaultdict(list)
    for c in candles:
        out[market_key(c)].append(c)
    return dict(out)


def anomalies(a_list) -> list[tuple[str, str]]:
    return sorted((a.anomaly_id, a.status) for a in a_list)


def test_candle_history_survives_a_running_log_cleaner(stack, unique_topic, unique_namespace):
    s = stack.settings
    stream = crafted()
    assert any(c.revision == 1 for c in stream), "the stream must hold a correction"
    sent = stream + list({market_key(c): c for c in stream}.values())
    before = anomalies(detect_all(stream))
    spec = next(t for t in topics.default_topics() if t.name == Topics().candles)

    production = unique_topic(
        "candles", partitions=spec.partitions, cleanup_policy=spec.cleanup_policy, **CLEANER_NOW
    )
    by_window = unique_topic("candles-by-window", cleanup_policy="compact,delete", **CLEANER_NOW)
    produce_rolling(s, production, stream, market_key)
    produce_rolling(s, by_window, stream, window_key)

    compacted = wait_until_compacted(s, by_window, len(sent))
    # The window-keyed copy keeps each window's latest revision ...
    assert latest_per_window(compacted) == latest_per_window(stream)
    # ... but a replay of it no longer raises (and retracts) the volume spike.
    assert anomalies(detect_all(compacted)) != before

    # The production topic, cleaned over the same time: every record, offsets from 0 with
    # no gap, each market in one partition in the order produced.
    records = read_with_offsets(s, production)
    assert len(records) == len(sent)
    offsets = defaultdict(list)
    for p, o, _ in records:
        offsets[p].append(o)
    assert all(o == list(range(len(o))) for o in offsets.values())
    replayed = [c for _, _, c in records]
    assert per_market(replayed) == per_market(sent)
    partitions = defaultdict(set)
    for p, _, c in records:
        partitions[market_key(c)].add(p)
    assert all(len(ps) == 1 for ps in partitions.values()), partitions
    assert latest_per_window(replayed) == latest_per_window(stream)

    # The anomaly job restarted from earliest gives the anomalies of the live run.
    topics_ = Topics(candles=production, anomalies=unique_topic("anomalies"))
    t_env = make_stream_table_env(parallelism=2, checkpoint_interval_ms=1000, stack=s)
    config = production_config(
        s,
        topics_,
        bounded=True,
        iceberg_database=unique_namespace,
        group_id=unique_name("anomalies"),
        transactional_id_prefix=unique_name("anomalies-tx"),
        startup_mode="earliest-offset",
    )
    execute(t_env, build(t_env, config)).wait()
    assert anomalies(read_topic_to_end(s, topics_.anomalies, "anomaly")) == before
