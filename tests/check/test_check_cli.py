"""`candleflow check` argument and environment errors: said plainly, exit 2, no traceback.
No stack needed (an empty local catalog in a temporary data dir)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from candleflow.cli import app


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    return {"CANDLEFLOW_DATA_DIR": str(tmp_path), "CANDLEFLOW_CHECK_VIA": "embedded"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give the range: --start (and --end) or --last"),
        (["--start", "2026-05-08", "--last", "1h"], "--start or --last, not both"),
        (["--last", "2x"], "'2x': a duration such as 90s, 15m, 2h or 1d"),
        (["--start", "yesterday"], "'yesterday': use ISO-8601"),
        (["--last", "1h", "--intervals", "1q"], "invalid interval '1q'"),
        (["--start", "2026-05-08T01:00", "--end", "2026-05-08T00:00"], "the range is empty"),
        (["--every", "5", "--start", "2026-05-08"], "give --last, not --start"),
    ],
)
def test_bad_arguments(env, args, message) -> None:
    res = CliRunner().invoke(app, ["check", "--no-revisions", *args], env=env)
    assert res.exit_code == 2, res.output
    assert message in " ".join(res.output.replace("│", " ").split()), res.output


def test_bad_settings_name_their_variable(env) -> None:
    """(`candleflow`'s main turns this SettingsError into one "error: ..." line, exit 2.)"""
    env = {**env, "CANDLEFLOW_CHECK_GAP_FREE_EXCHANGES": "binance,bitstamp"}
    res = CliRunner().invoke(app, ["check", "--last", "1h"], env=env)
    assert res.exit_code != 0
    assert "CANDLEFLOW_CHECK_GAP_FREE_EXCHANGES" in str(res.exception), res.exception
    assert "bitstamp" in str(res.exception)


def test_missing_table_is_an_error_not_a_traceback(env) -> None:
    res = CliRunner().invoke(app, ["check", "--no-revisions", "--last", "1h"], env=env)
    assert res.exit_code == 2, res.output
    assert "error: LakeError: table silver.candles does not exist" in res.output


def test_help_teaches_the_invariants() -> None:
    res = CliRunner().invoke(app, ["check", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    for word in ("ohlc", "vwap", "trade_count", "missing_window", "volume", "revision", "--via"):
        assert word in res.output
