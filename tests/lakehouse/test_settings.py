"""Maintenance settings and statements (no stack): bad values name their variable."""

from __future__ import annotations

from datetime import timedelta

import pytest
from typer.testing import CliRunner

from candleflow.cli import app
from candleflow.env_settings import SettingsError
from lakehouse.maintain import STEPS, step_sql
from lakehouse.settings import MaintenanceSettings, duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500ms", timedelta(milliseconds=500)),
        ("30s", timedelta(seconds=30)),
        ("1.5h", timedelta(minutes=90)),
        ("7d", timedelta(days=7)),
    ],
)
def test_durations_in_trino_units(text: str, expected: timedelta) -> None:
    assert duration(text) == expected


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("CANDLEFLOW_MAINTAIN_RETENTION", "3 days"),
        ("CANDLEFLOW_MAINTAIN_KEEP_LAST", "0"),
        ("CANDLEFLOW_MAINTAIN_SMALL_FILE", "64 megabytes"),
        ("CANDLEFLOW_MAINTAIN_TABLES", '["candles"]'),
        ("CANDLEFLOW_MAINTAIN_ORPHAN_RETENTION", "0s"),
    ],
)
def test_bad_values_name_their_variable(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError, match=var):
        MaintenanceSettings()


def test_statements_carry_the_configured_retention() -> None:
    s = MaintenanceSettings(retention="1d", keep_last=42, orphan_retention="2d", small_file="8MB")
    sql = {step: step_sql("silver.candles", step, s) for step in STEPS}
    target = 'ALTER TABLE iceberg."silver"."candles" EXECUTE '
    assert all(v.startswith(target) for v in sql.values())
    assert "file_size_threshold => '8MB'" in sql["optimize"]
    assert "retention_threshold => '1d')" in sql["expire_snapshots"]
    widened = step_sql("silver.candles", "expire_snapshots", s, "90000000ms")
    assert "retention_threshold => '90000000ms')" in widened
    assert "retention_threshold => '2d'" in sql["remove_orphan_files"]
    with pytest.raises(ValueError, match="unknown maintenance step"):
        step_sql("silver.candles", "vacuum", s)


def test_cli_help_teaches_and_bad_options_exit_2() -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["lakehouse", "maintain", "--help"], env={"COLUMNS": "120"}).output
    for word in ("optimize", "expire_snapshots", "remove_orphan_files", "--keep-last", "7d"):
        assert word in out
    bad = runner.invoke(app, ["lakehouse", "maintain", "--retention", "forever"])
    assert bad.exit_code == 2 and "CANDLEFLOW_MAINTAIN_RETENTION" in bad.output
    bad = runner.invoke(app, ["lakehouse", "maintain", "--step", "vacuum"])
    assert bad.exit_code == 2 and "unknown step" in bad.output


def test_unreachable_trino_is_a_clear_error() -> None:
    runner = CliRunner()
    res = runner.invoke(
        app,
        ["lakehouse", "status", "silver.candles"],
        env={"CANDLEFLOW_SERVING_TRINO_URL": "http://127.0.0.1:9"},
    )
    assert res.exit_code == 1
    assert "cannot reach Trino at http://127.0.0.1:9" in res.output
