"""Contracts: every vN+1 is BACKWARD compatible with vN (structurally, by Avro resolution and
by the registry), the checks can fail, and the stack registers every contract at start."""

from __future__ import annotations

import copy
import dataclasses
import io
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import fastavro
import pytest
from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry.error import SchemaRegistryError

from adapters import avro
from candleflow.contracts import CONTRACT_NAMES, TOPIC_CONTRACTS, schema, subject, versions
from candleflow.contracts.compat import backward_problems
from candleflow.domain import InstrumentKind, Side, Trade
from devstack.stack import Stack
from devstack.testing import unique_name

PAIRS = [(name, v) for name in CONTRACT_NAMES for v in versions(name)[1:]]


def _with_field(base: dict[str, Any], field: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    out["fields"].append(field)
    return out


def _retyped(base: dict[str, Any], name: str, new_type: Any) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for f in out["fields"]:
        if f["name"] == name:
            f["type"] = new_type
    return out


TRADE = schema("trade", 1)
INCOMPATIBLE = {
    "added field without default": _with_field(TRADE, {"name": "venue", "type": "string"}),
    "changed type": _retyped(TRADE, "trade_id", "string"),
    "decimal scale changed": _retyped(
        TRADE, "price", {"type": "bytes", "logicalType": "decimal", "precision": 38, "scale": 8}
    ),
    "enum symbol removed": _retyped(
        TRADE, "side", {"type": "enum", "name": "Side", "symbols": ["BUY", "SELL"]}
    ),
}
COMPATIBLE = {
    "optional field added": _with_field(
        TRADE, {"name": "venue", "type": ["null", "string"], "default": None}
    ),
    "field removed": {**TRADE, "fields": [f for f in TRADE["fields"] if f["name"] != "kind"]},
}


def _broken_twin(name: str, version: int) -> dict[str, Any]:
    """`version` of the contract with the fields it added made required (no default, no
    null): the mistake a real vN+1 must not make, which both checks must reject."""
    old_names = {f["name"] for f in schema(name, version - 1)["fields"]}
    out = copy.deepcopy(schema(name, version))
    for f in out["fields"]:
        if f["name"] not in old_names:
            f.pop("default", None)
            if isinstance(f["type"], list):
                f["type"] = next(b for b in f["type"] if b != "null")
    return out


def test_trade_and_candle_have_evolved() -> None:
    """The pairs below are real: the compatibility tests compare v1 with v2."""
    assert {("trade", 2), ("candle", 2)} <= set(PAIRS)


@pytest.mark.parametrize("name,version", PAIRS)
def test_each_version_is_backward_compatible_structurally(name: str, version: int) -> None:
    assert backward_problems(schema(name, version - 1), schema(name, version)) == []


@pytest.mark.parametrize("name,version", PAIRS)
def test_structural_check_rejects_the_broken_twin(name: str, version: int) -> None:
    problems = backward_problems(schema(name, version - 1), _broken_twin(name, version))
    assert problems and all("added without a default" in p for p in problems), problems


def test_v1_and_v2_data_read_with_either_schema() -> None:
    """Avro resolution (fastavro): v1 data through the v2 reader gets the defaults (a v2
    consumer on a topic with old records), v2 data through the v1 reader drops the new
    field (a consumer not yet upgraded, e.g. the candles job's v1 source columns)."""
    t = dataclasses.replace(_sample_trade(), sequence=333938798)
    v1, v2 = avro.encode(t, "trade", 1), avro.encode(t, "trade", 2)
    assert len(v2) > len(v1)

    def read(body: bytes, writer: int, reader: int) -> dict[str, Any]:
        return fastavro.schemaless_reader(  # type: ignore[return-value]
            io.BytesIO(body),
            avro.parsed_schema("trade", writer),
            avro.parsed_schema("trade", reader),
        )

    assert read(v1, 1, 2)["sequence"] is None
    assert read(v2, 2, 2)["sequence"] == 333938798
    assert "sequence" not in read(v2, 2, 1)
    assert read(v2, 2, 1)["price"] == read(v1, 1, 2)["price"] == Decimal("79972.8")


@pytest.mark.parametrize("case", sorted(INCOMPATIBLE))
def test_structural_check_fails_on_incompatible_change(case: str) -> None:
    assert backward_problems(TRADE, INCOMPATIBLE[case]) != []


@pytest.mark.parametrize("case", sorted(COMPATIBLE))
def test_structural_check_accepts_compatible_change(case: str) -> None:
    assert backward_problems(TRADE, COMPATIBLE[case]) == []


def test_structural_check_follows_avro_promotions() -> None:
    anomaly = schema("anomaly", 1)
    assert backward_problems(anomaly, _retyped(anomaly, "candle_revision", "long")) == []
    assert backward_problems(anomaly, _retyped(anomaly, "candle_revision", "double")) == []
    assert backward_problems(anomaly, _retyped(anomaly, "value", "float")) != []


def _sample_trade() -> Trade:
    return Trade(
        "binance",
        "BTC-USD-PERP",
        "BTCUSD_PERP",
        480537903,
        Decimal("79972.8"),
        Decimal("542"),
        Side.BUY,
        1778198400020000,
        1778198400123456,
        1123474160,
        1123474164,
        InstrumentKind.INVERSE,
        Decimal("100"),
    )


def test_avro_resolution_agrees_with_the_structural_check() -> None:
    """fastavro's own schema resolution: old data read with the new schema."""
    body = avro.encode(_sample_trade())
    for case, new in COMPATIBLE.items():
        rec = fastavro.schemaless_reader(
            io.BytesIO(body), fastavro.parse_schema(TRADE), fastavro.parse_schema(new)
        )
        assert rec["price"] == Decimal("79972.8"), case
    unknown_side = avro.encode(dataclasses.replace(_sample_trade(), side=Side.UNKNOWN))
    for case, data in (
        ("added field without default", body),
        ("changed type", body),
        ("enum symbol removed", unknown_side),
    ):
        with pytest.raises(Exception):  # noqa: B017 - fastavro raises various resolution errors
            fastavro.schemaless_reader(
                io.BytesIO(data),
                fastavro.parse_schema(TRADE),
                fastavro.parse_schema(INCOMPATIBLE[case]),
            )


@pytest.mark.integration
@pytest.mark.parametrize("name,version", PAIRS)
def test_each_version_is_backward_compatible_in_the_registry(
    stack: Stack, name: str, version: int
) -> None:
    client = avro.registry_client(stack.settings)
    subj = unique_name(f"test-compat-{name}") + "-value"
    client.register_schema(subj, Schema(json.dumps(schema(name, version - 1)), "AVRO"))
    client.set_compatibility(subj, "BACKWARD")
    assert client.test_compatibility(subj, Schema(json.dumps(schema(name, version)), "AVRO"))


@pytest.mark.integration
@pytest.mark.parametrize("name,version", PAIRS)
def test_registry_rejects_the_broken_twin(stack: Stack, name: str, version: int) -> None:
    client = avro.registry_client(stack.settings)
    subj = unique_name(f"test-compat-{name}") + "-value"
    client.register_schema(subj, Schema(json.dumps(schema(name, version - 1)), "AVRO"))
    client.set_compatibility(subj, "BACKWARD")
    bad = Schema(json.dumps(_broken_twin(name, version)), "AVRO")
    assert client.test_compatibility(subj, bad) is False
    with pytest.raises(SchemaRegistryError):
        client.register_schema(subj, bad)


@pytest.mark.integration
def test_registry_compatibility_check_can_fail(stack: Stack) -> None:
    client = avro.registry_client(stack.settings)
    subj = unique_name("test-compat-trade") + "-value"
    client.register_schema(subj, Schema(json.dumps(TRADE), "AVRO"))
    client.set_compatibility(subj, "BACKWARD")
    ok = Schema(json.dumps(COMPATIBLE["optional field added"]), "AVRO")
    bad = Schema(json.dumps(INCOMPATIBLE["added field without default"]), "AVRO")
    assert client.test_compatibility(subj, ok) is True
    assert client.test_compatibility(subj, bad) is False
    with pytest.raises(SchemaRegistryError):
        client.register_schema(subj, bad)


@pytest.mark.integration
@pytest.mark.parametrize("topic", sorted(TOPIC_CONTRACTS))
def test_stack_registered_every_contract(stack: Stack, topic: str) -> None:
    client = avro.registry_client(stack.settings)
    registered = client.get_latest_version(subject(topic))
    got = fastavro.parse_schema(json.loads(registered.schema.schema_str))
    assert got == fastavro.parse_schema(schema(TOPIC_CONTRACTS[topic]))


@pytest.mark.integration
def test_wire_format_round_trip_through_the_registry(
    stack: Stack, unique_topic: Callable[..., str]
) -> None:
    client = avro.registry_client(stack.settings)
    topic = unique_topic("wire")
    ctx = avro.value_context(topic)
    data = avro.serializer(client, "trade")(_sample_trade(), ctx)
    assert data is not None and data[0] == 0  # Confluent magic byte, then the schema id
    schema_id = int.from_bytes(data[1:5], "big")
    assert client.get_latest_version(subject(topic)).schema_id == schema_id
    assert avro.deserializer(client, "trade")(data, ctx) == _sample_trade()
