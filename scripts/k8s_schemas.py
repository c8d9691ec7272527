"""Build the JSON schemas kubeconform validates the chart against, from registry packages only.

kubeconform normally downloads its schemas from GitHub, which CI cannot reach. Instead:

* Kubernetes kinds: the `kubernetes-validate` PyPI package ships the upstream OpenAPI
  schemas per Kubernetes version, with shared definitions in one `_definitions.json`
  referenced as `/api/_definitions.json#/$defs/...`. kubeconform cannot resolve that
  reference, so each kind is rewritten standalone (only the definitions it reaches).
* FlinkDeployment: the CRD inside the `flink-kubernetes-operator-api` jar
  (META-INF/fabric8/). Maven Central, as this machine reaches it, carries that jar up to
  1.10.0 only, so the 1.10.0 CRD is taken and brought to 1.15.0 by FLINK_CRD_1_15_PATCHES:
  the complete difference of spec between the two versions' CRDs as compared by hand on
  the operator's release-1.15.0 tag (flinkVersion enum gains v2_0/v2_1/v2_2, and
  job.autoscalerResetNonce is new; 1.15.0 also loosened flinkConfiguration to arbitrary
  YAML, kept here as the stricter map of strings that the chart renders).
* ServiceMonitor / PodMonitor / PrometheusRule: the CRDs in the prometheus-operator Go
  module (example/prometheus-operator-crd/).

Usage: python scripts/k8s_schemas.py --k8s-version 1.33.0 --kv-dir <kubernetes_validate dir>
  --operator-jar <jar> --prom-crds <dir> --out <dir>
"""

from __future__ import annotations

import argparse
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import yaml

FLINK_CRD_ENTRY = "META-INF/fabric8/flinkdeployments.flink.apache.org-v1.yml"
PROM_CRDS = ("servicemonitors", "podmonitors", "prometheusrules")
REF = re.compile(r"^(?:/api/_definitions\.json)?#/\$defs/(.+)$")


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and (m := REF.match(ref)):
            found.add(m.group(1))
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def _rewrite(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: _rewrite(v) for k, v in node.items()}
        ref = out.get("$ref")
        if isinstance(ref, str) and (m := REF.match(ref)):
            out["$ref"] = f"#/definitions/{m.group(1)}"
        return out
    if isinstance(node, list):
        return [_rewrite(v) for v in node]
    return node


def standalone_kinds(kv_dir: Path, version: str, out: Path) -> int:
    """kubernetes-validate's `v<version>-local-strict` -> kubeconform `-standalone-strict`."""
    src = kv_dir / f"v{version}-local-strict"
    defs = json.loads((src / "_definitions.json").read_text())["$defs"]
    dst = out / "kubernetes" / f"v{version}-standalone-strict"
    dst.mkdir(parents=True, exist_ok=True)
    count = 0
    for path in sorted(src.glob("*.json")):
        if path.name in ("_definitions.json", "all.json"):
            continue
        schema = json.loads(path.read_text())
        needed: set[str] = set()
        _refs(schema, needed)
        # Close over the definitions the kind reaches, transitively.
        seen: set[str] = set()
        todo = set(needed)
        while todo:
            name = todo.pop()
            seen.add(name)
            more: set[str] = set()
            _refs(defs[name], more)
            todo |= more - seen
        schema = _rewrite(schema)
        schema.pop("$schema", None)
        schema.pop("$id", None)
        schema["definitions"] = {name: _rewrite(defs[name]) for name in sorted(seen)}
        (dst / path.name).write_text(json.dumps(schema))
        count += 1
    return count


def openapi_to_jsonschema(node: Any) -> Any:
    """CRD openAPIV3Schema -> strict JSON schema (as kubeconform's openapi2jsonschema)."""
    if isinstance(node, list):
        return [openapi_to_jsonschema(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: openapi_to_jsonschema(v) for k, v in node.items()}
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out["oneOf"] = [{"type": "string"}, {"type": "integer"}]
    preserve = out.pop("x-kubernetes-preserve-unknown-fields", False)
    for key in [k for k in out if k.startswith("x-kubernetes-")]:
        out.pop(key)
    if out.pop("nullable", False) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    return out


def crd_schema(crd: dict, version: str) -> dict:
    for v in crd["spec"]["versions"]:
        if v["name"] == version:
            schema = openapi_to_jsonschema(v["schema"]["openAPIV3Schema"])
            props = schema.setdefault("properties", {})
            props.setdefault("apiVersion", {"type": "string"})
            props.setdefault("kind", {"type": "string"})
            props.setdefault("metadata", {"type": "object"})
            return schema
    raise KeyError(f"{crd['metadata']['name']} has no version {version}")


def patch_flink_crd_to_1_15(schema: dict) -> dict:
    spec = schema["properties"]["spec"]["properties"]
    enum = spec["flinkVersion"]["enum"]
    for v in ("v2_0", "v2_1", "v2_2"):
        if v not in enum:
            enum.append(v)
    spec["job"]["properties"].setdefault("autoscalerResetNonce", {"type": "integer"})
    return schema


def write_crd(out: Path, group: str, kind: str, version: str, schema: dict) -> Path:
    path = out / "crds" / group / f"{kind.lower()}_{version}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(schema, indent=1))
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k8s-version", required=True)
    ap.add_argument("--kv-dir", type=Path, required=True)
    ap.add_argument("--operator-jar", type=Path, required=True)
    ap.add_argument("--prom-crds", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    n = standalone_kinds(a.kv_dir, a.k8s_version, a.out)
    with zipfile.ZipFile(a.operator_jar) as jar:
        crd = yaml.safe_load(jar.read(FLINK_CRD_ENTRY))
    fd = patch_flink_crd_to_1_15(crd_schema(crd, "v1beta1"))
    # Kept as a CRD too, for `kubectl apply` against a real API server.
    write_crd(a.out, "flink.apache.org", "FlinkDeployment", "v1beta1", fd)
    (a.out / "crds" / "flinkdeployments.flink.apache.org-v1.yml").write_bytes(
        yaml.safe_dump(crd).encode()
    )
    for name in PROM_CRDS:
        crd = yaml.safe_load((a.prom_crds / f"monitoring.coreos.com_{name}.yaml").read_text())
        kind = crd["spec"]["names"]["kind"]
        write_crd(a.out, "monitoring.coreos.com", kind, "v1", crd_schema(crd, "v1"))
    print(
        f"k8s_schemas: {n} Kubernetes kinds (v{a.k8s_version}), FlinkDeployment, "
        f"{len(PROM_CRDS)} prometheus-operator kinds -> {a.out}"
    )


if __name__ == "__main__":
    main()
