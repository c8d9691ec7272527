"""terraform/: formatting, validation where providers can be had, checkov static analysis
and structural checks on the HCL. Each step that cannot run here skips with its reason."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.deploy.tools import ROOT, cache, deploy_python, run

TF = ROOT / "terraform"


def _tf_binary() -> Path:
    for name in ("terraform", "tofu"):
        found = shutil.which(name) or (
            cache() / "bin" / name if (cache() / "bin" / name).exists() else None
        )
        if found:
            return Path(found)
    pytest.skip(
        "neither terraform nor tofu is installed "
        "(CANDLEFLOW_BUILD_TOFU=1 scripts/setup_helm.sh builds OpenTofu, 8-45 min)"
    )


def test_fmt() -> None:
    proc = run([_tf_binary(), "fmt", "-check", "-recursive", "-diff", TF], check=False)
    assert proc.returncode == 0, f"terraform fmt would change:\n{proc.stdout}{proc.stderr}"


def test_validate() -> None:
    tf = _tf_binary()
    with tempfile.TemporaryDirectory(prefix="tf-validate-") as data_dir:
        env = {
            **os.environ,
            "TF_DATA_DIR": data_dir,
            "TF_IN_AUTOMATION": "1",
            "CHECKPOINT_DISABLE": "1",
        }
        try:
            init = subprocess.run(
                [tf, "init", "-backend=false", "-input=false", "-no-color"],
                cwd=TF,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
        except subprocess.TimeoutExpired:
            pytest.skip(
                "terraform init timed out fetching providers (no provider registry "
                "reachable); fmt + checkov + the HCL checks still ran"
            )
        if init.returncode != 0:
            reason = next(
                (line for line in init.stderr.splitlines() if "Error" in line),
                init.stderr.strip()[:200],
            )
            print(f"terraform validate skipped: providers cannot be installed here: {reason}")
            pytest.skip(
                f"providers cannot be installed here ({reason.strip()}); "
                "fmt + checkov + the HCL checks still ran"
            )
        proc = subprocess.run(
            [tf, "validate", "-no-color"], cwd=TF, env=env, capture_output=True, text=True
        )
        lock = TF / ".terraform.lock.hcl"
        if lock.exists() and not (TF / ".terraform.lock.hcl.keep").exists():
            lock.unlink()
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _checkov() -> Path:
    path = deploy_python().parent / "checkov"
    if not path.exists():
        pytest.skip("checkov missing: run scripts/setup_helm.sh")
    return path


def test_checkov_static_analysis() -> None:
    proc = run(
        [
            _checkov(),
            "-d",
            TF,
            "--framework",
            "terraform",
            "--compact",
            "--skip-download",
            "-o",
            "json",
        ],
        check=False,
    )
    report = json.loads(proc.stdout)
    summary = report["summary"]
    failed = [
        f"{c['check_id']} {c['resource']}: {c['check_name']}"
        for c in report["results"]["failed_checks"]
    ]
    assert summary["failed"] == 0, "\n".join(failed)
    assert summary["passed"] >= 90
    assert summary["parsing_errors"] == 0
    for skipped in report["results"]["skipped_checks"]:
        # Every skip says why (the text after `#checkov:skip=ID:`).
        assert len(skipped["check_result"].get("suppress_comment", "")) > 20, skipped


PARSE = """
import json, sys, pathlib, hcl2
out = {}
for p in sorted(pathlib.Path(sys.argv[1]).glob("*.tf")):
    with open(p) as f:
        out[p.name] = hcl2.load(f)
print(json.dumps(out, default=str))
"""


def _unwrap(node: object) -> object:
    """checkov's HCL parser wraps every attribute in a one-element list; blocks stay lists."""
    if isinstance(node, dict):
        return {k: _unwrap(v) for k, v in node.items() if not k.startswith("__")}
    if isinstance(node, list):
        if len(node) == 1 and not isinstance(node[0], dict):
            return _unwrap(node[0])
        return [_unwrap(v) for v in node]
    return node


