"""GetAnomaly's history read returns an anomaly's latest status: a RETRACTED anomaly is
never reported ACTIVE, whichever commit or position in a file its states were written at,
by the embedded reader (PyIceberg + DuckDB over the data files) and by Trino alike."""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

from candleflow.domain import Anomaly
from serving.history import Tables
from serving.history_backend import make_history

pytestmark = pytest.mark.integration

BASE = Anomaly(
    anomaly_id="a",
    rule="VOLUME_SPIKE",
    severity="MEDIUM",
    exchange="binance",
    symbol="BTC-USDT",
    interval="1m",
    window_start_us=1_735_689_600_000_000,
    window_end_us=1_735_689_660_000_000,
    value=7.5,
    threshold=6.0,
    details={"z": "7.5"},
)


def state(anomaly_id: str, status: str, revision: int = 0) -> Anomaly:
    return dataclasses.replace(BASE, anomaly_id=anomaly_id, status=status, candle_revision=revision)


def arrow(anomalies: list[Anomaly]) -> pa.Table:
    """Rows shaped as gold.anomalies (jobs/anomaly_tables.ANOMALY_COLUMNS)."""
    ts = pa.timestamp("us")
    fields = [
        ("anomaly_id", pa.string(), lambda a: a.anomaly_id),
        ("rule", pa.string(), lambda a: a.rule),
        ("severity", pa.string(), lambda a: a.severity),
        ("exchange", pa.string(), lambda a: a.exchange),
        ("symbol", pa.string(), lambda a: a.symbol),
        ("interval", pa.string(), lambda a: a.interval),
        ("window_start", ts, lambda a: a.window_start_us),
        ("window_end", ts, lambda a: a.window_end_us),
        ("value", pa.float64(), lambda a: a.value),
        ("threshold", pa.float64(), lambda a: a.threshold),
        ("status", pa.string(), lambda a: a.status),
        ("candle_revision", pa.int32(), lambda a: a.candle_revision),
        ("details", pa.map_(pa.string(), pa.string()), lambda a: list(a.details.items())),
    ]
    return pa.Table.from_arrays(
        [pa.array([get(a) for a in anomalies], typ) for _, typ, get in fields],
        schema=pa.schema([pa.field(n, t, nullable=False) for n, t, _ in fields]),
    )


@pytest.fixture
def anomaly_tables(kafka_stack: Any) -> Iterator[tuple[Any, Tables]]:
    from adapters.catalog import catalog

    cat = catalog(kafka_stack.settings)
    ns = f"test_anomalies_{uuid.uuid4().hex[:8]}"
    cat.create_namespace(ns)
    tables = Tables(candles=f"{ns}.c", anomalies=f"{ns}.anomalies", explanations=f"{ns}.e")
    table = cat.create_table(
        tables.anomalies, schema=arrow([BASE]).schema, properties={"format-version": "2"}
    )
    yield table, tables
    with contextlib.suppress(Exception):
        cat.drop_table(tables.anomalies)
        cat.drop_namespace(ns)


def test_duckdb_returns_the_latest_status(kafka_stack: Any, anomaly_tables: Any) -> None:
    """States of one id over several commits (the later commit wins) and within one
    commit's file (the later row wins): the current status, whatever the revision says."""
    table, tables = anomaly_tables
    table.append(arrow([state("a", "ACTIVE"), state("b", "ACTIVE"), state("c", "ACTIVE", 1)]))
    table.append(
        arrow(
            [
                state("a", "RETRACTED"),  # same revision as its ACTIVE record
                state("c", "RETRACTED", 1),
                state("c", "ACTIVE", 1),  # re-activated in the same checkpoint
                state("d", "ACTIVE", 2),
                state("d", "RETRACTED", 0),  # a lower revision, written later
            ]
        )
    )
    table.append(arrow([state("e", "ACTIVE")]))
    history = make_history("duckdb", kafka_stack.settings, tables)
    got = {i: history.get_anomaly(i)[0] for i in "abcde"}
    assert {i: a.status for i, a in got.items() if a} == {
        "a": "RETRACTED",
        "b": "ACTIVE",
        "c": "ACTIVE",
        "d": "RETRACTED",
        "e": "ACTIVE",
    }
    assert got["d"] == state("d", "RETRACTED", 0)
    assert history.get_anomaly("zzz") == (None, None)


@pytest.mark.trino
def test_trino_and_duckdb_agree_through_row_level_updates(
    kafka_stack: Any, anomaly_tables: Any, trino_server: Any
) -> None:
    """Trino's own UPDATEs (position deletes + a new data file, as an upsert writes) flip an
    anomaly ACTIVE -> RETRACTED -> ACTIVE -> RETRACTED; after each, both readers agree."""
    table, tables = anomaly_tables
    table.append(arrow([state("a", "ACTIVE"), state("b", "ACTIVE")]))
    trino_h = make_history("trino", trino_server, tables)
    duck_h = make_history("duckdb", kafka_stack.settings, tables)
    ns, name = tables.anomalies.split(".")
    for status in ("RETRACTED", "ACTIVE", "RETRACTED"):
        trino_h.query(
            f'UPDATE iceberg."{ns}"."{name}" SET status = ? WHERE anomaly_id = ?', [status, "a"]
        )
        for h in (trino_h, duck_h):
            a, _ = h.get_anomaly("a")
            b, _ = h.get_anomaly("b")
            assert a == state("a", status), h
            assert b == state("b", "ACTIVE"), h
