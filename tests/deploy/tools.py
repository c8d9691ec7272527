"""Where the deploy validation tools live (scripts/setup_helm.sh) and how tests call them.

Every test that needs a tool skips with the reason printed when the tool is missing, so a
machine without them says why instead of passing silently.
"""

from __future__ import annotations

import copy
import functools
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from candleflow.config import default_cache_dir

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "candleflow"
VALUES_FILES = {"default": None, "production": CHART / "values-production.yaml"}
# Kubernetes version the chart is rendered and validated for (GKE regular channel).
KUBE_VERSION = "1.33.0"
RELEASE = "candleflow"
NAMESPACE = "candleflow"


def cache() -> Path:
    return default_cache_dir()


def tool(name: str) -> Path:
    """A binary from the cache (or PATH); skips the test with the reason when absent."""
    path = cache() / "bin" / name
    if path.exists():
        return path
    found = shutil.which(name)
    if found:
        return Path(found)
    setup = (
        "setup_promtool.sh (make setup-promtool)"
        if name == "promtool"
        else "setup_helm.sh (make setup-helm)"
    )
    pytest.skip(f"{name} not installed: run scripts/{setup}")


def deploy_python() -> Path:
    path = cache() / "deploy-venv" / "bin" / "python"
    if not path.exists():
        pytest.skip("deploy-venv missing: run scripts/setup_helm.sh (make setup-helm)")
    return path


def schemas_dir() -> Path:
    path = cache() / "k8s-schemas"
    if not (path / ".stamp").exists():
        pytest.skip("kubeconform schemas missing: run scripts/setup_helm.sh (make setup-helm)")
    return path


def run(cmd: list[str | Path], *, check: bool = True, **kw: Any) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, cmd))} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def helm_template(
    values: Path | None = None, *extra: str, check: bool = True, chart: Path = CHART
) -> subprocess.CompletedProcess:
    cmd: list[str | Path] = [
        tool("helm"),
        "template",
        RELEASE,
        chart,
        "--namespace",
        NAMESPACE,
        "--kube-version",
        KUBE_VERSION,
    ]
    if values is not None:
        cmd += ["-f", values]
    return run([*cmd, *extra], check=check)


def render(values: Path | None = None, *extra: str) -> list[dict]:
    """Rendered objects (a fresh copy each call: tests may mutate them)."""
    return copy.deepcopy(_render(values, extra))


@functools.cache
def _render(values: Path | None, extra: tuple[str, ...]) -> list[dict]:
    docs = yaml.safe_load_all(helm_template(values, *extra).stdout)
    return [d for d in docs if d]


def find(objs: list[dict], kind: str, name: str | None = None) -> list[dict]:
    return [
        o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]


def kubeconform_cmd() -> list[str | Path]:
    s = schemas_dir()
    return [
        tool("kubeconform"),
        "-strict",
        "-summary",
        "-kubernetes-version",
        KUBE_VERSION,
        "-schema-location",
        f"{s}/kubernetes/{{{{.NormalizedKubernetesVersion}}}}-standalone{{{{.StrictSuffix}}}}"
        "/{{.ResourceKind}}{{.KindSuffix}}.json",
        "-schema-location",
        f"{s}/crds/{{{{.Group}}}}/{{{{.ResourceKind}}}}_{{{{.ResourceAPIVersion}}}}.json",
    ]
