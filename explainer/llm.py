"""The Claude call: one Messages API request per anomaly, validated, retried, budgeted.

- The system prompt (explainer/prompt.py) is one text block marked
  `cache_control: ephemeral`, the same for every anomaly, so repeated calls read it and
  the tool definition before it from the prompt cache. It is long enough to be cached:
  a prefix under the model's documented minimum (4,096 tokens for Claude Haiku 4.5) is
  silently not cached.
- The answer is forced through a tool (`record_explanation`) whose input is validated
  with pydantic; a malformed answer is asked again `malformed_retries` times, then the
  caller falls back to the offline explainer. Never a crash.
- 429, 5xx and 529 (overloaded) and connection errors are retried with exponential
  backoff, honouring `retry-after`; our own loop (the SDK's retries are off) so every
  retry is logged and counted.
- Budgets (calls per minute and per day, dollars per day) are checked before each request.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

import anthropic
import structlog
from pydantic import BaseModel, Field, ValidationError

from explainer.budget import Budget
from explainer.metrics import ExplainerMetrics
from explainer.prompt import system_prompt
from explainer.settings import ExplainerSettings

log = structlog.get_logger("candleflow.explainer.llm")

RETRYABLE = {408, 409, 429, 500, 502, 503, 504, 529}
TOOL_NAME = "record_explanation"


class Answer(BaseModel):
    """The structured answer; validated before anything is stored."""

    summary: str = Field(min_length=1, max_length=1000)
    key_factors: list[str] = Field(default_factory=list, max_length=8)
    confidence: float = Field(ge=0.0, le=1.0)
    caveats: list[str] = Field(default_factory=list, max_length=8)


TOOL = {
    "name": TOOL_NAME,
    "description": "Record the plain-language explanation of the anomaly.",
    "input_schema": {
        "type": "object",
        "properties": {
            "summary": {"type": "string", "description": "one or two plain sentences"},
            "key_factors": {"type": "array", "items": {"type": "string"}, "maxItems": 5},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "caveats": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["summary", "key_factors", "confidence", "caveats"],
    },
}


def parse_answer(content: list[Any]) -> Answer:
    """The Answer in a response's content blocks: the tool input, or JSON in a text block."""
    for block in content:
        if getattr(block, "type", None) == "tool_use" and block.name == TOOL_NAME:
            return Answer.model_validate(block.input)
    for block in content:
        if getattr(block, "type", None) == "text":
            text = block.text
            start, end = text.find("{"), text.rfind("}")
            if start >= 0 and end > start:
                return Answer.model_validate(json.loads(text[start : end + 1]))
    raise ValueError("no tool_use or JSON text block in the answer")


