"""The API surface on a real server (port 0, real channel): auth, argument validation,
health, reflection, and a hypothesis fuzz of random requests."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serving.client import MarketDataClient
from serving.pb import SERVICE, pb
from tests.serving.conftest import TOKEN

pytestmark = pytest.mark.integration

STREAM_TIMEOUT = 1.5


async def call(client: MarketDataClient, method: str, req, timeout: float = 10.0):
    """Unary result, or the first two stream events (streams are cut by a deadline)."""
    if method in ("StreamCandles", "StreamAnomalies"):
        resp = pb.CandleEvent if method == "StreamCandles" else pb.AnomalyEvent
        stream = client.channel.unary_stream(
            f"/{SERVICE}/{method}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=resp.FromString,
        )(req, metadata=client.metadata, timeout=STREAM_TIMEOUT)
        out = []
        async for ev in stream:
            out.append(ev)
            if len(out) >= 2:
                stream.cancel()
                break
        return out
    resp = {
        "GetCandles": pb.GetCandlesResponse,
        "GetAnomaly": pb.AnomalyWithExplanation,
        "ListSymbols": pb.ListSymbolsResponse,
    }[method]
    return await client.channel.unary_unary(
        f"/{SERVICE}/{method}",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=resp.FromString,
    )(req, metadata=client.metadata, timeout=timeout)


@pytest.mark.parametrize("token", [None, "wrong-token"])
async def test_missing_or_wrong_token_is_unauthenticated(server_factory, token):
    _, port = await server_factory()
    async with MarketDataClient(f"127.0.0.1:{port}", token=token) as client:
        for method, req in (
            ("ListSymbols", pb.ListSymbolsRequest()),
            ("StreamCandles", pb.StreamCandlesRequest(symbols=["BTC-USDT"])),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call(client, method, req)
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED, method
        # Health stays reachable for probes.
        stub = health_pb2_grpc.HealthStub(client.channel)
        resp = await stub.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=10)
        assert resp.status == health_pb2.HealthCheckResponse.SERVING


async def test_right_token_and_local_mode(server_factory):
    _, port = await server_factory()
    async with MarketDataClient(f"127.0.0.1:{port}", token=TOKEN) as client:
        assert isinstance(
            await call(client, "ListSymbols", pb.ListSymbolsRequest()), pb.ListSymbolsResponse
        )
    _, port = await server_factory(local=True, tokens="")
    async with MarketDataClient(f"127.0.0.1:{port}") as client:
        assert isinstance(
            await call(client, "ListSymbols", pb.ListSymbolsRequest()), pb.ListSymbolsResponse
        )


BAD = [
    ("StreamCandles", pb.StreamCandlesRequest(), "symbols"),
    ("StreamCandles", pb.StreamCandlesRequest(symbols=["btc"]), "symbols[0]"),
    ("StreamCandles", pb.StreamCandlesRequest(symbols=["BTC-USDT", "x y"]), "symbols[1]"),
    (
        "StreamCandles",
        pb.StreamCandlesRequest(symbols=["BTC-USDT"], intervals=["7x"]),
        "intervals[0]",
    ),
    (
        "StreamCandles",
        pb.StreamCandlesRequest(symbols=["BTC-USDT"], exchanges=["Bin ance"]),
        "exchanges[0]",
    ),
    (
        "StreamCandles",
        pb.StreamCandlesRequest(symbols=["BTC-USDT"], start_time_us=-1),
        "start_time_us",
    ),
    (
        "StreamCandles",
        pb.StreamCandlesRequest(
            symbols=["BTC-USDT"],
            cursor=pb.Cursor(offsets=[pb.PartitionOffset(topic="other", partition=0, offset=1)]),
        ),
        "cursor.offsets[0].topic",
    ),
    ("StreamAnomalies", pb.StreamAnomaliesRequest(symbols=["nope"]), "symbols[0]"),
    ("GetCandles", pb.GetCandlesRequest(interval="1m"), "symbol"),
    ("GetCandles", pb.GetCandlesRequest(symbol="BTC-USDT"), "interval"),
    (
        "GetCandles",
        pb.GetCandlesRequest(symbol="BTC-USDT", interval="1m", start_us=10, end_us=5),
        "end_us",
    ),
    ("GetCandles", pb.GetCandlesRequest(symbol="BTC-USDT", interval="1m", limit=-3), "limit"),
    (
        "GetCandles",
        pb.GetCandlesRequest(symbol="BTC-USDT", interval="1m", snapshot_id=-1),
        "snapshot_id",
    ),
    ("GetCandles", pb.GetCandlesRequest(symbol="BTC-USDT", interval="1m", as_of_us=-5), "as_of_us"),
    ("GetAnomaly", pb.GetAnomalyRequest(), "anomaly_id"),
    ("GetAnomaly", pb.GetAnomalyRequest(anomaly_id="a b"), "anomaly_id"),
]


async def test_bad_arguments_name_the_field(server_factory):
    _, port = await server_factory()
    async with MarketDataClient(f"127.0.0.1:{port}", token=TOKEN) as client:
        for method, req, field in BAD:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call(client, method, req)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (method, req)
            assert err.value.details().startswith(f"{field}: "), err.value.details()


async def test_reflection_lists_the_service(server_factory):
    _, port = await server_factory()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        responses = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
            metadata=(("authorization", f"Bearer {TOKEN}"),),
        )
        async for resp in responses:
            names = {s.name for s in resp.list_services_response.service}
            assert SERVICE in names and "grpc.health.v1.Health" in names
            break


# --- fuzz ----------------------------------------------------------------------------------

text = st.text(max_size=30)
i64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
cursor = st.builds(
    lambda offs: pb.Cursor(offsets=offs),
    st.lists(
        st.builds(
            lambda t, p, o: pb.PartitionOffset(topic=t, partition=p, offset=o),
            text,
            st.integers(-5, 2**31 - 1),
            i64,
        ),
        max_size=3,
    ),
)


def _stream_req(cls):
    def build(symbols, intervals, start, value):
        kw = {"symbols": symbols}
        if cls is pb.StreamCandlesRequest:
            kw["intervals"] = intervals
        req = cls(**kw)
        if start == "cursor":
            req.cursor.CopyFrom(value)
        elif start == "time":
            req.start_time_us = value.offsets[0].offset if value.offsets else 0
        elif start == "begin":
            req.from_beginning = True
        return req

    return st.builds(
        build,
        st.lists(st.one_of(text, st.sampled_from(["BTC-USDT"])), max_size=3),
        st.lists(st.one_of(text, st.just("1m")), max_size=2),
        st.sampled_from(["none", "cursor", "time", "begin"]),
        cursor,
    )


requests = st.one_of(
    st.tuples(st.just("StreamCandles"), _stream_req(pb.StreamCandlesRequest)),
    st.tuples(st.just("StreamAnomalies"), _stream_req(pb.StreamAnomaliesRequest)),
    st.tuples(
        st.just("GetCandles"),
        st.builds(
            lambda s, i, a, b, lim, snap: pb.GetCandlesRequest(
                symbol=s, interval=i, start_us=a, end_us=b, limit=lim, snapshot_id=snap
            ),
            st.one_of(text, st.just("BTC-USDT")),
            st.one_of(text, st.just("1m")),
            i64,
            i64,
            st.integers(-(2**31), 2**31 - 1),
            i64,
        ),
    ),
    st.tuples(st.just("GetAnomaly"), st.builds(lambda a: pb.GetAnomalyRequest(anomaly_id=a), text)),
    st.tuples(st.just("ListSymbols"), st.just(pb.ListSymbolsRequest())),
)
ALLOWED = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.DEADLINE_EXCEEDED,
}


async def test_fuzz_random_requests_never_crash_the_server(server_factory):
    _, port = await server_factory()
    loop = asyncio.get_running_loop()
    seen: list[str] = []

    async with MarketDataClient(f"127.0.0.1:{port}", token=TOKEN) as client:

        async def one(method, req):
            try:
                await call(client, method, req)
            except grpc.aio.AioRpcError as exc:
                assert exc.code() in ALLOWED, (method, req, exc.code(), exc.details())
            seen.append(method)

        @settings(
            max_examples=60,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture],
        )
        @given(requests)
        def run(item):
            asyncio.run_coroutine_threadsafe(one(*item), loop).result(30)

        await loop.run_in_executor(None, run)
        # Still alive and serving after the fuzz.
        stub = health_pb2_grpc.HealthStub(client.channel)
        resp = await stub.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=10)
        assert resp.status == health_pb2.HealthCheckResponse.SERVING
    assert len(seen) >= 60
