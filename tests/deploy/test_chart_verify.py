"""The reconciler's Deployment (candleflow verify live): one replica, its settings from values,
probes on /healthz, a metrics port Prometheus may scrape, and its alert's runbook."""

from __future__ import annotations

from tests.deploy.tools import find, render


def _env(container: dict) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container["env"]}


def test_verify_deployment() -> None:
    objs = render(
        None,
        "--set",
        "verify.markets={binance:BTC-USD-PERP,kraken:BTC-USD}",
        "--set",
        "verify.baseUrls.kraken=https://proxy.example/kraken",
    )
    (dep,) = find(objs, "Deployment", "candleflow-verify")
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"]["type"] == "Recreate"
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    assert c["args"] == ["verify", "live"]
    env = _env(c)
    assert env["CANDLEFLOW_VERIFY_MARKETS"] == "binance:BTC-USD-PERP,kraken:BTC-USD"
    assert env["CANDLEFLOW_VERIFY_KRAKEN_URL"] == "https://proxy.example/kraken"
    assert "CANDLEFLOW_VERIFY_COINBASE_URL" not in env  # empty: the public API
    assert env["CANDLEFLOW_VERIFY_SETTLE_SECONDS"] == "420"
    assert c["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    (port,) = c["ports"]
    assert port["name"] == "metrics" and port["containerPort"] == 9466
    (np,) = find(objs, "NetworkPolicy", "candleflow-metrics")
    assert {"port": 9466, "protocol": "TCP"} in np["spec"]["ingress"][0]["ports"]
    (rule,) = find(objs, "PrometheusRule")
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    mismatch = alerts["CandleflowReconcileMismatch"]
    assert "candleflow_reconcile_mismatches_total" in mismatch["expr"]
    assert mismatch["annotations"]["runbook"] == "docs/operations.md#candleflowreconcilemismatch"


def test_verify_can_be_disabled() -> None:
    assert not find(
        render(None, "--set", "verify.enabled=false"), "Deployment", "candleflow-verify"
    )
