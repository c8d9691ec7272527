"""Session fixtures on the real local stack (see devstack/testing.py for the sharing rules).

- `stack`: Kafka + registry + Iceberg catalog on the test ports (no Flink cluster).
- `flink_cluster`: additionally the Flink session cluster, started on demand.
- `unique_topic(name, partitions)`, `unique_namespace`: isolated topics and catalog namespaces.
- `sasl_stack`: the stack, whose broker also has its SASL_PLAINTEXT listener (PLAIN and
  SCRAM-SHA-256 users, Stack.sasl_security).
- `sasl_ssl_stack`: the same users over its SASL_SSL listener (the stack's own CA and
  server certificate, Stack.sasl_ssl_security / Stack.tls_files).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
from hypothesis import settings

from adapters import catalog, topics
from devstack.stack import Stack
from devstack.testing import acquire_stack, release_stack, unique_name

# Property tests assert results, not timings: Hypothesis' default 200 ms deadline per example
# only fails them when the machine is loaded (CI's two cores run Kafka, Flink and Trino
# beside pytest) or when an example is the first to import a heavy module.
settings.register_profile("candleflow", deadline=None)
settings.load_profile("candleflow")


@pytest.fixture(autouse=True)
def _pyflink_gateway_launchable() -> None:
    """An in-process (loopback) PyFlink job runs its Python workers inside this process and
    leaves PYFLINK_GATEWAY_DISABLED=true in os.environ; a later test's subprocess would
    inherit it and refuse to start its own Flink gateway."""
    os.environ.pop("PYFLINK_GATEWAY_DISABLED", None)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    handle, started = acquire_stack(flink=False)
    yield handle
    release_stack(handle, started)


@pytest.fixture(scope="session")
def flink_cluster(stack: Stack) -> Iterator[Stack]:
    handle, started = acquire_stack(flink=True)
    yield handle
    release_stack(handle, started, services="flink")


@pytest.fixture
def sasl_stack(stack: Stack) -> Stack:
    if not stack.sasl_listener_configured():
        pytest.skip(
            "the running test stack's broker was started before it had a SASL listener: "
            f"stop it (CANDLEFLOW_DATA_DIR={stack.settings.data_dir} candleflow stack down) "
            "and the next session starts it with the listener"
        )
    return stack


@pytest.fixture
def sasl_ssl_stack(sasl_stack: Stack) -> Stack:
    if not sasl_stack.tls_listener_configured():
        pytest.skip(
            "the running test stack's broker was started before it had a SASL_SSL listener: "
            f"stop it (CANDLEFLOW_DATA_DIR={sasl_stack.settings.data_dir} candleflow stack down) "
            "and the next session starts it with the listener and its TLS material"
        )
    return sasl_stack


@pytest.fixture
def unique_topic(stack: Stack) -> Iterator[Callable[..., str]]:
    """Factory: unique_topic("trades", partitions=3, cleanup_policy="delete") -> topic name."""
    client = topics.admin(stack.settings.bootstrap_servers)
    made: list[str] = []

    def make(
        name: str = "t", partitions: int = 1, cleanup_policy: str = "delete", **config: str
    ) -> str:
        spec = topics.TopicSpec(
            unique_name(f"test-{name}"),
            partitions=partitions,
            cleanup_policy=cleanup_policy,
            extra=dict(config),
        )
        topics.ensure_topics(client, [spec])
        made.append(spec.name)
        return spec.name

    yield make
    topics.delete_topics(client, made)


@pytest.fixture
def unique_namespace(stack: Stack) -> Iterator[str]:
    """A fresh Iceberg namespace in the shared catalog, dropped with its tables afterwards."""
    cat = catalog.catalog(stack.settings)
    name = unique_name("test", sep="_")
    cat.create_namespace(name)
    yield name
    for ident in cat.list_tables(name):
        cat.purge_table(ident)
    cat.drop_namespace(name)