class ClaudeExplainer:
    def __init__(
        self,
        settings: ExplainerSettings,
        metrics: ExplainerMetrics,
        budget: Budget,
        *,
        client: anthropic.Anthropic | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if client is None:
            if not settings.online:
                raise ValueError("ClaudeExplainer needs ANTHROPIC_API_KEY in the environment")
            assert settings.api_key is not None
            client = anthropic.Anthropic(
                api_key=settings.api_key.get_secret_value(),
                base_url=settings.base_url,
                timeout=settings.timeout_seconds,
                max_retries=0,
            )
        self.client = client
        self.system_prompt = system_prompt()
        self.settings = settings
        self.metrics = metrics
        self.budget = budget
        self.sleep = sleep

    def explain(self, anomaly_id: str, user_message: str) -> tuple[Answer | None, str]:
        """(answer, source): source is "llm", or the reason the caller must go offline."""
        s = self.settings
        for attempt in range(s.malformed_retries + 1):
            response, reason = self._request(anomaly_id, user_message)
            if response is None:
                return None, reason
            try:
                answer = parse_answer(response.content)
            except (ValidationError, ValueError, json.JSONDecodeError) as exc:
                self.metrics.calls.labels("malformed").inc()
                log.warning(
                    "explainer.malformed_answer",
                    anomaly_id=anomaly_id,
                    attempt=attempt,
                    error=str(exc)[:300],
                )
                continue
            self.metrics.calls.labels("ok").inc()
            return answer, "llm"
        return None, "malformed_answer"

    def _request(self, anomaly_id: str, user_message: str) -> tuple[Any | None, str]:
        s = self.settings
        for attempt in range(s.max_retries + 1):
            window = self.budget.exhausted()
            if window is not None:
                self.metrics.budget_exhausted.labels(window).inc()
                log.warning(
                    "explainer.budget_exhausted",
                    anomaly_id=anomaly_id,
                    window=window,
                    calls_per_minute=s.calls_per_minute,
                    calls_per_day=s.calls_per_day,
                    usd_per_day=s.usd_per_day,
                    action="LLM call not made; writing the offline explanation",
                )
                return None, f"budget_{window}"
            try:
                # kwargs typed loosely: the SDK's overloads want its TypedDicts
                create: Callable[..., Any] = self.client.messages.create
                response = create(
                    model=s.model,
                    max_tokens=s.max_tokens,
                    system=[
                        {
                            "type": "text",
                            "text": self.system_prompt,
                            "cache_control": {"type": "ephemeral"},
                        }
                    ],
                    messages=[{"role": "user", "content": user_message}],
                    tools=[TOOL],
                    tool_choice={"type": "tool", "name": TOOL_NAME},
                    timeout=s.timeout_seconds,
                )
            except anthropic.APIStatusError as exc:
                status = exc.status_code
                if status not in RETRYABLE or attempt == s.max_retries:
                    self.metrics.calls.labels(f"error_{status}").inc()
                    log.error(
                        "explainer.api_error",
                        anomaly_id=anomaly_id,
                        status=status,
                        attempts=attempt + 1,
                    )
                    return None, f"api_error_{status}"
                self._backoff(
                    anomaly_id, attempt, str(status), exc.response.headers.get("retry-after")
                )
                continue
            except anthropic.APIConnectionError as exc:  # includes timeouts
                if attempt == s.max_retries:
                    self.metrics.calls.labels("error_connection").inc()
                    log.error(
                        "explainer.api_unreachable",
                        anomaly_id=anomaly_id,
                        error=type(exc).__name__,
                        attempts=attempt + 1,
                    )
                    return None, "api_unreachable"
                self._backoff(anomaly_id, attempt, "connection", None)
                continue
            self.budget.record(self._account(response.usage))
            return response, "llm"
        raise AssertionError("unreachable")

    def _backoff(self, anomaly_id: str, attempt: int, status: str, retry_after: str | None) -> None:
        s = self.settings
        delay = min(s.backoff_max_seconds, s.backoff_base_seconds * (2**attempt))
        if retry_after is not None:
            with contextlib.suppress(ValueError):
                delay = min(s.backoff_max_seconds, max(0.0, float(retry_after)))
        self.metrics.retries.labels(status).inc()
        log.warning(
            "explainer.retry",
            anomaly_id=anomaly_id,
            status=status,
            attempt=attempt + 1,
            delay_seconds=delay,
        )
        self.sleep(delay)

    def _account(self, usage: Any) -> float:
        """Count tokens and return the estimated cost of one response in USD."""
        s = self.settings
        counts = {
            "input": usage.input_tokens or 0,
            "output": usage.output_tokens or 0,
            "cache_write": getattr(usage, "cache_creation_input_tokens", 0) or 0,
            "cache_read": getattr(usage, "cache_read_input_tokens", 0) or 0,
        }
        for kind, n in counts.items():
            self.metrics.tokens.labels(kind).inc(n)
        usd = (
            counts["input"] * s.price_input
            + counts["output"] * s.price_output
            + counts["cache_write"] * s.price_cache_write
            + counts["cache_read"] * s.price_cache_read
        ) / 1_000_000
        self.metrics.cost.inc(usd)
        return usd
