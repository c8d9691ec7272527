"""The explainer service on the real stack (Kafka, registry, Iceberg) with the fake Claude:
one call per anomaly across a restart and a full replay, exactly one explanation per id in
explanations.v1 (read_committed) and gold.explanations."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from confluent_kafka import Producer

from adapters import avro
from candleflow.anomaly_rules import ACTIVE, RETRACTED, detect_all
from candleflow.config import Topics
from devstack.candle_series import noisy_series
from devstack.testing import unique_name
from explainer.iceberg import ExplanationsTable
from explainer.service import ExplainerService, read_topic_to_end
from explainer.settings import ExplainerSettings

pytestmark = pytest.mark.integration


def events():
    """Candles of two markets, and their anomalies: spikes, and one retracted."""
    a = noisy_series(90, exchange="binance", symbol="ETH-USDT")
    a[70] = replace(a[70], volume=Decimal("40"))
    a[80] = replace(a[80], low=a[80].close * Decimal("0.99"))
    b = noisy_series(90, exchange="kraken", symbol="ETH-USDT")
    b[75] = replace(b[75], volume=Decimal("60"))
    fix = replace(a[80], low=a[79].low, revision=1)  # the wide candle was a bad print
    candles = a + b + [fix]
    anomalies = detect_all(candles)
    assert [(x.rule, x.status) for x in anomalies] == [
        ("VOLUME_SPIKE", ACTIVE),
        ("VOLATILITY_SPIKE", ACTIVE),
        ("VOLUME_SPIKE", ACTIVE),
        ("VOLATILITY_SPIKE", RETRACTED),
    ]
    return candles, anomalies


def produce(settings, topic, contract, records):
    client = avro.registry_client(settings)
    ser = avro.serializer(client, contract)
    p = Producer({"bootstrap.servers": settings.bootstrap_servers, "enable.idempotence": True})
    for r in records:
        key = getattr(r, "anomaly_id", None) or f"{r.exchange}:{r.symbol}"
        p.produce(topic, key=key.encode(), value=ser(r, avro.value_context(topic)))
    assert p.flush(30) == 0


def test_one_call_per_anomaly_across_restart_and_replay(
    stack, unique_topic, unique_namespace, fake_anthropic, monkeypatch
):
    s = stack.settings
    topics = Topics(
        candles=unique_topic("candles"),
        anomalies=unique_topic("anomalies"),
        explanations=unique_topic("explanations", cleanup_policy="compact"),
    )
    candles, anomalies = events()
    produce(s, topics.candles, "candle", candles)
    produce(s, topics.anomalies, "anomaly", anomalies)
    active = {a.anomaly_id for a in anomalies if a.status == ACTIVE}
    assert len(active) == 3

    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-key")
    monkeypatch.setenv("CANDLEFLOW_EXPLAINER_BASE_URL", fake_anthropic.base_url)
    table = f"{unique_namespace}.explanations"

    def service(group: str) -> ExplainerService:
        settings = ExplainerSettings(
            group_id=group,
            transactional_id=unique_name("tx"),
            iceberg_table=table,
            backoff_base_seconds=0.01,
        )
        return ExplainerService(settings, s, topics)

    group = unique_name("explainer")
    service(group).run(max_idle_s=3)
    assert len(fake_anthropic.requests) == 3
    # the context carried the market's candles around the event, read from the candles topic
    first = fake_anthropic.requests[0].body["messages"][0]["content"]
    assert '"volume":"40"' in first and '"exchange":"kraken"' in first

    def explained():
        rows = read_topic_to_end(s, topics.explanations, "explanation")
        return sorted(e.anomaly_id for e in rows), rows

    ids, rows = explained()
    assert ids == sorted(active)
    assert {e.offline for e in rows} == {False}
    assert {e.summary for e in rows} == {
        "Volume jumped far above its recent average in one minute."
    }

    # restart: same group, nothing new to read, and the ids are known anyway
    service(group).run(max_idle_s=3)
    # full replay: the whole history again under a new consumer group, plus duplicates
    produce(s, topics.anomalies, "anomaly", anomalies)
    replay = service(unique_name("explainer-replay"))
    replay.run(max_idle_s=3)
    assert len(fake_anthropic.requests) == 3  # no second call for any anomaly
    assert (
        replay.metrics.registry.get_sample_value(
            "candleflow_explainer_skipped_total", {"reason": "already_explained"}
        )
        == 6
    )
    assert explained()[0] == sorted(active)

    gold = ExplanationsTable(s, table).rows()
    assert sorted(r["anomaly_id"] for r in gold) == sorted(active)

    # gold.explanations is repaired from the topic (a crash between the two writes)
    fresh = f"{unique_namespace}.explanations_repaired"
    svc = ExplainerService(ExplainerSettings(iceberg_table=fresh), s, topics)
    svc.recover()
    assert sorted(r["anomaly_id"] for r in ExplanationsTable(s, fresh).rows()) == sorted(active)
    assert len(fake_anthropic.requests) == 3

    # what the demo shows: each anomaly once, its final status, its explanation
    from rich.console import Console

    from explainer.report import explained_anomalies, render, wait_for_explanations

    shown = explained_anomalies(s, topics)
    assert wait_for_explanations(s, topics, timeout_s=30, settle_s=0) == shown
    assert [(x.anomaly.rule, x.anomaly.status, x.explanation is not None) for x in shown] == [
        ("VOLUME_SPIKE", ACTIVE, True),
        ("VOLUME_SPIKE", ACTIVE, True),
        ("VOLATILITY_SPIKE", RETRACTED, True),  # explained while active, then retracted
    ]
    console = Console(record=True, width=200)
    render(shown, console)
    out = console.export_text()
    assert "RETRACTED" in out and "Volume jumped far above its recent average" in out


def test_offline_without_key(stack, unique_topic, unique_namespace, monkeypatch):
    s = stack.settings
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    topics = Topics(
        candles=unique_topic("candles"),
        anomalies=unique_topic("anomalies"),
        explanations=unique_topic("explanations", cleanup_policy="compact"),
    )
    _, anomalies = events()
    produce(s, topics.anomalies, "anomaly", anomalies)
    settings = ExplainerSettings(
        group_id=unique_name("g"),
        transactional_id=unique_name("tx"),
        iceberg_table=f"{unique_namespace}.explanations",
    )
    ExplainerService(settings, s, topics).run(max_idle_s=3)
    rows = read_topic_to_end(s, topics.explanations, "explanation")
    assert len(rows) == 3 and {e.offline for e in rows} == {True}
    assert {e.model for e in rows} == {"offline"}
    summaries = {e.summary for e in rows}
    assert (
        "ETH-USDT on binance: the 1m volume at 2026-05-08 01:10:00 UTC was 3.8x its 60-candle "
        "average (40 vs 10.50)." in summaries
    )
    assert (
        "ETH-USDT on binance: the 1m candle at 2026-05-08 01:20:00 UTC spanned 1.040% from low "
        "99 to high 100.04, against 0.092% on average." in summaries
    )
    assert any(
        x.startswith("ETH-USDT on kraken: the 1m volume at 2026-05-08 01:15") for x in summaries
    )
