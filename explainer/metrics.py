"""Prometheus metrics of the explainer, in their own registry (one per explainer instance)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge


@dataclass
class ExplainerMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.calls = Counter(
            "candleflow_explainer_llm_calls",
            "Messages API requests by outcome",
            ["outcome"],
            registry=r,
        )
        self.retries = Counter(
            "candleflow_explainer_llm_retries", "Retried requests by status", ["status"], registry=r
        )
        self.tokens = Counter(
            "candleflow_explainer_llm_tokens",
            "Tokens by kind (input, output, cache_read, cache_write)",
            ["kind"],
            registry=r,
        )
        self.cost = Counter(
            "candleflow_explainer_llm_cost_usd", "Estimated cost in USD", registry=r
        )
        self.budget_exhausted = Counter(
            "candleflow_explainer_budget_exhausted",
            "Calls not made because a budget was spent",
            ["window"],
            registry=r,
        )
        self.explanations = Counter(
            "candleflow_explainer_explanations",
            "Explanations written, by source (llm or offline reason)",
            ["source"],
            registry=r,
        )
        self.skipped = Counter(
            "candleflow_explainer_skipped",
            "Anomalies not explained, by reason",
            ["reason"],
            registry=r,
        )
        self.explained_ids = Gauge(
            "candleflow_explainer_explained_ids", "Anomaly ids known to be explained", registry=r
        )
