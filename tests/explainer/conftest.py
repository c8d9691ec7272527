from __future__ import annotations

import pytest

from devstack.fakes.anthropic_server import FakeAnthropic


@pytest.fixture
def fake_anthropic():
    with FakeAnthropic() as server:
        yield server
