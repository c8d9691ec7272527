"""The serving process's own cost per delivered event, without Kafka: the real server
(create_server, hub, streams, service) with the hub fed directly (Hub._dispatch) at a
fixed pace, and N real gRPC subscribers in a client process. Less sensitive to a busy
machine than bench/fanout/run.py's latency figures, so changes to the hot path can be
compared A/B in minutes; `--profile` prints the server's top functions (cProfile).

    .venv/bin/python -m bench.fanout.server_cost --subscribers 1000 --bursts 30

Each burst is one Kafka transaction's worth of records: a 1m candle, and every 5th burst
a 1m + 5m pair (as at 60x replay). Prints per round: server CPU per delivered event
(process CPU incl. gRPC's threads / events), and the burst's delivery time (dispatch ->
the last subscriber's receipt) p50 / max.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import multiprocessing as mp
import os
import pstats
import statistics
import time
from typing import Any

from bench.fanout.run import cpu_s, day_candles
from serving.kafka_io import Record

TOPIC = "bench.candles"


class _NoHistory:
    def __getattr__(self, name: str) -> Any:
        raise NotImplementedError(name)


def client_proc(port: int, n: int, ready: Any, results: Any, events: int, batch: bool) -> None:
    import grpc

    from serving.pb import SERVICE, pb

    async def main() -> None:
        chans = [
            grpc.aio.insecure_channel(
                f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]
            )
            for _ in range((n + 99) // 100)
        ]
        last: dict[int, float] = {}  # kafka_timestamp_us of a burst -> its last receipt
        got = 0
        subscribed = 0
        all_in = asyncio.Event()
        done = asyncio.Event()
        kw = {"batch": True} if batch else {}

        async def sub(i: int) -> None:
            nonlocal got, subscribed
            call = chans[i // 100].unary_stream(
                f"/{SERVICE}/StreamCandles",
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=pb.CandleEvent.FromString,
            )(pb.StreamCandlesRequest(symbols=["BTC-USD-PERP"], **kw))
            first = True
            async for ev in call:
                now = time.time()
                if first:
                    first = False
                    subscribed += 1
                    if subscribed == n:
                        all_in.set()
                for e in (ev.events if batch else None) or [ev]:
                    if e.HasField("candle"):
                        last[e.kafka_timestamp_us] = now
                        got += 1
                if got >= events * n:
                    done.set()

        tasks = [asyncio.create_task(sub(i)) for i in range(n)]
        await all_in.wait()
        ready.put(n)
        await asyncio.wait_for(done.wait(), 600)
        results.put({"got": got, "last": last})
        for t in tasks:
            t.cancel()

    asyncio.run(main())


def bursts(n_bursts: int) -> list[list[Any]]:
    candles = day_candles(20_000)
    ones = [c for c in candles if c.interval == "1m"]
    fives = [c for c in candles if c.interval == "5m"]
    out = []
    for i in range(n_bursts):
        b = [ones[i % len(ones)]]
        if i % 5 == 4:
            b.append(fives[(i // 5) % len(fives)])
        out.append(b)
    return out


async def serve(args: argparse.Namespace) -> dict[str, Any]:
    from candleflow.config import StackSettings, Topics
    from serving.server import create_server
    from serving.settings import ServingSettings

    srv, port = await create_server(
        "127.0.0.1:0",
        serving=ServingSettings(local=True, metrics_port=0),
        stack=StackSettings(kafka_bootstrap="127.0.0.1:1", registry="http://127.0.0.1:1"),
        topics=Topics(candles=TOPIC),
        history=_NoHistory(),  # type: ignore[arg-type]
    )
    await srv.server.start()
    hub = srv.streams.hub
    hub._set_start({(TOPIC, 0): 0})  # no Kafka: the hub is fed below
    plan = bursts(args.bursts)
    n_events = sum(len(b) for b in plan)
    ctx = mp.get_context("spawn")
    ready, results = ctx.Queue(), ctx.Queue()
    cl = ctx.Process(
        target=client_proc,
        args=(port, args.subscribers, ready, results, n_events, args.batch),
        daemon=True,
    )
    cl.start()
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, ready.get)
    await asyncio.sleep(1)
    prof = cProfile.Profile() if args.profile else None
    offset, sent_at = 0, []
    pid = os.getpid()
    c0 = cpu_s(pid)
    if prof:
        prof.enable()
    for b in plan:
        ts = time.time_ns() // 1000
        recs = []
        for c in b:
            recs.append(Record(TOPIC, 0, offset, ts, "candle", c))
            offset += 1
        sent_at.append(ts)
        hub._inflight.acquire()
        hub._dispatch(recs)
        await asyncio.sleep(args.pace)
    res = await loop.run_in_executor(None, results.get)
    if prof:
        prof.disable()
    cpu = cpu_s(pid) - c0
    cl.join(10)
    await srv.server.stop(0)
    spans = [(res["last"][ts] - ts / 1e6) * 1000 for ts in sent_at if ts in res["last"]]
    out = {
        "subscribers": args.subscribers,
        "events": n_events,
        "delivered": res["got"],
        "server_cpu_us_per_event": round(cpu / max(1, res["got"]) * 1e6, 1),
        "burst_ms_p50": round(statistics.median(spans), 1),
        "burst_ms_max": round(max(spans), 1),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    if prof:
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(25)
        out["profile"] = s.getvalue()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subscribers", type=int, default=1000)
    ap.add_argument("--bursts", type=int, default=30)
    ap.add_argument("--pace", type=float, default=0.5, help="seconds between bursts")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--batch", action="store_true", help="subscribers ask for batched events")
    ap.add_argument("--uvloop", action="store_true", help="server loop on uvloop (if importable)")
    args = ap.parse_args()
    run: Any = asyncio.run
    if args.uvloop:  # experiment only: uvloop is not a project dependency
        import uvloop

        run = uvloop.run
    for _ in range(args.rounds):
        r = run(serve(args))
        r["uvloop"] = args.uvloop
        prof = r.pop("profile", None)
        print(json.dumps(r), flush=True)
        if prof:
            print(prof)


if __name__ == "__main__":
    main()
