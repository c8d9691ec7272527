"""Fan-out benchmark: N subscribers on ONE server process while the COIN-M day's candles
are committed to Kafka at 60x real time.

Measures, per N: events delivered per second (all subscribers together), delivery lag
(Kafka record timestamp, set when the candle is produced and committed at once, ->
receipt by the subscriber) p50/p99/max, and the server's memory per subscriber (RSS with
N subscribers minus RSS before, / N). Baseline in the same run: a plain read_committed
Kafka consumer's lag on the same records (what a client reading Kafka directly would see).

    .venv/bin/python -m bench.fanout.run --subscribers 100,1000,5000 --seconds 45

Needs the local stack (Kafka + registry; `candleflow stack up`). Subscribers run in
--client-procs processes with one HTTP/2 connection per 100 streams.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from devstack.sample_data import COINM_DAY

ROOT = Path(__file__).resolve().parents[2]


def day_candles(trades_limit: int) -> list[Any]:
    import dataclasses
    from decimal import ROUND_HALF_UP

    from candleflow import binance_files, reference
    from candleflow.records import fit_decimal

    trades = []
    for t in binance_files.read_trades(COINM_DAY):
        trades.append(t)
        if len(trades) >= trades_limit:
            break
    out = reference.batch_candles(trades, ["1m", "5m"])
    out = [
        dataclasses.replace(
            c, vwap=None if c.vwap is None else fit_decimal(c.vwap, rounding=ROUND_HALF_UP)
        )
        for c in out
    ]
    return sorted(out, key=lambda c: (c.window_end_us, c.interval))


def setup_topics(settings: Any) -> Any:
    from confluent_kafka.admin import AdminClient, NewTopic

    from adapters import avro
    from candleflow.config import Topics

    sfx = uuid.uuid4().hex[:8]
    topics = Topics(
        candles=f"bench.candles.{sfx}",
        anomalies=f"bench.anomalies.{sfx}",
        explanations=f"bench.explanations.{sfx}",
    )
    admin = AdminClient(settings.kafka_config())
    names = [topics.candles, topics.anomalies, topics.explanations]
    for f in admin.create_topics([NewTopic(n, 3, 1) for n in names]).values():
        f.result(30)
    avro.register_contracts(
        avro.registry_client(settings),
        {topics.candles: "candle", topics.anomalies: "anomaly", topics.explanations: "explanation"},
    )
    return topics


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# --- subscribers (in worker processes) ------------------------------------------------------


def client_proc(
    port: int,
    n: int,
    symbol: str,
    ready: Any,
    go: Any,
    results: Any,
    expected: int,
    seconds: float,
    batch: bool = True,
) -> None:
    import grpc

    from serving.pb import SERVICE, pb

    async def main() -> None:
        chans = [
            grpc.aio.insecure_channel(
                f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]
            )
            for _ in range((n + 99) // 100)
        ]
        lags: list[float] = []
        counts = [0] * n
        errors: list[str] = []
        subscribed = asyncio.Event()
        n_ready = 0

        async def sub(i: int) -> None:
            nonlocal n_ready
            call = chans[i // 100].unary_stream(
                f"/{SERVICE}/StreamCandles",
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=pb.CandleEvent.FromString,
            )(pb.StreamCandlesRequest(symbols=[symbol], batch=batch))
            first = True
            try:
                async for msg in call:
                    now = time.time()
                    if first:
                        first = False
                        n_ready += 1
                        if n_ready == n:
                            subscribed.set()
                    for ev in (msg.events if batch else None) or (msg,):  # as the client lib
                        if ev.HasField("candle"):
                            lags.append(now - ev.kafka_timestamp_us / 1e6)
                            counts[i] += 1
                    if counts[i] >= expected:
                        call.cancel()
                        return
            except grpc.aio.AioRpcError as exc:
                errors.append(f"{exc.code().name}: {exc.details()}")
                if first:
                    n_ready += 1
                    if n_ready == n:
                        subscribed.set()

        tasks = [asyncio.create_task(sub(i)) for i in range(n)]
        await subscribed.wait()
        ready.put(n)
        await asyncio.get_running_loop().run_in_executor(None, go.wait)
        t0 = time.time()
        await asyncio.wait(tasks, timeout=seconds + 30)
        for t in tasks:
            t.cancel()
        results.put(
            {
                "errors": errors[:5],
                "n_errors": len(errors),
                "lags": lags,
                "received": sum(counts),
                "complete": sum(1 for c in counts if c >= expected),
                "elapsed": time.time() - t0,
            }
        )
        for ch in chans:
            await ch.close()

    asyncio.run(main())


# --- one run ---------------------------------------------------------------------------------


def produce(settings: Any, topic: str, candles: list[Any], speed: float, stop_at: int) -> None:
    """Commit each candle when its window closes, at `speed` x real time."""
    from confluent_kafka import Producer

    from adapters import avro

    ser = avro.serializer(avro.registry_client(settings), "candle")
    p = Producer(
        settings.kafka_config(**{"transactional.id": f"bench-{uuid.uuid4().hex}", "linger.ms": 0})
    )
    p.init_transactions(30)
    t0_event = candles[0].window_end_us
    t0 = time.time()
    i = 0
    while i < min(stop_at, len(candles)):
        due = t0 + (candles[i].window_end_us - t0_event) / 1e6 / speed
        time.sleep(max(0.0, due - time.time()))
        p.begin_transaction()
        j = i
        while j < len(candles) and candles[j].window_end_us == candles[i].window_end_us:
            c = candles[j]
            p.produce(
                topic,
                key=f"{c.exchange}:{c.symbol}:{c.interval}".encode(),
                value=ser(c, avro.value_context(topic)),
            )
            j += 1
        p.commit_transaction(30)
        i = j


def baseline_consumer(settings: Any, topic: str, n: int, out: list[float]) -> None:
    from confluent_kafka import Consumer

    c = Consumer(
        settings.kafka_config(
            **{
                "group.id": f"bench-{uuid.uuid4().hex}",
                "isolation.level": "read_committed",
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": 50,
            }
        )
    )
    c.subscribe([topic])
    deadline = time.time() + 600
    while len(out) < n and time.time() < deadline:
        m = c.poll(0.2)
        if m is not None and m.error() is None:
            out.append(time.time() - m.timestamp()[1] / 1000)
    c.close()


def wait_ready(port: int, server: subprocess.Popen, timeout: float = 120.0) -> None:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.time() + timeout
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        while time.time() < deadline:
            if server.poll() is not None:
                raise RuntimeError(f"server exited with {server.returncode}")
            try:
                if (
                    stub.Check(
                        health_pb2.HealthCheckRequest(), timeout=2, wait_for_ready=True
                    ).status
                    == 1
                ):
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.5)
    raise TimeoutError("server not ready")


def server_lag_p99(metrics_port: int) -> float | None:
    """Upper bound of the bucket holding the server's p99 Kafka -> handed-to-gRPC lag."""
    import urllib.request

    try:
        text = (
            urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5)
            .read()
            .decode()
        )
    except OSError:
        return None
    buckets = []
    for line in text.splitlines():
        if (
            line.startswith("candleflow_serving_delivery_lag_seconds_bucket")
            and 'stream="candles"' in line
        ):
            le = line.split('le="')[1].split('"')[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), float(line.split()[-1])))
    if not buckets or buckets[-1][1] == 0:
        return None
    total = buckets[-1][1]
    for le, count in buckets:
        if count >= 0.99 * total:
            return le * 1000
    return None


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def run_one(
    n: int,
    candles: list[Any],
    seconds: float,
    speed: float,
    procs: int,
    settings: Any,
    batch: bool = True,
) -> dict:
    topics = setup_topics(settings)
    per_minute = sum(1 for c in candles if c.interval == "1m") / max(
        1, (candles[-1].window_end_us - candles[0].window_end_us) / 60e6
    )
    window_us = seconds * speed * 1e6
    sent = [c for c in candles if c.window_end_us - candles[0].window_end_us < window_us]
    port = 52000 + os.getpid() % 5000
    env = {
        **os.environ,
        "CANDLEFLOW_TOPIC_CANDLES": topics.candles,
        "CANDLEFLOW_KAFKA_PORT": str(settings.kafka_port),
        "CANDLEFLOW_REGISTRY_PORT": str(settings.registry_port),
        "CANDLEFLOW_DATA_DIR": str(settings.data_dir),
        "CANDLEFLOW_TOPIC_ANOMALIES": topics.anomalies,
        "CANDLEFLOW_TOPIC_EXPLANATIONS": topics.explanations,
    }
    # FANOUT_SERVER_PREFIX: a command to wrap the server in, e.g. a sampling profiler
    # ("py-spy record -o /tmp/fanout.svg --"); not used for the published figures.
    prefix = os.environ.get("FANOUT_SERVER_PREFIX", "").split()
    server = subprocess.Popen(
        [
            *prefix,
            sys.executable,
            "-m",
            "candleflow.cli",
            "serve",
            "--local",
            "--addr",
            f"127.0.0.1:{port}",
            "--metrics-port",
            str(port + 1),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(port, server)
        time.sleep(2)  # let the hub settle before the idle RSS sample
        rss0 = rss_kib(server.pid)
        ctx = mp.get_context("spawn")
        ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
        sizes = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
        workers = [
            ctx.Process(
                target=client_proc,
                args=(port, k, "BTC-USD-PERP", ready, go, results, len(sent), seconds, batch),
                daemon=True,
            )
            for k in sizes
            if k
        ]
        for w in workers:
            w.start()
        for _ in workers:
            ready.get(timeout=300)
        time.sleep(1)
        rss1 = rss_kib(server.pid)
        base: list[float] = []
        bt = threading.Thread(
            target=baseline_consumer, args=(settings, topics.candles, len(sent), base)
        )
        bt.start()
        go.set()
        t0 = time.time()
        cpu0 = cpu_s(server.pid)
        produce(settings, topics.candles, sent, speed, len(sent))
        res = [results.get(timeout=seconds + 120) for _ in workers]
        elapsed = time.time() - t0
        server_cpu = cpu_s(server.pid) - cpu0
        server_p99 = server_lag_p99(port + 1)
        rss2 = rss_kib(server.pid)
        for w in workers:
            w.join(30)
            if w.is_alive():  # a worker stuck closing its channels must not hang the run
                w.terminate()
        bt.join(60)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
    lags = [x for r in res for x in r["lags"]]
    received = sum(r["received"] for r in res)
    return {
        "subscribers": n,
        "batch": batch,
        "candles": len(sent),
        "candles_per_min_1m": round(per_minute, 2),
        "delivered": received,
        "expected": n * len(sent),
        "complete_subscribers": sum(r["complete"] for r in res),
        "stream_errors": sum(r["n_errors"] for r in res),
        "first_errors": [e for r in res for e in r["errors"]][:2],
        "seconds": round(elapsed, 1),
        "msgs_per_s": round(received / elapsed, 1),
        "lag_p50_ms": round(pct(lags, 0.5) * 1000, 1),
        "lag_p99_ms": round(pct(lags, 0.99) * 1000, 1),
        "lag_max_ms": round(max(lags) * 1000, 1) if lags else None,
        "server_handoff_lag_p99_ms_le": server_p99,
        "baseline_lag_p50_ms": round(pct(base, 0.5) * 1000, 1),
        "baseline_lag_p99_ms": round(pct(base, 0.99) * 1000, 1),
        "server_cpu_pct": round(100 * server_cpu / elapsed, 1),
        "server_cpu_us_per_event": round(server_cpu / max(1, received) * 1e6, 1),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "server_rss_idle_mib": round(rss0 / 1024, 1),
        "server_rss_subscribed_mib": round(rss1 / 1024, 1),
        "server_rss_end_mib": round(rss2 / 1024, 1),
        "kib_per_subscriber": round((rss1 - rss0) / n, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subscribers", default="100,1000,5000")
    ap.add_argument("--seconds", type=float, default=45.0, help="streaming time per run")
    ap.add_argument("--speed", type=float, default=60.0, help="x real time")
    ap.add_argument("--client-procs", type=int, default=2)
    ap.add_argument("--trades", type=int, default=30_000, help="COIN-M trades to candle")
    ap.add_argument("--out", default="", help="append JSON lines here")
    ap.add_argument(
        "--no-batch",
        action="store_true",
        help="subscribers do not set StreamCandlesRequest.batch (one event per message)",
    )
    ap.add_argument(
        "--test-stack",
        action="store_true",
        help="use (or start) the shared test stack instead of `stack up`'s",
    )
    args = ap.parse_args()
    candles = day_candles(args.trades)
    if args.test_stack:
        from devstack.testing import acquire_stack, release_stack

        stack, started = acquire_stack(flink=False)
        settings = stack.settings
    else:
        from candleflow.config import StackSettings

        settings = StackSettings()
    try:
        for n in (int(x) for x in args.subscribers.split(",")):
            r = run_one(
                n, candles, args.seconds, args.speed, args.client_procs, settings, not args.no_batch
            )
            print(json.dumps(r), flush=True)
            if args.out:
                with open(args.out, "a") as fh:
                    fh.write(json.dumps(r) + "\n")
    finally:
        if args.test_stack:
            release_stack(stack, started)


if __name__ == "__main__":
    main()
