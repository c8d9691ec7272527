"""Every PrometheusRule alert of the chart, evaluated with `promtool test rules` (Prometheus'
own rule engine, scripts/setup_promtool.sh): each fires on its firing cases, with the labels
and annotations it must carry, and stays silent on its quiet cases (tests/deploy/
alert_cases.py). The rules are taken from the rendered chart, so they cannot drift from what
is deployed. Cost: one helm render and two promtool runs, ~1 s.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.deploy.alert_cases import Alert, Case, cases
from tests.deploy.tools import CHART, find, render, run, tool


def _rules() -> dict:
    (rule,) = find(render(), "PrometheusRule")
    return rule["spec"]


def _alerts(spec: dict) -> dict[str, dict]:
    return {r["alert"]: r for g in spec["groups"] for r in g["rules"] if "alert" in r}


def _cases() -> list[Alert]:
    return cases(yaml.safe_load((CHART / "values.yaml").read_text()))


def _expected(rule: dict, case: Case) -> list[dict]:
    """promtool's exp_alerts: the instance labels + the rule's labels; the annotations with
    Prometheus templates from the case, the others as rendered."""
    annotations = {k: case.annotations.get(k, v) for k, v in rule.get("annotations", {}).items()}
    for k, v in annotations.items():
        assert "{{" not in v, f"{rule['alert']}: give the expanded annotation {k!r} in the case"
    return [
        {"exp_labels": {**labels, **rule.get("labels", {})}, "exp_annotations": annotations}
        for labels in case.alerts
    ]


def _test(rule: dict, case: Case, fires: bool) -> dict:
    return {
        "interval": "1m",
        "input_series": [{"series": s, "values": v} for s, v in case.series],
        "alert_rule_test": [
            {
                "eval_time": case.at,
                "alertname": rule["alert"],
                "exp_alerts": _expected(rule, case) if fires else [],
            }
        ],
    }


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    alerts = _alerts(_rules())
    given = {a.name: a for a in _cases()}
    assert set(alerts) == set(given), (
        f"alerts without cases: {sorted(set(alerts) - set(given))}; "
        f"cases without an alert: {sorted(set(given) - set(alerts))}"
    )
    for a in given.values():
        assert a.fires and a.quiet, a.name
        assert all(c.alerts for c in a.fires), f"{a.name}: a firing case names its alerts"


def test_rules_are_valid_for_promtool(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(_rules()))
    proc = run([tool("promtool"), "check", "rules", rules], check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(rf"SUCCESS: {len(_alerts(_rules()))} rules found", proc.stdout), proc.stdout


@pytest.mark.parametrize("alert", _cases(), ids=lambda a: a.name)
def test_alert_fires_and_stays_quiet(alert: Alert, tmp_path: Path) -> None:
    promtool = tool("promtool")
    spec = _rules()
    rule = _alerts(spec)[alert.name]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(spec))
    tests = [_test(rule, c, True) for c in alert.fires] + [
        _test(rule, c, False) for c in alert.quiet
    ]
    (tmp_path / "test.yaml").write_text(
        yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests})
    )
    proc = run([promtool, "test", "rules", "test.yaml"], check=False, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout, proc.stdout
