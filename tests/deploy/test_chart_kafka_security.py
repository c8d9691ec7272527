"""Kafka security in the chart: protocol, mechanism and user in the ConfigMap, the password
or OAuth client secret only as secretKeyRef env, in every pod that talks to Kafka (ingest,
serving, explainer, the Flink jobs' job and task managers), TLS files from a mounted Secret;
nothing of it in the default render."""

from __future__ import annotations

import base64
import re

import pytest
import yaml

from tests.deploy.test_chart import _containers
from tests.deploy.tools import find, helm_template, kubeconform_cmd, render, run

SECRET = "kafka-" + "pw" * 6  # built at runtime: not a literal secret for scanners
SASL_SSL = ("--set", "config.kafkaSecurityProtocol=SASL_SSL")
PLAIN_EXISTING = (
    *SASL_SSL,
    "--set",
    "config.kafkaSasl.mechanism=SCRAM-SHA-512",
    "--set",
    "config.kafkaSasl.username=svc-candleflow",
    "--set",
    "config.kafkaSasl.passwordSecret.name=kafka-creds",
    "--set",
    "config.kafkaSasl.passwordSecret.key=pw",
)
PLAIN_VALUE = (
    *SASL_SSL,
    "--set",
    "config.kafkaSasl.mechanism=PLAIN",
    "--set",
    "config.kafkaSasl.username=svc-candleflow",
    "--set",
    f"config.kafkaSasl.password={SECRET}",
)
OAUTH = (
    *SASL_SSL,
    "--set",
    "config.kafkaSasl.mechanism=OAUTHBEARER",
    "--set",
    "config.kafkaSasl.oauthbearer.tokenEndpointUrl=https://idp.example/oauth2/token",
    "--set",
    "config.kafkaSasl.oauthbearer.clientId=candleflow",
    "--set",
    "config.kafkaSasl.oauthbearer.scope=kafka",
)
OAUTH_EXISTING = (*OAUTH, "--set", "config.kafkaSasl.oauthbearer.clientSecretSecret.name=idp")
OAUTH_VALUE = (*OAUTH, "--set", f"config.kafkaSasl.oauthbearer.clientSecret={SECRET}")
TLS = (
    "--set",
    "config.kafkaSecurityProtocol=SSL",
    "--set",
    "config.kafkaTls.secretName=kafka-tls-files",
    "--set",
    "config.kafkaTls.caFile=ca.crt",
    "--set",
    "config.kafkaTls.clientPemFile=client.pem",
)

# (values, env name, secretKeyRef, chart-created Secret?)
CASES = {
    "scram-existing-secret": (
        PLAIN_EXISTING,
        "CANDLEFLOW_KAFKA_SASL_PASSWORD",
        {"name": "kafka-creds", "key": "pw"},
        False,
    ),
    "plain-chart-secret": (
        PLAIN_VALUE,
        "CANDLEFLOW_KAFKA_SASL_PASSWORD",
        {"name": "candleflow-kafka", "key": "password"},
        True,
    ),
    "oauth-existing-secret": (
        OAUTH_EXISTING,
        "CANDLEFLOW_KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET",
        {"name": "idp", "key": "client-secret"},
        False,
    ),
    "oauth-chart-secret": (
        OAUTH_VALUE,
        "CANDLEFLOW_KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET",
        {"name": "candleflow-kafka", "key": "oauthbearer-client-secret"},
        True,
    ),
}


def _kafka_pods(objs: list[dict]) -> list[tuple[str, dict]]:
    """Containers of every workload that talks to Kafka (not the helm test pod)."""
    out = [(n, c) for n, c in _containers(objs) if not n.endswith("test-grpc-health")]
    names = {n for n, _ in out}
    assert {
        "candleflow-ingest-binance",
        "candleflow-ingest-coinbase",
        "candleflow-serving",
        "candleflow-explainer",
        "candleflow-candles",
        "candleflow-anomalies",
    } <= names, names
    return out


def _configmap(objs: list[dict]) -> dict:
    return find(objs, "ConfigMap", "candleflow-config")[0]["data"]


def test_default_render_has_no_kafka_credentials() -> None:
    objs = render()
    assert _configmap(objs)["CANDLEFLOW_KAFKA_SECURITY_PROTOCOL"] == "PLAINTEXT"
    assert [k for k in _configmap(objs) if k.startswith("CANDLEFLOW_KAFKA_")] == [
        "CANDLEFLOW_KAFKA_BOOTSTRAP",
        "CANDLEFLOW_KAFKA_SECURITY_PROTOCOL",
    ]
    assert not find(objs, "Secret")
    for name, c in _kafka_pods(objs):
        assert not [e for e in c["env"] if e["name"].startswith("CANDLEFLOW_KAFKA_")], name
        assert "volumeMounts" not in c, name


