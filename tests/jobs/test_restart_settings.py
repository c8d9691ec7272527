"""The jobs' bounded restart strategy (jobs/flink_env.py RestartSettings): what Flink gets,
and a bad value naming its variable. The real job failing for good on a bad trades.v1
record is tests/corpus/test_trades_contract.py."""

from __future__ import annotations

import pytest

from candleflow.env_settings import SettingsError
from jobs.flink_env import RestartSettings


def test_defaults_are_a_failure_rate_strategy() -> None:
    assert RestartSettings().flink_options() == {
        "restart-strategy.type": "failure-rate",
        "restart-strategy.failure-rate.max-failures-per-interval": "10",
        "restart-strategy.failure-rate.failure-rate-interval": "300 s",
        "restart-strategy.failure-rate.delay": "10 s",
    }


def test_env_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANDLEFLOW_RESTART_MAX_FAILURES", "2")
    monkeypatch.setenv("CANDLEFLOW_RESTART_DELAY_S", "0.5")
    opts = RestartSettings().flink_options()
    assert opts["restart-strategy.failure-rate.max-failures-per-interval"] == "2"
    assert opts["restart-strategy.failure-rate.delay"] == "0.5 s"


@pytest.mark.parametrize(
    ("var", "value"),
    [("CANDLEFLOW_RESTART_MAX_FAILURES", "0"), ("CANDLEFLOW_RESTART_INTERVAL_S", "-1")],
)
def test_bad_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError, match=var):
        RestartSettings()


def test_chart_has_the_same_defaults() -> None:
    from pathlib import Path

    import yaml

    values = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "helm/candleflow/values.yaml").read_text()
    )
    conf = values["flink"]["configuration"]
    for key, value in RestartSettings().flink_options().items():
        assert str(conf[key]) == value, key
