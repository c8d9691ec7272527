"""helm lint + template for both values files, every object validated against the
Kubernetes and operator CRD schemas, and unit-style assertions on the fields that keep
state and secrets safe."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.deploy.tools import (
    CHART,
    KUBE_VERSION,
    NAMESPACE,
    ROOT,
    VALUES_FILES,
    find,
    helm_template,
    kubeconform_cmd,
    render,
    run,
    tool,
)

DATA = Path(__file__).parent / "data"
VALUES = pytest.mark.parametrize("values", list(VALUES_FILES.values()), ids=list(VALUES_FILES))


@VALUES
def test_helm_lint(values: Path | None) -> None:
    cmd = [tool("helm"), "lint", CHART, "--strict", "--kube-version", KUBE_VERSION]
    if values:
        cmd += ["-f", values]
    out = run(cmd).stdout
    assert "0 chart(s) failed" in out


@VALUES
def test_every_object_valid_against_k8s_and_crd_schemas(values: Path | None) -> None:
    manifest = helm_template(values).stdout
    kinds = re.findall(r"^kind: (\S+)", manifest, flags=re.M)
    assert {"FlinkDeployment", "Deployment", "PrometheusRule", "ServiceMonitor"} <= set(kinds)
    proc = run([*kubeconform_cmd(), "-"], input=manifest, check=False)
    # Strict: no unknown fields, and no kind allowed to pass for want of a schema.
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = re.search(r"Valid: (\d+), Invalid: (\d+), Errors: (\d+), Skipped: (\d+)", proc.stdout)
    assert summary, proc.stdout
    assert tuple(map(int, summary.groups())) == (len(kinds), 0, 0, 0)


def test_kubeconform_rejects_a_wrong_flinkdeployment() -> None:
    """The operator CRD schema really is applied: an unknown flinkVersion and a typo fail."""
    objs = render()
    fd = find(objs, "FlinkDeployment")[0]
    fd["spec"]["flinkVersion"] = "v9_9"
    fd["spec"]["job"]["upgradeMod"] = "savepoint"
    import yaml

    proc = run([*kubeconform_cmd(), "-"], input=yaml.safe_dump(fd), check=False)
    assert proc.returncode != 0
    assert "flinkVersion" in proc.stdout and "upgradeMod" in proc.stdout, proc.stdout


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("values-broken-upgrade-mode.yaml", "/flink/jobs/candles/upgradeMode"),
        ("values-latest-tag.yaml", "/images/services/tag"),
        ("values-broken-storage.yaml", "/flink/storage/checkpoints"),
    ],
)
def test_values_schema_rejects_broken_values(bad: str, message: str) -> None:
    proc = helm_template(DATA / bad, check=False)
    assert proc.returncode != 0, "broken values were accepted"
    assert message in proc.stderr, proc.stderr


def _flink(objs: list[dict], job: str) -> dict:
    (fd,) = [
        o
        for o in find(objs, "FlinkDeployment")
        if o["metadata"]["labels"]["candleflow.io/job"] == job
    ]
    return fd


@VALUES
@pytest.mark.parametrize("job", ["candles", "bronze", "anomalies"])
def test_flinkdeployment_keeps_state_across_upgrades(values: Path | None, job: str) -> None:
    spec = _flink(render(values), job)["spec"]
    assert spec["flinkVersion"] == "v2_1"
    j = spec["job"]
    assert j["upgradeMode"] == "savepoint"
    assert j["state"] == "running"
    # A savepoint whose operator uids do not match the new job graph must fail the
    # upgrade, not silently drop that state.
    assert j["allowNonRestoredState"] is False
    assert j["jarURI"] == "local:///opt/flink/opt/flink-python-2.1.3.jar"
    assert j["entryClass"] == "org.apache.flink.client.python.PythonDriver"
    assert j["args"][:2] == ["-pym", f"jobs.{job}"]
    conf = spec["flinkConfiguration"]
    assert all(isinstance(v, str) for v in conf.values())
    for key in ("execution.checkpointing.dir", "state.checkpoints.dir"):
        assert re.fullmatch(rf"gs://[a-z0-9-]+/(flink/)?checkpoints/{job}", conf[key]), conf[key]
    for key in ("execution.checkpointing.savepoint-dir", "state.savepoints.dir"):
        assert re.fullmatch(rf"gs://[a-z0-9-]+/(flink/)?savepoints/{job}", conf[key]), conf[key]
    assert conf["high-availability.type"] == "kubernetes"
    assert conf["high-availability.storageDir"].startswith("gs://")
    assert conf["execution.checkpointing.mode"] == "EXACTLY_ONCE"
    assert (
        conf["execution.checkpointing.externalized-checkpoint-retention"]
        == "RETAIN_ON_CANCELLATION"
    )
    assert conf["kubernetes.operator.job.upgrade.last-state-fallback.enabled"] == "false"
    assert conf["pipeline.name"] == job
    assert int(conf["taskmanager.numberOfTaskSlots"]) >= 1
    assert spec["serviceAccount"]


@VALUES
@pytest.mark.parametrize(
    ("job", "settings"),
    [("candles", "jobs.candles:CandleJobSettings"), ("bronze", "jobs.bronze:BronzeJobSettings")],
)
def test_job_env_reaches_its_own_settings(values: Path | None, job: str, settings: str) -> None:
    """Each job reads its settings under its own prefix: the options its code sets (remote,
    state backend, checkpoints) must come through as what flinkConfiguration says, and no
    variable of that prefix may name a setting the job does not have (it would be ignored)."""
    import importlib

    spec = _flink(render(values), job)["spec"]
    (container,) = spec["podTemplate"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    module, cls = settings.split(":")
    model = getattr(importlib.import_module(module), cls)
    prefix = model.model_config["env_prefix"]
    parsed = model(
        **{k.removeprefix(prefix).lower(): v for k, v in env.items() if k.startswith(prefix)}
    )
    conf = spec["flinkConfiguration"]
    assert parsed.remote is False
    assert parsed.state_backend == conf["state.backend.type"]
    assert f"{parsed.checkpoint_interval_s:g} s" == conf["execution.checkpointing.interval"]
    assert f"{parsed.checkpoint_timeout_s:g} s" == conf["execution.checkpointing.timeout"]
    fields = {f.upper() for f in model.model_fields}
    unknown = [k for k in env if k.startswith(prefix) and k.removeprefix(prefix) not in fields]
    assert not unknown, unknown


def test_bronze_job_is_its_own_deployment() -> None:
    """The bronze job runs, scales and keeps state apart from the candles job."""
    objs = render(None, "--set", "flink.jobs.bronze.parallelism=3")
    bronze, candles = _flink(objs, "bronze")["spec"], _flink(objs, "candles")["spec"]
    assert bronze["job"]["parallelism"] == 3 and candles["job"]["parallelism"] == 2
    for key in ("execution.checkpointing.dir", "execution.checkpointing.savepoint-dir"):
        assert bronze["flinkConfiguration"][key] != candles["flinkConfiguration"][key]
    assert bronze["image"] == candles["image"]  # one pinned job image
    off = render(None, "--set", "flink.jobs.bronze.enabled=false")
    assert [o["metadata"]["labels"]["candleflow.io/job"] for o in find(off, "FlinkDeployment")] == [
        "anomalies",
        "candles",
    ]


def test_production_values_scale_and_ha() -> None:
    objs = render(VALUES_FILES["production"])
    candles = _flink(objs, "candles")["spec"]
    assert candles["job"]["parallelism"] == 4
    assert candles["jobManager"]["replicas"] == 2
    assert candles["taskManager"]["resource"] == {"cpu": 2, "memory": "8192m"}
    assert candles["flinkConfiguration"]["taskmanager.memory.managed.fraction"] == "0.5"
    assert candles["image"].startswith("europe-west4-docker.pkg.dev/")
    sa = find(objs, "ServiceAccount")[0]
    assert sa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"].endswith(
        ".iam.gserviceaccount.com"
    )
    exchanges = {
        d["metadata"]["labels"].get("candleflow.io/exchange") for d in find(objs, "Deployment")
    } - {None}
    assert exchanges == {"binance", "coinbase", "kraken"}


def test_job_args_and_config_from_values() -> None:
    objs = render(
        None,
        "--set",
        "flink.jobs.candles.args={--intervals,1m}",
        "--set",
        "flink.jobs.candles.driverArgs={-pyfs,/opt/candleflow}",
        "--set",
        "flink.jobs.candles.parallelism=3",
        "--set",
        "flink.jobs.candles.flinkConfiguration.pipeline\\.max-parallelism=256",
    )
    spec = _flink(objs, "candles")["spec"]
    # PythonDriver options first, then the job's own arguments.
    assert spec["job"]["args"] == [
        "-pym",
        "jobs.candles",
        "-pyfs",
        "/opt/candleflow",
        "--intervals",
        "1m",
    ]
    assert spec["job"]["parallelism"] == 3
    assert spec["flinkConfiguration"]["pipeline.max-parallelism"] == "256"


def _containers(objs: list[dict]) -> list[tuple[str, dict]]:
    out = []
    for o in objs:
        spec = o.get("spec", {})
        if o["kind"] == "Pod":
            pod = spec
        elif o["kind"] == "FlinkDeployment":
            pod = spec["podTemplate"]["spec"]
            for c in pod["containers"]:
                out.append((o["metadata"]["name"], {**c, "image": spec["image"]}))
            continue
        elif "template" in spec:
            pod = spec["template"]["spec"]
        else:
            continue
        out += [(o["metadata"]["name"], c) for c in pod.get("containers", [])]
    return out


@VALUES
def test_images_pinned(values: Path | None) -> None:
    containers = _containers(render(values))
    assert len(containers) >= 6
    for name, c in containers:
        image = c["image"]
        assert not image.endswith(":latest"), (name, image)
        assert re.search(r"(:[A-Za-z0-9_][A-Za-z0-9_.-]*|@sha256:[a-f0-9]{64})$", image), image


def test_digest_wins_over_tag() -> None:
    digest = "sha256:" + "ab" * 32
    objs = render(None, "--set", f"images.job.digest={digest}")
    assert _flink(objs, "candles")["spec"]["image"] == f"candleflow/job@{digest}"


@VALUES
def test_secrets_never_inlined(values: Path | None) -> None:
    objs = render(values)
    assert not find(objs, "Secret"), "the chart must not carry secret values"
    secretish = re.compile(r"(KEY|TOKEN|PASSWORD|SECRET)", re.I)
    for name, c in _containers(objs):
        for env in c.get("env", []):
            if secretish.search(env["name"]):
                assert "value" not in env, (name, env)
                assert "secretKeyRef" in env["valueFrom"], (name, env)
    for cm in find(objs, "ConfigMap"):
        for key in cm["data"]:
            assert not secretish.search(key) or key.endswith("_USER"), key
    (explainer,) = [c for n, c in _containers(objs) if n.endswith("-explainer")]
    (key,) = [e for e in explainer["env"] if e["name"] == "ANTHROPIC_API_KEY"]
    assert key["valueFrom"]["secretKeyRef"] == {
        "name": "candleflow-anthropic",
        "key": "api-key",
        "optional": True,
    }


def _labels_match(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_serving_service_hpa_pdb_and_grpc_probes() -> None:
    objs = render()
    (dep,) = find(objs, "Deployment", "candleflow-serving")
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    (svc,) = find(objs, "Service", "candleflow-serving")
    assert _labels_match(svc["spec"]["selector"], pod_labels)
    (pdb,) = find(objs, "PodDisruptionBudget")
    assert _labels_match(pdb["spec"]["selector"]["matchLabels"], pod_labels)
    (hpa,) = find(objs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"]
    assert "replicas" not in dep["spec"], "the HPA owns the replica count"
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    assert c["readinessProbe"]["grpc"]["port"] == 50051
    assert c["livenessProbe"]["grpc"]["port"] == 50051
    (test_pod,) = find(objs, "Pod")
    assert test_pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert f"candleflow-serving:{50051}" in test_pod["spec"]["containers"][0]["args"]
    (np,) = find(objs, "NetworkPolicy", "candleflow-serving")
    assert _labels_match(np["spec"]["podSelector"]["matchLabels"], pod_labels)
    # The helm test pod may reach the gRPC port even when clients are restricted.
    peers = np["spec"]["ingress"][0]["from"]
    assert any(
        "podSelector" in p
        and _labels_match(p["podSelector"]["matchLabels"], test_pod["metadata"]["labels"])
        for p in peers
    )


def test_services_get_no_api_token() -> None:
    for dep in find(render(), "Deployment"):
        assert dep["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


def test_rbac_allows_flink_ha_and_taskmanager_pods() -> None:
    objs = render()
    (role,) = find(objs, "Role")
    granted = {(r, v) for rule in role["rules"] for r in rule["resources"] for v in rule["verbs"]}
    for res in ("configmaps", "pods"):
        for verb in ("get", "list", "watch", "create", "update", "delete"):
            assert (res, verb) in granted
    (binding,) = find(objs, "RoleBinding")
    (sa,) = find(objs, "ServiceAccount")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": NAMESPACE}
    ]
    for fd in find(objs, "FlinkDeployment"):
        assert fd["spec"]["serviceAccount"] == sa["metadata"]["name"]


def test_alerts_have_runbooks_in_operations_doc() -> None:
    objs = render()
    (rule,) = find(objs, "PrometheusRule")
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    for needed in (
        "CandleflowCandlesStale",
        "CandleflowConsumerLag",
        "CandleflowDLQRate",
        "CandleflowCheckpointFailures",
        "CandleflowExplainerBudget",
    ):
        assert needed in alerts
    doc = (ROOT / "docs" / "operations.md").read_text().lower()
    for name, r in alerts.items():
        anchor = r["annotations"]["runbook"].split("#", 1)[1]
        assert f"### {name.lower()}" in doc, f"docs/operations.md has no section for {name}"
        assert anchor == name.lower()
    assert "5 * 0.8" not in str(alerts)  # thresholds are computed, not pasted templates
    budget = alerts["CandleflowExplainerBudget"]["expr"]
    assert budget.strip().endswith("> 4"), budget
    (dash,) = find(objs, "ConfigMap", "candleflow-dashboard")
    import json

    panels = json.loads(dash["data"]["candleflow.json"])["panels"]
    assert len(panels) >= 8 and all(p["targets"][0]["expr"] for p in panels)
