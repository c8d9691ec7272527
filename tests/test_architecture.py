"""The layering a newcomer relies on (issue 16), checked over the source itself.

- The core (`candleflow/`) imports no infrastructure client: no Kafka, Flink, gRPC,
  Iceberg, DuckDB or Trino, and none of the packages that do (adapters, devstack,
  verify, ingest, jobs, serving). Checked twice: statically over every import statement
  (lazy ones inside functions included), and at run time by importing every core module
  in a fresh interpreter and looking at `sys.modules`. `candleflow.cli` is the one
  exception at run time: it is the command line, which mounts every area by module name.
- Production packages do not import `devstack/` (the jobs only to submit to the local
  session cluster), and no module of the project is over MAX_LINES lines.
- The project's import graph has no cycle, counting every import statement (lazy ones and
  `if TYPE_CHECKING:` ones too): a cycle means two modules that cannot be read apart.

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
PROJECT_PACKAGES = ("candleflow", *sorted(OUTER_PACKAGES))


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import statement in `path`, at any depth."""
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
    return out


def _modules(*packages: str) -> dict[str, Path]:
    """module name -> file, for the project's own modules (generated code excluded)."""
    mods = {}
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "generated" in path.parts:
                continue
            rel = path.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            mods[".".join(parts)] = path
    return mods


def _core_modules() -> list[str]:
    return list(_modules("candleflow"))


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports (`from pkg import mod` counts as pkg.mod)."""
    mods = _modules(*PROJECT_PACKAGES)
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            else:
                continue
            graph[mod] |= {n for n in names if n in mods and n != mod}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


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


def test_no_import_cycles() -> None:
    graph = import_graph()
    assert len(graph) > 80
    assert "serving.history" in graph["serving.history_backend"]
    found = cycles(graph)
    assert not found, f"import cycles: {found}"


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e2"}, "e2": {"e"}}
    assert sorted(cycles(graph)) == [["a", "b", "c"], ["e", "e2"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


# "No module over ~500 lines" (issue 16): a module past this is doing two things.
MAX_LINES = 520


def test_no_module_is_too_long() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in _modules(*PROJECT_PACKAGES).values()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines (split them by responsibility): {long}"


# Production code does not import the dev stack; the jobs only to submit to the local
# session cluster (the JVM client classpath, the cluster's REST options).
# backfill_files: the JVM reader scan() runs the local JDK (backfill is a local command).
DEVSTACK_ALLOWED = {"jobs.flink_env", "jobs.anomalies", "jobs.backfill_files"}


def test_production_code_does_not_import_the_dev_stack() -> None:
    bad = sorted(
        f"{mod} -> {dep}"
        for mod, deps in import_graph().items()
        for dep in deps
        if dep.split(".")[0] == "devstack"
        and mod.split(".")[0] not in ("devstack", "candleflow")  # candleflow: test above
        and mod not in DEVSTACK_ALLOWED
    )
    assert not bad, f"production modules importing devstack: {bad}"


def test_bench_does_not_reach_into_tests() -> None:
    bad = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path in sorted((ROOT / "bench").rglob("*.py"))
        for line, module in _imports(path)
        if module.split(".")[0] == "tests"
    ]
    assert not bad, f"bench/ imports tests/ (shared fakes live in devstack/fakes): {bad}"
