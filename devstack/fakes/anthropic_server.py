"""A local fake of the Anthropic Messages API (POST /v1/messages), for tests.

It speaks the real wire format, so the official `anthropic` SDK can be pointed at it with
`base_url`: message responses with content blocks (`tool_use` or `text`) and `usage`
including `cache_creation_input_tokens` / `cache_read_input_tokens` (a prefix marked
`cache_control` is cached only from the model's documented minimum length, estimated
conservatively: see MIN_CACHEABLE_TOKENS and estimate_tokens), and the real error
bodies for 429 (`rate_limit_error`) and 529 (`overloaded_error`) with a `retry-after`
header. Every request is recorded (headers and JSON body) for the test to inspect.

Behaviour is scripted: `server.script(["429", "529", "ok"])` makes the next requests fail
and then succeed; with an empty script every request succeeds. "malformed" answers with a
tool input that is not a valid explanation; "text" answers with JSON in a text block.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Recorded:
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeAnthropic:
    host: str = "127.0.0.1"
    port: int = 0
    requests: list[Recorded] = field(default_factory=list)
    _script: deque[str] = field(default_factory=deque)
    _cached_systems: set[str] = field(default_factory=set)
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None
    _thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def script(self, steps: list[str]) -> None:
        self._script.extend(steps)

    # --- lifecycle: aiohttp on its own loop in a thread, so sync clients can call it ---

    def start(self) -> FakeAnthropic:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._serve())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="fake-anthropic", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake Anthropic server did not start")
        return self

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/messages", self._messages)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        if self._loop is None:
            return
        loop = self._loop
        assert self._runner is not None
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the API ---

    async def _messages(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(Recorded(dict(request.headers), body))
        step = self._script.popleft() if self._script else "ok"
        if step == "429":
            return _error(
                429,
                "rate_limit_error",
                "Number of request tokens has exceeded your per-minute rate limit",
                retry_after="0",
            )
        if step == "529":
            return _error(529, "overloaded_error", "Overloaded", retry_after="0")
        if step == "500":
            return _error(500, "api_error", "Internal server error")
        # Older SDKs send x-api-key, newer ones an Authorization bearer: accept either.
        if "x-api-key" not in request.headers and "Authorization" not in request.headers:
            return _error(401, "authentication_error", "invalid x-api-key")
        # The prompt is tools, then system, then messages; a cache_control breakpoint on a
        # system block caches the tools and the system blocks up to and including it.
        prefix = json.dumps(
            [body.get("tools"), _up_to_breakpoint(body.get("system"))], sort_keys=True
        )
        prefix_tokens = estimate_tokens(prefix)
        usage = {
            "input_tokens": estimate_tokens(json.dumps(body.get("messages"))),
            "output_tokens": 60,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }
        key = f"{body.get('model')}\n{prefix}"  # a cache entry belongs to one model
        if not _has_cache_control(body.get("system")) or prefix_tokens < min_cacheable_tokens(
            str(body.get("model"))
        ):
            usage["input_tokens"] += prefix_tokens  # not cached: no error, full price
        elif key in self._cached_systems:
            usage["cache_read_input_tokens"] = prefix_tokens
        else:
            self._cached_systems.add(key)
            usage["cache_creation_input_tokens"] = prefix_tokens
        answer: dict[str, Any] = {
            "summary": "Volume jumped far above its recent average in one minute.",
            "key_factors": ["volume several times the 60-candle average"],
            "confidence": 0.7,
            "caveats": ["one exchange only"],
        }
        if step == "malformed":
            answer = {"summary": 42, "confidence": "very"}
        tools = body.get("tools") or []
        if step == "text" or not tools:
            content: list[dict[str, Any]] = [{"type": "text", "text": json.dumps(answer)}]
            stop = "end_turn"
        else:
            content = [
                {
                    "type": "tool_use",
                    "id": f"toolu_{len(self.requests):04d}",
                    "name": tools[0]["name"],
                    "input": answer,
                }
            ]
            stop = "tool_use"
        return web.json_response(
            {
                "id": f"msg_fake_{len(self.requests):04d}",
                "type": "message",
                "role": "assistant",
                "model": body.get("model"),
                "content": content,
                "stop_reason": stop,
                "stop_sequence": None,
                "usage": usage,
            }
        )


def _error(status: int, kind: str, message: str, retry_after: str | None = None) -> web.Response:
    headers = {"retry-after": retry_after} if retry_after is not None else {}
    return web.json_response(
        {"type": "error", "error": {"type": kind, "message": message}},
        status=status,
        headers=headers,
    )


def _has_cache_control(system: Any) -> bool:
    return isinstance(system, list) and any(
        isinstance(b, dict) and b.get("cache_control") == {"type": "ephemeral"} for b in system
    )


def _up_to_breakpoint(system: Any) -> Any:
    if not isinstance(system, list):
        return system
    last = max(
        (i for i, b in enumerate(system) if isinstance(b, dict) and b.get("cache_control")),
        default=len(system) - 1,
    )
    return system[: last + 1]


# Minimum cacheable prompt length per model, as the prompt caching documentation lists it
# (https://platform.claude.com/docs/en/build-with-claude/prompt-caching, "Cache
# limitations"): a shorter prefix is processed without caching, and no error says so.
# Sonnet 4.6 is listed at 1,024 in one version of the page and 2,048 in another: the
# larger is kept. Unknown models get the largest minimum.
MIN_CACHEABLE_TOKENS = {
    "claude-opus-4-6": 4096,
    "claude-opus-4-5": 4096,
    "claude-haiku-4-5": 4096,
    "claude-sonnet-4-6": 2048,
    "claude-3-5-haiku": 2048,
    "claude-3-haiku": 2048,
    "claude-sonnet-4-5": 1024,
    "claude-opus-4-1": 1024,
    "claude-opus-4": 1024,
    "claude-sonnet-4": 1024,
    "claude-3-7-sonnet": 1024,
}


def min_cacheable_tokens(model: str) -> int:
    """The documented minimum for `model` (an alias or a dated id, e.g. -20251001)."""
    for name in sorted(MIN_CACHEABLE_TOKENS, key=len, reverse=True):
        if model == name or model.startswith(name + "-"):
            return MIN_CACHEABLE_TOKENS[name]
    return max(MIN_CACHEABLE_TOKENS.values())


# Claude's tokenizer is not available offline (the exact count needs the count_tokens
# endpoint), so tokens are estimated from characters. The documentation's rule of thumb is
# about 3.5 characters per token for English; 4.5 is used, which undercounts: a prefix
# the fake caches is at least that long for the real API too. JSON and numbers take more
# tokens per character than prose, which only widens the margin.
CHARS_PER_TOKEN = 4.5


def estimate_tokens(text: str) -> int:
    return max(1, int(len(text) / CHARS_PER_TOKEN))
