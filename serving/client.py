"""A small asyncio client for the MarketData service, with resume by cursor.

`stream_candles(..., reconnect=True)` survives server restarts, network drops and the
server's slow-client cut-off: it resubscribes with the cursor of the last event it
yielded (or the server's resume cursor), so the caller sees every candle revision once.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import structlog

from serving import convert
from serving.pb import SERVICE, pb
from serving.service import RESUME_KEY

log = structlog.get_logger(__name__)
RETRYABLE = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.CANCELLED,
}


@dataclass(frozen=True)
class Tls:
    root_ca: str = ""  # PEM file of the CA that signed the server certificate
    client_cert: str = ""  # for mTLS
    client_key: str = ""
    server_name: str = ""  # override the expected server name (tests)


def channel(target: str, tls: Tls | None = None) -> grpc.aio.Channel:
    options: list[tuple[str, Any]] = [
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.max_receive_message_length", 64 << 20),
    ]
    if tls is None:
        return grpc.aio.insecure_channel(target, options=options)
    creds = grpc.ssl_channel_credentials(
        root_certificates=Path(tls.root_ca).read_bytes() if tls.root_ca else None,
        private_key=Path(tls.client_key).read_bytes() if tls.client_key else None,
        certificate_chain=Path(tls.client_cert).read_bytes() if tls.client_cert else None,
    )
    if tls.server_name:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    return grpc.aio.secure_channel(target, creds, options=options)


def _resume_cursor(exc: grpc.aio.AioRpcError) -> Any | None:
    for key, value in exc.trailing_metadata() or ():
        if key == RESUME_KEY:
            return convert.cursor_from_token(value)
    return None


class MarketDataClient:
    def __init__(self, target: str, token: str | None = None, tls: Tls | None = None):
        self.target = target
        self.tls = tls
        self.metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.channel = channel(target, tls)

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> MarketDataClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _unary(self, method: str, resp: Any) -> Any:
        return self.channel.unary_unary(
            f"/{SERVICE}/{method}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=resp.FromString,
        )

    def _stream(self, method: str, resp: Any) -> Any:
        return self.channel.unary_stream(
            f"/{SERVICE}/{method}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=resp.FromString,
        )

    # --- unary ----------------------------------------------------------------------------

    async def get_candles(
        self,
        symbol: str,
        interval: str,
        start_us: int = 0,
        end_us: int = 0,
        exchange: str = "",
        limit: int = 0,
        snapshot_id: int | None = None,
        as_of_us: int | None = None,
        timeout: float = 60.0,
    ) -> Any:
        req = pb.GetCandlesRequest(
            symbol=symbol,
            interval=interval,
            start_us=start_us,
            end_us=end_us,
            exchange=exchange,
            limit=limit,
        )
        if snapshot_id is not None:
            req.snapshot_id = snapshot_id
        elif as_of_us is not None:
            req.as_of_us = as_of_us
        return await self._unary("GetCandles", pb.GetCandlesResponse)(
            req, metadata=self.metadata, timeout=timeout
        )

    async def get_anomaly(self, anomaly_id: str, timeout: float = 30.0) -> Any:
        return await self._unary("GetAnomaly", pb.AnomalyWithExplanation)(
            pb.GetAnomalyRequest(anomaly_id=anomaly_id), metadata=self.metadata, timeout=timeout
        )

    async def list_symbols(self, timeout: float = 30.0) -> Any:
        return await self._unary("ListSymbols", pb.ListSymbolsResponse)(
            pb.ListSymbolsRequest(), metadata=self.metadata, timeout=timeout
        )

    # --- streams --------------------------------------------------------------------------

    def raw_stream(self, method: str, request: Any) -> Any:
        resp = pb.CandleEvent if method == "StreamCandles" else pb.AnomalyEvent
        return self._stream(method, resp)(request, metadata=self.metadata)

    async def _resuming(
        self, method: str, request: Any, reconnect: bool, max_backoff: float
    ) -> AsyncIterator[Any]:
        backoff = 0.2
        batched = method == "StreamCandles" and request.batch
        while True:
            call = self.raw_stream(method, request)
            try:
                async for message in call:
                    backoff = 0.2
                    # A batched message is unpacked: callers see one event at a time.
                    for event in (message.events if batched else None) or (message,):
                        if event.HasField("cursor") and event.cursor.offsets:
                            request.cursor.CopyFrom(event.cursor)  # resume after this event
                        yield event
                return  # the server ended the stream normally
            except grpc.aio.AioRpcError as exc:
                if not reconnect or exc.code() not in RETRYABLE:
                    raise
                cursor = _resume_cursor(exc)
                if cursor is not None:
                    request.cursor.CopyFrom(cursor)
                log.info(
                    "client.reconnecting",
                    code=exc.code().name,
                    details=exc.details(),
                    backoff=round(backoff, 2),
                )
            finally:
                call.cancel()
            await asyncio.sleep(backoff * (0.5 + random.random()))
            backoff = min(max_backoff, backoff * 2)

    def stream_candles(
        self,
        symbols: Sequence[str],
        intervals: Sequence[str] = (),
        exchanges: Sequence[str] = (),
        *,
        cursor: Any = None,
        start_time_us: int | None = None,
        from_beginning: bool = False,
        reconnect: bool = True,
        max_backoff: float = 5.0,
        batch: bool = True,
    ) -> AsyncIterator[Any]:
        """Candle events one by one (a server's batched messages are unpacked here)."""
        req = pb.StreamCandlesRequest(
            symbols=list(symbols), intervals=list(intervals), exchanges=list(exchanges), batch=batch
        )
        _set_start(req, cursor, start_time_us, from_beginning)
        return self._resuming("StreamCandles", req, reconnect, max_backoff)

    def stream_anomalies(
        self,
        symbols: Sequence[str] = (),
        *,
        cursor: Any = None,
        start_time_us: int | None = None,
        from_beginning: bool = False,
        reconnect: bool = True,
        max_backoff: float = 5.0,
    ) -> AsyncIterator[Any]:
        req = pb.StreamAnomaliesRequest(symbols=list(symbols))
        _set_start(req, cursor, start_time_us, from_beginning)
        return self._resuming("StreamAnomalies", req, reconnect, max_backoff)


def _set_start(req: Any, cursor: Any, start_time_us: int | None, from_beginning: bool) -> None:
    if cursor is not None:
        req.cursor.CopyFrom(cursor)
    elif start_time_us is not None:
        req.start_time_us = start_time_us
    elif from_beginning:
        req.from_beginning = True
