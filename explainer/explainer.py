"""The idempotent core: at most one explanation (and one LLM call) per anomaly_id.

No Kafka here: the service feeds anomalies in and writes what comes out; tests drive it
directly. The set of explained ids is owned by the caller (loaded from explanations.v1 at
start, so it survives restarts and replays).
"""

from __future__ import annotations

import time
from collections.abc import Callable, MutableSet

import structlog

from candleflow.anomaly_rules import RETRACTED
from candleflow.domain import Anomaly, Explanation
from explainer.context import AnomalyContext
from explainer.llm import ClaudeExplainer
from explainer.metrics import ExplainerMetrics
from explainer.offline import explain_offline

log = structlog.get_logger("candleflow.explainer")

ContextSource = Callable[[Anomaly], AnomalyContext]


def now_us() -> int:
    return time.time_ns() // 1000


class Explainer:
    def __init__(
        self,
        *,
        model: str,
        metrics: ExplainerMetrics,
        explained: MutableSet[str],
        context: ContextSource,
        llm: ClaudeExplainer | None,
        clock_us: Callable[[], int] = now_us,
    ) -> None:
        self.model = model
        self.metrics = metrics
        self.explained = explained
        self.context = context
        self.llm = llm
        self.clock_us = clock_us

    def explain(self, anomaly: Anomaly) -> Explanation | None:
        """The explanation to write for `anomaly`, or None when there is nothing to do.

        The caller adds the id to `explained` once the explanation is durably written.
        """
        if anomaly.status == RETRACTED:
            self.metrics.skipped.labels("retracted").inc()
            return None
        if anomaly.anomaly_id in self.explained:
            self.metrics.skipped.labels("already_explained").inc()
            log.debug("explainer.skip_explained", anomaly_id=anomaly.anomaly_id)
            return None
        if self.llm is None:
            return self._offline(anomaly, "no_api_key")
        ctx = self.context(anomaly)
        answer, source = self.llm.explain(anomaly.anomaly_id, ctx.render())
        if answer is None:
            return self._offline(anomaly, source)
        self.metrics.explanations.labels("llm").inc()
        log.info(
            "explainer.explained",
            anomaly_id=anomaly.anomaly_id,
            rule=anomaly.rule,
            source="llm",
            confidence=answer.confidence,
        )
        return Explanation(
            anomaly_id=anomaly.anomaly_id,
            summary=answer.summary,
            key_factors=list(answer.key_factors),
            confidence=answer.confidence,
            caveats=list(answer.caveats),
            model=self.model,
            offline=False,
            created_at_us=self.clock_us(),
        )

    def _offline(self, anomaly: Anomaly, reason: str) -> Explanation:
        self.metrics.explanations.labels(f"offline_{reason}").inc()
        log.info(
            "explainer.explained",
            anomaly_id=anomaly.anomaly_id,
            rule=anomaly.rule,
            source="offline",
            reason=reason,
        )
        return explain_offline(anomaly, self.clock_us(), reason)
