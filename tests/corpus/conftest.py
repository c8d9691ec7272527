"""The bad-input corpus: cases are data (cases/*.yaml); this prints how many ran."""

from __future__ import annotations

from typing import Any

import pytest

from tests.corpus.cases_io import ALL_CASE_IDS

# The real server on test topics, for the grpcurl cases (fixtures of tests/serving).
from tests.serving.conftest import candle_topics, kafka_stack, server_factory  # noqa: F401

_ran: set[str] = set()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    yield
    if item.nodeid.startswith("tests/corpus/") or "/corpus/" in item.nodeid:
        _ran.add(item.nodeid)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _ran:
        terminalreporter.write_line(
            f"bad-input corpus: {len(_ran)} cases run of {len(ALL_CASE_IDS)} defined "
            "(tests/corpus/cases/*.yaml)"
        )