@pytest.fixture(scope="module")
def hcl() -> dict:
    proc = run([deploy_python(), "-c", PARSE, TF])
    files = _unwrap(json.loads(proc.stdout))
    merged: dict[str, list] = {}
    for doc in files.values():
        for key, blocks in doc.items():
            merged.setdefault(key, []).extend(blocks)
    return merged


def _resources(hcl: dict) -> dict[str, dict]:
    out = {}
    for block in hcl.get("resource", []):
        for rtype, named in block.items():
            for name, body in named.items():
                out[f"{rtype}.{name}"] = body
    return out


def test_variables_typed_described_validated(hcl: dict) -> None:
    variables = {name: body for block in hcl["variable"] for name, body in block.items()}
    assert len(variables) >= 15
    for name, body in variables.items():
        assert body.get("description"), f"variable {name} has no description"
        assert body.get("type"), f"variable {name} has no type"
    validated = [n for n, b in variables.items() if b.get("validation")]
    assert len(validated) >= 12, validated
    for needed in (
        "project_id",
        "region",
        "image_tag",
        "flink_operator_version",
        "master_authorized_cidr",
        "kafka_vcpus",
    ):
        assert needed in validated


def test_outputs_described(hcl: dict) -> None:
    outputs = {name: body for block in hcl["output"] for name, body in block.items()}
    for needed in (
        "kafka_bootstrap",
        "lake_bucket",
        "catalog_jdbc_uri",
        "workload_service_account",
        "get_credentials",
    ):
        assert outputs[needed]["description"]


def test_resources_the_readme_promises(hcl: dict) -> None:
    res = _resources(hcl)
    cluster = res["google_container_cluster.main"]
    assert (
        cluster["workload_identity_config"][0]["workload_pool"] == "${var.project_id}.svc.id.goog"
    )
    assert cluster["private_cluster_config"][0]["enable_private_nodes"] is True
    pool = res["google_container_node_pool.main"]
    assert pool["node_config"][0]["workload_metadata_config"][0]["mode"] == "GKE_METADATA"
    bucket = res["google_storage_bucket.lake"]
    assert bucket["uniform_bucket_level_access"] is True
    assert bucket["public_access_prevention"] == "enforced"
    sql = res["google_sql_database_instance.catalog"]
    assert sql["database_version"].startswith("POSTGRES_")
    assert sql["settings"][0]["ip_configuration"][0]["ipv4_enabled"] is False
    assert "google_managed_kafka_cluster.main" in res
    wi = res["google_service_account_iam_member.workload_identity"]
    assert wi["role"] == "roles/iam.workloadIdentityUser"
    assert "svc.id.goog[${var.namespace}/${var.name}]" in wi["member"]
    releases = {k: v for k, v in res.items() if k.startswith("helm_release.")}
    assert set(releases) == {
        "helm_release.cert_manager",
        "helm_release.flink_operator",
        "helm_release.candleflow",
    }
    op = releases["helm_release.flink_operator"]
    assert op["repository"] == (
        "https://downloads.apache.org/flink/"
        "flink-kubernetes-operator-${var.flink_operator_version}/"
    )
    assert releases["helm_release.candleflow"]["chart"] == "${path.module}/../helm/candleflow"
    assert (TF / "../helm/candleflow/Chart.yaml").resolve().exists()


def test_operator_default_version_is_1_15(hcl: dict) -> None:
    variables = {name: body for block in hcl["variable"] for name, body in block.items()}
    assert variables["flink_operator_version"]["default"] == "1.15.0"
    assert (TF / variables["chart_values_file"]["default"]).resolve().exists()


def test_no_secret_values_in_terraform() -> None:
    text = "\n".join(p.read_text() for p in TF.glob("*.tf"))
    assert "sk-ant-" not in text
    assert "anthropic" in text.lower()  # the secret container exists, its value never here
