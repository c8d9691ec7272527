"""Bearer-token authentication as a server interceptor (`authorization: Bearer <token>`)."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

# Kubernetes probes and load balancers must reach health without a token.
PUBLIC_PREFIXES = ("/grpc.health.v1.Health/",)


def _check(metadata: Any, tokens: frozenset[str]) -> str | None:
    """None if authorized, else the reason."""
    header = next((v for k, v in metadata or () if k == "authorization"), None)
    if header is None:
        return "missing authorization metadata (Bearer token)"
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return "authorization must be 'Bearer <token>'"
    # compare_digest against every token: no early exit that leaks which prefix matched
    if not any(hmac.compare_digest(token.encode(), t.encode()) for t in tokens):
        return "invalid token"
    return None


def _deny(handler: grpc.RpcMethodHandler, reason: str) -> grpc.RpcMethodHandler:
    async def abort(_request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, reason)

    async def abort_stream(_request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, reason)
        yield  # pragma: no cover - makes this an async generator

    kw = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(abort_stream, **kw)
    if handler.stream_stream is not None:
        return grpc.stream_stream_rpc_method_handler(abort_stream, **kw)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(abort, **kw)
    return grpc.unary_unary_rpc_method_handler(abort, **kw)


class BearerAuth(grpc.aio.ServerInterceptor):
    def __init__(self, tokens: frozenset[str]):
        if not tokens:
            raise ValueError(
                "auth needs at least one token (CANDLEFLOW_SERVING_TOKENS), or run in --local mode"
            )
        self.tokens = tokens

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or details.method.startswith(PUBLIC_PREFIXES):
            return handler
        reason = _check(details.invocation_metadata, self.tokens)
        return handler if reason is None else _deny(handler, reason)
