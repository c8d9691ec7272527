"""Prompt caching engages: the cached prefix (tool definition + system prompt) is at or
above the documented minimum of the configured model, so the second explanation reads it
from the cache; the fake Messages API applies those minimums, so a short prefix does not
pass here either. Real anthropic SDK against devstack/fakes/anthropic_server.py."""

from __future__ import annotations

import json
from dataclasses import replace

import anthropic
import pytest

from devstack.fakes.anthropic_server import (
    MIN_CACHEABLE_TOKENS,
    estimate_tokens,
    min_cacheable_tokens,
)
from explainer.llm import TOOL
from explainer.prompt import rule_catalogue, system_prompt
from explainer.settings import ExplainerSettings
from tests.explainer.test_llm import KEY, make, value


def prefix_tokens(system: str) -> int:
    """The fake's estimate of the cached prefix: the tools, then the marked system block."""
    block = {"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}
    return estimate_tokens(json.dumps([[TOOL], [block]], sort_keys=True))


def test_prefix_is_above_every_documented_minimum() -> None:
    """Switching the model to any listed one keeps caching on (Haiku 4.5 is the default)."""
    assert ExplainerSettings.model_fields["model"].default == "claude-haiku-4-5"
    assert min_cacheable_tokens("claude-haiku-4-5") == 4096
    assert min_cacheable_tokens("claude-haiku-4-5-20251001") == 4096
    assert min_cacheable_tokens("claude-sonnet-4-5") == 1024
    tokens = prefix_tokens(system_prompt())
    assert tokens >= max(MIN_CACHEABLE_TOKENS.values()), tokens
    assert tokens >= 1.1 * 4096  # a margin, so a small edit does not silently turn it off


def test_prompt_carries_the_configured_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANDLEFLOW_ANOMALY_VOLUME_Z", "7.5")
    assert "Fires at z >= 7.5 (MEDIUM)" in rule_catalogue()
    prompt = system_prompt()
    for rule in ("VOLUME_SPIKE", "PRICE_MOVE", "GAP", "CROSS_EXCHANGE_DIVERGENCE"):
        assert f"({rule}), the user message:\n<data>" in prompt  # a worked example each


def test_second_explanation_reads_the_prefix_from_the_cache(fake_anthropic, monkeypatch):
    ex, metrics, a, _, settings = make(fake_anthropic, monkeypatch)
    assert ex.explain(a) is not None
    assert ex.explain(replace(a, anomaly_id="other")) is not None
    first, second = (r.body for r in fake_anthropic.requests)
    assert first["model"] == second["model"] == settings.model
    assert first["system"][-1]["cache_control"] == {"type": "ephemeral"}
    assert first["system"] == second["system"] and first["tools"] == second["tools"]
    assert value(metrics, "candleflow_explainer_llm_tokens_total", kind="cache_write") >= 4096
    assert value(metrics, "candleflow_explainer_llm_tokens_total", kind="cache_read") >= 4096


def test_fake_does_not_cache_a_prefix_below_the_model_minimum(fake_anthropic) -> None:
    """The old few-hundred-token prompt: marked, answered, never cached (as the real API)."""
    client = anthropic.Anthropic(api_key=KEY, base_url=fake_anthropic.base_url, max_retries=0)
    short = "You explain market anomalies. " * 60  # ~400 tokens
    long = system_prompt()
    for model, text, cached in (
        ("claude-haiku-4-5", short, False),
        ("claude-haiku-4-5", long, True),
        ("claude-sonnet-4-5", short * 3, True),  # ~1,200 tokens: above Sonnet 4.5's 1,024
        ("claude-haiku-4-5", short * 3, False),  # ... and below Haiku 4.5's 4,096
    ):
        usages = []
        for _ in range(2):
            response = client.messages.create(
                model=model,
                max_tokens=64,
                system=[{"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}],
                messages=[{"role": "user", "content": "hi"}],
            )
            usages.append(response.usage)
        if cached:
            assert usages[0].cache_creation_input_tokens > 0, model
            assert usages[1].cache_read_input_tokens == usages[0].cache_creation_input_tokens
        else:
            assert all(u.cache_creation_input_tokens == 0 for u in usages), model
            assert all(u.cache_read_input_tokens == 0 for u in usages), model
            assert usages[1].input_tokens == usages[0].input_tokens > estimate_tokens(text) - 5
