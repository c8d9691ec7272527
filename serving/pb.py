"""Protobuf messages of proto/candleflow/v1/market_data.proto, generated at import time.

The stubs are build output, not source: they are generated with grpc_tools.protoc into
serving/generated/ (gitignored) the first time they are needed and again whenever the
.proto or the protobuf runtime changes (a stamp holds both), so a fresh clone works and
a stale stub cannot be imported. Only the message module is generated: the service
handlers and the client are written against grpc's generic API (serving/service.py,
serving/client.py), which lets the server send one pre-serialized message to many
subscribers.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import google.protobuf

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
PROTO_FILE = "candleflow/v1/market_data.proto"
GEN_DIR = Path(__file__).resolve().parent / "generated"
MODULE_PATH = GEN_DIR / "candleflow" / "v1" / "market_data_pb2.py"
STAMP = GEN_DIR / "stamp"
SERVICE = "candleflow.v1.MarketData"


def _fingerprint() -> str:
    digest = hashlib.sha256((PROTO_DIR / PROTO_FILE).read_bytes())
    digest.update(google.protobuf.__version__.encode())
    return digest.hexdigest()


def is_fresh() -> bool:
    return MODULE_PATH.exists() and STAMP.exists() and STAMP.read_text() == _fingerprint()


def generate() -> None:
    """Run protoc into a temp dir and swap it in atomically (safe across processes)."""
    from grpc_tools import protoc  # build-time dependency only

    GEN_DIR.parent.mkdir(parents=True, exist_ok=True)
    lock_path = GEN_DIR.parent / ".generated.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_fresh():
            return
        tmp = Path(tempfile.mkdtemp(prefix="generated.", dir=GEN_DIR.parent))
        include = Path(protoc.__file__).parent / "_proto"
        rc = protoc.main(
            [
                "protoc",
                f"-I{PROTO_DIR}",
                f"-I{include}",
                f"--python_out={tmp}",
                f"--pyi_out={tmp}",
                str(PROTO_DIR / PROTO_FILE),
            ]
        )
        if rc != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise RuntimeError(f"protoc failed ({rc}) on {PROTO_DIR / PROTO_FILE}")
        (tmp / "stamp").write_text(_fingerprint())
        old = GEN_DIR.with_name("generated.old")
        shutil.rmtree(old, ignore_errors=True)
        if GEN_DIR.exists():
            os.replace(GEN_DIR, old)
        os.replace(tmp, GEN_DIR)
        shutil.rmtree(old, ignore_errors=True)


def _load() -> ModuleType:
    name = "serving.generated.market_data_pb2"
    if name in sys.modules:
        return sys.modules[name]
    if not is_fresh():
        generate()
    spec = importlib.util.spec_from_file_location(name, MODULE_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


pb = _load()
