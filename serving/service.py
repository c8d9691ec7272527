"""The MarketData servicer: thin handlers over validate/streams/history.

Handlers are registered through grpc's generic API with an identity serializer for the
streams, so one serialized event is shared by every subscriber it goes to.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
from collections.abc import AsyncIterator
from typing import Any

import grpc
import structlog

from serving import convert, validate
from serving.history import CandleQuery, History, NotFound
from serving.pb import SERVICE, pb
from serving.streams import CursorExpired, SlowClient, Streams

log = structlog.get_logger(__name__)
RESUME_KEY = "candleflow-resume-cursor"
_ids = itertools.count(1)


def _serialize(msg: Any) -> bytes:
    return msg if isinstance(msg, bytes) else msg.SerializeToString()


class MarketDataService:
    def __init__(self, streams: Streams, history: History, history_timeout: float = 30.0):
        self.streams = streams
        self.history = history
        self.history_timeout = history_timeout

    async def _bad(self, context: grpc.aio.ServicerContext, exc: validate.BadArgument) -> None:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))

    async def _stream(
        self, kind: str, check: Any, request: Any, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        """The streaming handler (bound with functools.partial per method): each event
        passes through two generators only, this one and Streams.stream."""
        topics = self.streams.candle_topics if kind == "candles" else self.streams.anomaly_topics
        try:
            check(request, set(topics))
        except validate.BadArgument as exc:
            await self._bad(context, exc)
        try:
            async for event in self.streams.stream(kind, request, f"{next(_ids)}"):
                yield event
        except validate.BadArgument as exc:  # a cursor that does not fit the topics
            await self._bad(context, exc)
        except CursorExpired as exc:
            await context.abort(grpc.StatusCode.OUT_OF_RANGE, str(exc))
        except SlowClient as exc:
            token = convert.cursor_to_token(convert.cursor_to_pb(exc.cursor))
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"client too slow: more than {self.streams.queue_capacity} "
                f"events queued; resume with the cursor in {RESUME_KEY}",
                trailing_metadata=((RESUME_KEY, token),),
            )

    async def _blocking(self, context: grpc.aio.ServicerContext, fn: Any, *args: Any) -> Any:
        """Run a history call in a thread within the tighter of its own and the client's
        deadline; a missing table or snapshot becomes NOT_FOUND."""
        timeout = self.history_timeout
        remaining = context.time_remaining()
        if remaining is not None:
            timeout = min(timeout, remaining)
        try:
            return await asyncio.wait_for(asyncio.to_thread(fn, *args), timeout)
        except TimeoutError:
            await context.abort(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"history query did not finish within {timeout:.1f}s",
            )
        except NotFound as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
        except NotImplementedError as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        except Exception as exc:  # the backend (Trino, catalog) is down or failing
            log.exception("history.failed")
            await context.abort(
                grpc.StatusCode.UNAVAILABLE,
                f"history backend failed: {type(exc).__name__}: {exc}"[:500],
            )

    async def get_candles(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            validate.get_candles(request)
        except validate.BadArgument as exc:
            await self._bad(context, exc)
        which = request.WhichOneof("as_of")
        q = CandleQuery(
            symbol=request.symbol,
            interval=request.interval,
            start_us=request.start_us,
            end_us=request.end_us or None,
            exchange=request.exchange or None,
            limit=request.limit or 10_000,
            snapshot_id=request.snapshot_id if which == "snapshot_id" else None,
            as_of_us=request.as_of_us if which == "as_of_us" else None,
        )
        candles, snapshot_id = await self._blocking(context, self.history.get_candles, q)
        return pb.GetCandlesResponse(
            candles=[convert.candle_to_pb(c) for c in candles], snapshot_id=snapshot_id
        )

    async def get_anomaly(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            validate.get_anomaly(request)
        except validate.BadArgument as exc:
            await self._bad(context, exc)
        joins = self.streams.joins
        if request.anomaly_id in joins.anomalies:
            return joins.pair(request.anomaly_id)
        anomaly, explanation = await self._blocking(
            context, self.history.get_anomaly, request.anomaly_id
        )
        if anomaly is None:
            await context.abort(
                grpc.StatusCode.NOT_FOUND, f"anomaly_id: {request.anomaly_id} not found"
            )
        msg = pb.AnomalyWithExplanation(anomaly=convert.anomaly_to_pb(anomaly))
        if explanation is not None:
            msg.explanation.CopyFrom(convert.explanation_to_pb(explanation))
        return msg

    async def list_symbols(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        found: dict[tuple[str, str], set[str]] = {k: set(v) for k, v in self.streams.seen.items()}
        try:
            rows = await asyncio.wait_for(
                asyncio.to_thread(self.history.list_symbols), self.history_timeout
            )
        except Exception as exc:  # live markets are still worth answering with
            log.info("list_symbols.history_unavailable", error=str(exc))
            rows = []
        for exchange, symbol, intervals in rows:
            found.setdefault((exchange, symbol), set()).update(intervals)
        return pb.ListSymbolsResponse(
            symbols=[
                pb.SymbolInfo(exchange=e, symbol=s, intervals=sorted(i))
                for (e, s), i in sorted(found.items())
            ]
        )

    def handler(self) -> grpc.GenericRpcHandler:
        def unary(fn: Any, req: Any) -> grpc.RpcMethodHandler:
            return grpc.unary_unary_rpc_method_handler(
                fn, request_deserializer=req.FromString, response_serializer=_serialize
            )

        def stream(fn: Any, req: Any) -> grpc.RpcMethodHandler:
            return grpc.unary_stream_rpc_method_handler(
                fn, request_deserializer=req.FromString, response_serializer=_serialize
            )

        # grpc.aio needs an async generator function (a partial of one qualifies).
        stream_candles = functools.partial(self._stream, "candles", validate.stream_candles)
        stream_anomalies = functools.partial(self._stream, "anomalies", validate.stream_anomalies)
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "StreamCandles": stream(stream_candles, pb.StreamCandlesRequest),
                "GetCandles": unary(self.get_candles, pb.GetCandlesRequest),
                "StreamAnomalies": stream(stream_anomalies, pb.StreamAnomaliesRequest),
                "GetAnomaly": unary(self.get_anomaly, pb.GetAnomalyRequest),
                "ListSymbols": unary(self.list_symbols, pb.ListSymbolsRequest),
            },
        )
