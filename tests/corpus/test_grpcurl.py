"""The bad-input corpus, gRPC part: grpcurl (built by scripts/setup_grpcurl.sh from the Go
module proxy, a client that shares no code with Candleflow) calls a real server through
server reflection. Each case of cases/grpc.yaml `grpcurl` asserts the status and message."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient

from candleflow.config import default_cache_dir
from serving.pb import SERVICE
from tests.corpus.cases_io import simple
from tests.serving.conftest import TOKEN
from tests.serving.data import spot_candles

pytestmark = pytest.mark.integration

GRPCURL = default_cache_dir() / "bin" / "grpcurl"
AUTH = f"authorization: Bearer {TOKEN}"


@pytest.fixture(scope="module")
def grpcurl() -> Path:
    if not GRPCURL.exists():
        found = shutil.which("grpcurl")
        if found is None:
            pytest.fail("grpcurl missing: run scripts/setup_grpcurl.sh (make test does)")
        return Path(found)
    return GRPCURL


async def call(
    grpcurl: Path,
    port: int,
    method: str,
    req: dict[str, Any] | str,
    *,
    reflect: str | None = AUTH,
    rpc: str | None = AUTH,
    tls: list[str] | None = None,
) -> tuple[int, str]:
    """(exit code, stdout+stderr) of one grpcurl call; never waits more than 20 s."""
    args = [str(grpcurl), "-max-time", "20", "-format-error"]
    args += tls if tls is not None else ["-plaintext"]
    if tls and "-plaintext" not in tls:
        args += ["-connect-timeout", "5"]
    if reflect:
        args += ["-reflect-header", reflect]
    if rpc:
        args += ["-rpc-header", rpc]
    body = req if isinstance(req, str) else json.dumps(req)
    args += ["-d", body, f"127.0.0.1:{port}", f"{SERVICE}/{method}"]
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode or 0, out.decode(errors="replace")


def _tls_files(tmp: Path) -> dict[str, str]:
    from tests.serving.test_tls import _cert

    ca = _cert("ca", None, tmp, ca=True)
    _cert("server", ca, tmp, san="localhost")
    return {
        "ca": str(tmp / "ca.pem"),
        "cert": str(tmp / "server.pem"),
        "key": str(tmp / "server.key"),
    }


def _expire(bootstrap: str, topic: str, producer: Any) -> tuple[int, int]:
    """Five committed candles, then the first records of their partition deleted as
    retention would: (partition, its new first offset)."""
    producer.send(spot_candles()[:5])
    admin = AdminClient({"bootstrap.servers": bootstrap})
    meta = admin.list_topics(topic, timeout=10).topics[topic].partitions
    from serving.kafka_io import list_offsets

    latest = list_offsets(bootstrap, [(topic, p) for p in meta], "latest")
    partition = max(latest, key=lambda tp: latest[tp])[1]
    first = 2
    for fut in admin.delete_records([TopicPartition(topic, partition, first)]).values():
        fut.result(30)
    return partition, first


@pytest.mark.parametrize("case", simple("grpc", "grpcurl"))
async def test_grpcurl(
    case: dict[str, Any], grpcurl: Path, server_factory: Any, candle_topics: Any, tmp_path: Path
) -> None:
    names = {"candles": candle_topics.topics.candles, "p": "0", "first": "0"}
    if case.get("setup") == "expire":
        p, first = await asyncio.to_thread(
            _expire,
            candle_topics.settings.bootstrap_servers,
            names["candles"],
            candle_topics.producer(),
        )
        names.update(p=str(p), first=str(first))
    tls_args = None
    overrides: dict[str, Any] = {}
    if case.get("server") == "tls":
        files = _tls_files(tmp_path)
        overrides = {"tls_cert": files["cert"], "tls_key": files["key"]}
        tls_args = {
            "plaintext": ["-plaintext"],
            "tls_no_ca": ["-authority", "localhost"],
            "tls": ["-cacert", files["ca"], "-authority", "localhost"],
        }[case["client"]]
    _srv, port = await server_factory(**overrides)

    def fill(text: str) -> str:
        for key, value in names.items():
            text = text.replace("{" + key + "}", value)
        return text

    req = json.loads(fill(json.dumps(case["req"])))
    token = case.get("token", TOKEN)
    rpc = None if token is None else f"authorization: Bearer {token}"
    code, out = await call(grpcurl, port, case["method"], req, rpc=rpc, tls=tls_args)
    assert code != 0, out
    if case["code"]:
        status = json.loads(out)
        assert status["code"] == _CODES[case["code"]], out
        assert fill(case["error"]) in status["message"]
    else:
        assert fill(case["error"]) in out, out


_CODES = {"InvalidArgument": 3, "Unauthenticated": 16, "OutOfRange": 11}