@pytest.mark.parametrize("case", list(CASES))
def test_sasl_secret_reaches_every_kafka_pod_as_secret_ref(case: str) -> None:
    values, env_name, ref, chart_secret = CASES[case]
    manifest = helm_template(None, *values).stdout
    objs = [d for d in yaml.safe_load_all(manifest) if d]
    for name, c in _kafka_pods(objs):
        (env,) = [e for e in c["env"] if e["name"] == env_name]
        assert env == {"name": env_name, "valueFrom": {"secretKeyRef": ref}}, (name, env)
    data = _configmap(objs)
    assert data["CANDLEFLOW_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    if "OAUTHBEARER" in " ".join(values):
        assert data["CANDLEFLOW_KAFKA_SASL_MECHANISM"] == "OAUTHBEARER"
        assert data["CANDLEFLOW_KAFKA_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL"].startswith("https://")
        assert data["CANDLEFLOW_KAFKA_SASL_OAUTHBEARER_CLIENT_ID"] == "candleflow"
    else:
        assert data["CANDLEFLOW_KAFKA_SASL_USERNAME"] == "svc-candleflow"
    # No secret in any ConfigMap, nor anywhere in clear text; only the chart's own Secret
    # (when the value was passed explicitly) holds it, base64-encoded.
    assert SECRET not in manifest
    for cm in find(objs, "ConfigMap"):
        assert not any(re.search(r"PASSWORD$|CLIENT_SECRET$", k) for k in cm["data"]), cm
    secrets = find(objs, "Secret")
    if chart_secret:
        (secret,) = secrets
        assert secret["metadata"]["name"] == ref["name"]
        assert secret["data"] == {ref["key"]: base64.b64encode(SECRET.encode()).decode()}
    else:
        assert not secrets
    proc = run([*kubeconform_cmd(), "-"], input=manifest, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_flink_job_and_task_managers_get_the_secret() -> None:
    """The FlinkDeployment's top-level podTemplate is the base of both the JobManager and
    the TaskManager pods (the operator merges it into each), so both get the env."""
    objs = render(None, *PLAIN_EXISTING)
    for fd in find(objs, "FlinkDeployment"):
        spec = fd["spec"]
        assert "podTemplate" not in spec["jobManager"] and "podTemplate" not in spec["taskManager"]
        (main,) = spec["podTemplate"]["spec"]["containers"]
        assert main["name"] == "flink-main-container"
        names = [e["name"] for e in main["env"]]
        assert "CANDLEFLOW_KAFKA_SASL_PASSWORD" in names
        assert main["envFrom"] == [{"configMapRef": {"name": "candleflow-config"}}]


def test_tls_files_are_mounted_from_a_secret() -> None:
    manifest = helm_template(None, *TLS).stdout
    objs = [d for d in yaml.safe_load_all(manifest) if d]
    data = _configmap(objs)
    assert data["CANDLEFLOW_KAFKA_SSL_CA_LOCATION"] == "/etc/candleflow/kafka-tls/ca.crt"
    assert data["CANDLEFLOW_KAFKA_SSL_CERTIFICATE_LOCATION"] == (
        "/etc/candleflow/kafka-tls/client.pem"
    )
    assert (
        data["CANDLEFLOW_KAFKA_SSL_KEY_LOCATION"]
        == data["CANDLEFLOW_KAFKA_SSL_CERTIFICATE_LOCATION"]
    )
    for name, c in _kafka_pods(objs):
        assert c["volumeMounts"] == [
            {"name": "kafka-tls", "mountPath": "/etc/candleflow/kafka-tls", "readOnly": True}
        ], name
    pods = [d["spec"]["template"]["spec"] for d in find(objs, "Deployment")]
    pods += [fd["spec"]["podTemplate"]["spec"] for fd in find(objs, "FlinkDeployment")]
    for pod in pods:
        assert pod["volumes"] == [
            {"name": "kafka-tls", "secret": {"secretName": "kafka-tls-files"}}
        ]
    proc = run([*kubeconform_cmd(), "-"], input=manifest, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (SASL_SSL, "config.kafkaSasl.mechanism is required"),
        (
            (*SASL_SSL, "--set", "config.kafkaSasl.mechanism=PLAIN"),
            "config.kafkaSasl.username is required",
        ),
        (
            (
                *SASL_SSL,
                "--set",
                "config.kafkaSasl.mechanism=PLAIN",
                "--set",
                "config.kafkaSasl.username=u",
            ),
            "needs config.kafkaSasl.passwordSecret.name",
        ),
        (
            (*PLAIN_EXISTING, "--set", f"config.kafkaSasl.password={SECRET}"),
            "not both",
        ),
        (OAUTH[:-6] + OAUTH[-4:], "tokenEndpointUrl is required"),
        ((*SASL_SSL, "--set", "config.kafkaSasl.mechanism=GSSAPI"), "/config/kafkaSasl/mechanism"),
    ],
    ids=["no-mechanism", "no-user", "no-password", "both", "oauth-no-endpoint", "gssapi"],
)
def test_incomplete_kafka_security_fails_the_render(values: tuple, message: str) -> None:
    proc = helm_template(None, *values, check=False)
    assert proc.returncode != 0, "incomplete Kafka security was rendered"
    assert message in proc.stderr, proc.stderr
    assert SECRET not in proc.stderr


def _secret_checksums(objs: list[dict]) -> dict[str, str | None]:
    return {
        d["metadata"]["name"]: d["spec"]["template"]["metadata"]
        .get("annotations", {})
        .get("checksum/kafka-secret")
        for d in find(objs, "Deployment")
    }


def test_a_new_chart_made_password_rolls_the_pods_that_read_it() -> None:
    """The Deployments' pods carry a checksum of the chart-made Kafka Secret: a changed
    password changes their template (a rollout); an existing Secret or none adds nothing."""
    before = _secret_checksums(render(None, *PLAIN_VALUE))
    assert before and all(before.values()), before
    changed = tuple(
        a.replace(SECRET, SECRET + "-rotated") if a.startswith("config.kafkaSasl.password=") else a
        for a in PLAIN_VALUE
    )
    after = _secret_checksums(render(None, *changed))
    assert all(after[name] != before[name] for name in before), (before, after)
    for values in ((), PLAIN_EXISTING):
        assert set(_secret_checksums(render(None, *values)).values()) == {None}
