"""REST requests for gap backfill: adapters build RestRequest values (pure); this module
sends them (aiohttp), so the base URL can point at a fake exchange in tests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import aiohttp


@dataclass(frozen=True, slots=True)
class RestRequest:
    method: str
    url: str
    params: dict[str, str] = field(default_factory=dict)
    weight: int = 1  # the exchange's rate-limit cost of this call

    def with_base(self, base: str | None) -> RestRequest:
        """The same request against another host (a fake exchange in tests, a proxy)."""
        if not base:
            return self
        parts, new = urlsplit(self.url), urlsplit(base)
        path = new.path.rstrip("/") + parts.path
        url = urlunsplit((new.scheme, new.netloc, path, parts.query, ""))
        return RestRequest(self.method, url, self.params, self.weight)


class RestError(Exception):
    pass


async def fetch(
    session: aiohttp.ClientSession, request: RestRequest, timeout_s: float = 10.0, retries: int = 3
) -> bytes:
    """The response body; retries 429/5xx and network errors with a short backoff."""
    delay = 0.5
    for attempt in range(retries + 1):
        try:
            async with session.request(
                request.method,
                request.url,
                params=request.params,
                timeout=aiohttp.ClientTimeout(total=timeout_s),
            ) as resp:
                body = await resp.read()
                if resp.status == 200:
                    return body
                if resp.status != 429 and resp.status < 500:
                    raise RestError(f"{request.url} -> HTTP {resp.status}: {body[:200]!r}")
                retry_after = resp.headers.get("Retry-After")
                if retry_after and retry_after.isdigit():
                    delay = max(delay, float(retry_after))
        except (aiohttp.ClientError, TimeoutError) as exc:
            if attempt == retries:
                raise RestError(f"{request.url}: {exc}") from exc
        if attempt < retries:
            await asyncio.sleep(delay)
            delay *= 2
    raise RestError(f"{request.url}: gave up after {retries + 1} attempts")
