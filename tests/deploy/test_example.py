"""k8s/example/rendered.yaml is what the chart renders today, and it is valid."""

from __future__ import annotations

import re

from tests.deploy.tools import ROOT, helm_template, kubeconform_cmd, run

EXAMPLE = ROOT / "k8s" / "example"


def test_rendered_example_is_fresh() -> None:
    committed = (EXAMPLE / "rendered.yaml").read_text()
    body = "\n".join(
        line
        for line in committed.splitlines()
        if not line.startswith("# Gen") and not line.startswith("# Do not edit")
    )
    now = helm_template(EXAMPLE / "values.yaml").stdout
    assert body.strip() == now.strip(), (
        "k8s/example/rendered.yaml is stale: run scripts/render_example.sh"
    )


def test_rendered_example_is_valid() -> None:
    manifest = (EXAMPLE / "rendered.yaml").read_text()
    kinds = re.findall(r"^kind: (\S+)", manifest, flags=re.M)
    assert "FlinkDeployment" in kinds and "PrometheusRule" not in kinds
    proc = run([*kubeconform_cmd(), "-"], input=manifest, check=False)
    assert proc.returncode == 0, proc.stdout
    assert f"Valid: {len(kinds)}, Invalid: 0, Errors: 0, Skipped: 0" in proc.stdout
