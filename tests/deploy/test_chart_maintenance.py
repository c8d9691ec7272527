"""The maintenance CronJob: Trino's Iceberg procedures on a schedule, never two at once,
its retention from values, secrets only by reference."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lakehouse.settings import MaintenanceSettings
from tests.deploy.tools import find, helm_template, render


def _cronjob(objs: list[dict]) -> dict:
    (cron,) = find(objs, "CronJob")
    return cron


def _env(cron: dict) -> dict[str, dict]:
    (container,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e for e in container["env"]}


def test_cronjob_runs_lakehouse_maintain_one_at_a_time() -> None:
    cron = _cronjob(render())
    spec = cron["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert container["args"][:2] == ["lakehouse", "maintain"]
    assert container["image"].startswith("candleflow/services:")


def test_values_reach_the_maintenance_settings(tmp_path: Path) -> None:
    """The env the chart renders parses into the settings `candleflow lakehouse maintain`
    reads, with the values' retention, keep-last and tables."""
    values = tmp_path / "v.yaml"
    values.write_text(
        "maintenance:\n  retention: 1d\n  keepLast: 250\n  orphanRetention: 2d\n"
        "  tables: [silver.candles]\n  trinoPasswordSecret: {name: trino-maint, key: pw}\n"
    )
    env = _env(_cronjob(render(values)))
    plain = {k: v["value"] for k, v in env.items() if "value" in v}
    settings = MaintenanceSettings(
        **{
            k.removeprefix("CANDLEFLOW_MAINTAIN_").lower(): (
                json.loads(v) if k.endswith("TABLES") else v
            )
            for k, v in plain.items()
            if k.startswith("CANDLEFLOW_MAINTAIN_")
        }
    )
    assert (settings.retention, settings.keep_last, settings.orphan_retention) == ("1d", 250, "2d")
    assert settings.tables == ["silver.candles"]
    assert plain["CANDLEFLOW_SERVING_TRINO_URL"] == "http://trino.trino.svc:8080"
    secret = env["CANDLEFLOW_SERVING_TRINO_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert secret == {"name": "trino-maint", "key": "pw"}


def test_disabled_renders_no_cronjob(tmp_path: Path) -> None:
    values = tmp_path / "v.yaml"
    values.write_text("maintenance:\n  enabled: false\n")
    assert find(render(values), "CronJob") == []


@pytest.mark.parametrize(
    ("line", "path"),
    [
        ("  retention: 3 days\n", "/maintenance/retention"),
        ("  keepLast: 0\n", "/maintenance/keepLast"),
        ("  tables: [candles]\n", "/maintenance/tables/0"),
    ],
)
def test_schema_rejects_bad_maintenance_values(tmp_path: Path, line: str, path: str) -> None:
    values = tmp_path / "v.yaml"
    values.write_text("maintenance:\n" + line)
    proc = helm_template(values, check=False)
    assert proc.returncode != 0 and path in proc.stderr, proc.stderr
