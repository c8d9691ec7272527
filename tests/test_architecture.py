"""The layering a newcomer relies on (issue 16), checked over the source itself.

- The core (`candleflow/`) imports no infrastructure client: no Kafka, Flink, gRPC,
  Iceberg, DuckDB or Trino, and none of the packages that do (adapters, devstack,
  verify, ingest, jobs, serving). Checked twice: statically over every import statement
  (lazy ones inside functions included), and at run time by importing every core module
  in a fresh interpreter and looking at `sys.modules`. `candleflow.cli` is the one
  exception at run time: it is the command line, which mounts every area by module name.

Pure Python, no stack: ~3 s (the run-time check pays one interpreter start).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "candleflow"
INFRASTRUCTURE = {
    "confluent_kafka": "Kafka",
    "kafka": "Kafka",
    "pyflink": "Flink",
    "grpc": "gRPC",
    "grpc_health": "gRPC",
    "grpc_reflection": "gRPC",
    "pyiceberg": "Iceberg",
    "duckdb": "DuckDB",
    "trino": "Trino",
}
OUTER_PACKAGES = {"adapters", "devstack", "verify", "ingest", "jobs", "serving", "explainer"}


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import statement in `path`, at any depth."""
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
    return out


def _core_modules() -> list[str]:
    mods = []
    for path in sorted(CORE.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        mods.append(".".join(parts))
    return mods


def test_core_imports_no_infrastructure_statically() -> None:
    bad = []
    for path in sorted(CORE.rglob("*.py")):
        for line, module in _imports(path):
            top = module.split(".")[0]
            if top in INFRASTRUCTURE or top in OUTER_PACKAGES:
                why = INFRASTRUCTURE.get(top, "an outer package")
                bad.append(f"{path.relative_to(ROOT)}:{line}: imports {module} ({why})")
    assert not bad, "the core imports infrastructure:\n" + "\n".join(bad)


def test_core_imports_no_infrastructure_at_run_time() -> None:
    mods = [m for m in _core_modules() if m != "candleflow.cli"]
    assert len(mods) > 10
    code = (
        "import importlib, json, sys\n"
        f"for m in {mods!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted({k.split('.')[0] for k in sys.modules})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    loaded = set(json.loads(out))
    bad = sorted(loaded & (set(INFRASTRUCTURE) | OUTER_PACKAGES))
    assert not bad, f"importing the core loads {bad}"


def test_the_check_sees_lazy_imports(tmp_path: Path) -> None:
    """The static check would catch an import hidden inside a function."""
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from confluent_kafka import Producer\n    import duckdb\n")
    assert [m for _, m in _imports(probe)] == ["confluent_kafka", "duckdb"]
