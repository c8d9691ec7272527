"""The floor under the fan-out benchmark: bare grpc-python (asyncio) streaming of one
pre-serialized 300-byte message to N streams, no Kafka, no hub. Prints the server's CPU
per delivered message, to compare with bench/fanout/run.py's server CPU per event.

    .venv/bin/python -m bench.fanout.grpc_floor 1000 20
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import sys
import threading
import time
from typing import Any

import grpc


def cpu_s() -> float:
    fields = open(f"/proc/{os.getpid()}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def server(n: int, msgs: int, q: Any) -> None:
    events = [asyncio.Event() for _ in range(msgs)]
    payload = b"x" * 300

    async def handler(_req: bytes, _ctx: Any) -> Any:
        yield b"ready"
        for e in events:
            await e.wait()
            yield payload

    srv = grpc.aio.server()
    srv.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "m.M",
                {
                    "S": grpc.unary_stream_rpc_method_handler(
                        handler, request_deserializer=lambda b: b, response_serializer=lambda b: b
                    )
                },
            ),
        )
    )
    port = srv.add_insecure_port("127.0.0.1:0")
    await srv.start()
    q.put(port)
    await asyncio.get_running_loop().run_in_executor(None, q.get)  # all clients subscribed
    c0, t0 = cpu_s(), time.time()
    for e in events:
        e.set()
        await asyncio.sleep(0.3)
    await asyncio.sleep(2)
    print(
        f"{n} streams x {msgs} messages: server CPU {(cpu_s() - c0) / (n * msgs) * 1e6:.1f} "
        f"us per message (wall {time.time() - t0:.1f} s)",
        flush=True,
    )
    await srv.stop(0)


def client(port: int, q: Any, n: int) -> None:
    async def main() -> None:
        chans = [
            grpc.aio.insecure_channel(
                f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]
            )
            for _ in range((n + 99) // 100)
        ]
        ready = 0
        all_ready = asyncio.Event()

        async def one(i: int) -> None:
            nonlocal ready
            call = chans[i // 100].unary_stream(
                "/m.M/S", request_serializer=lambda b: b, response_deserializer=lambda b: b
            )(b"")
            async for m in call:
                if m == b"ready":
                    ready += 1
                    if ready == n:
                        all_ready.set()

        tasks = [asyncio.create_task(one(i)) for i in range(n)]
        await all_ready.wait()
        q.put("ready")
        await asyncio.gather(*tasks)

    asyncio.run(main())


def main() -> None:
    n, msgs = int(sys.argv[1]), int(sys.argv[2])
    ctx = mp.get_context("spawn")
    q, q_client = ctx.Queue(), ctx.Queue()
    t = threading.Thread(target=lambda: asyncio.run(server(n, msgs, q)))
    t.start()
    port = q.get()
    cl = ctx.Process(target=client, args=(port, q_client, n))
    cl.start()
    q_client.get()
    q.put("go")
    t.join()
    cl.terminate()


if __name__ == "__main__":
    main()
