"""Protobuf messages of proto/candleflow/v1/market_data.proto, imported normally.

The stubs (`serving/market_data_pb2.py` and its typed `.pyi`, so mypy knows every message
and field) are checked in; `tests/serving/test_units.py` fails when they differ from what
protoc makes of today's `.proto`. After changing the `.proto`, regenerate them with
`python -m serving.pb`. Only the message module is generated: the service handlers and the
client are written against grpc's generic API (serving/service.py, serving/client.py), which
lets the server send one pre-serialized message to many subscribers.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from serving import market_data_pb2 as pb

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
PROTO_FILE = "candleflow/v1/market_data.proto"
STUBS = (
    Path(__file__).resolve().parent / "market_data_pb2.py",
    Path(__file__).resolve().parent / "market_data_pb2.pyi",
)
SERVICE = "candleflow.v1.MarketData"

__all__ = ["PROTO_DIR", "PROTO_FILE", "SERVICE", "STUBS", "generate", "pb"]


def generate(out_dir: Path) -> tuple[Path, Path]:
    """Run protoc (grpcio-tools, pinned in requirements.lock) on the .proto into `out_dir`:
    the message module and its stub, named like STUBS."""
    from grpc_tools import protoc  # build-time dependency only

    include = Path(protoc.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
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
            raise RuntimeError(f"protoc failed ({rc}) on {PROTO_DIR / PROTO_FILE}")
        made = Path(tmp) / Path(PROTO_FILE).parent
        out = tuple(out_dir / stub.name for stub in STUBS)
        for stub, target in zip(STUBS, out, strict=True):
            shutil.copyfile(made / stub.name, target)
    return out  # type: ignore[return-value]


if __name__ == "__main__":
    written = generate(Path(__file__).resolve().parent)
    sys.stdout.write("".join(f"wrote {p}\n" for p in written))
