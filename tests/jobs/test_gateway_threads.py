"""PyFlink calls that land on another Java thread of the py4j gateway.

PyFlink's py4j client keeps a pool of connections, one Java thread each. The calls of one
Python thread move to another Java thread whenever another Python thread (a py4j
garbage-collection finaliser, a background loop like the maintenance test's) used the pool at
the same moment. Both tests force that: the next calls get a brand-new connection, a Java
thread that has done nothing yet. Each failed `make test` once before its fix (2026-12-03)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyflink.java_gateway import get_gateway

from adapters.catalog import flink_catalog_ddl
from candleflow.config import CandleSettings, StackSettings
from jobs.candle_tables import FileSink, FileSource, Sinks
from jobs.candles import PTF_UID, CandleJobConfig, build
from jobs.flink_env import make_table_env
from jobs.operator_uids import translate

pytestmark = pytest.mark.flink


def _next_calls_on_a_new_gateway_thread() -> None:
    client = get_gateway()._gateway_client
    client.deque.append(client._create_connection())  # popped first (LIFO) by the next call


def test_translation_on_a_gateway_thread_that_never_planned(tmp_path: Path) -> None:
    """Calcite's metadata provider is a thread-local set on the thread that created the
    TableEnvironment: translating on another one failed with "NullPointerException:
    metadataHandlerProvider" (tests/lakehouse/test_concurrent.py)."""
    (tmp_path / "trades.csv").touch()
    config = CandleJobConfig(
        source=FileSource(tmp_path / "trades.csv"),
        sinks=Sinks(candles=[FileSink(tmp_path / "candles")], late=[]),
        candles=CandleSettings(intervals="1m,5m"),
    )
    t_env = make_table_env(parallelism=1)
    statements = build(t_env, config)
    _next_calls_on_a_new_gateway_thread()
    transformations, uids = translate(t_env, statements)
    assert PTF_UID in uids and transformations.size() == 1


def test_iceberg_catalogs_of_new_environments_on_new_gateway_threads(tmp_path: Path) -> None:
    """java.sql.DriverManager gives a driver only to a caller whose class loader resolves that
    very class: with the SQLite driver in every environment's `pipeline.jars`, a new
    environment's catalog found "No suitable driver" (tests/verify/test_official_kline.py)."""
    stack = StackSettings(data_dir=tmp_path)
    for n in range(3):
        _next_calls_on_a_new_gateway_thread()
        t_env = make_table_env(parallelism=1, connectors=True, stack=stack)
        t_env.execute_sql(flink_catalog_ddl(stack, name=f"lake{n}")).wait()
        t_env.execute_sql(f"CREATE DATABASE IF NOT EXISTS lake{n}.ns{n}").wait()
        with t_env.execute_sql(f"SHOW DATABASES IN lake{n}").collect() as rows:
            assert f"ns{n}" in {row[0] for row in rows}
