"""The check tests run on the shared stack and the session's Trino (tests/serving fixtures)."""

from tests.serving.conftest import kafka_stack, trino_server  # noqa: F401 (fixtures)
