"""Avro over Kafka in the Confluent wire format (magic byte + schema id + Avro body).

Thin helpers around confluent_kafka.schema_registry so every producer and consumer
serializes the contracts the same way, plus schemaless fastavro encode/decode for tests
and for code that does not talk to the registry. Domain <-> dict mapping: records.py.
"""

from __future__ import annotations

import io
from functools import cache
from typing import Any

import fastavro
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from candleflow import records
from candleflow.config import StackSettings
from candleflow.contracts import CONTRACT_NAMES, TOPIC_CONTRACTS, schema, schema_text, subject


def registry_client(settings: StackSettings | None = None) -> SchemaRegistryClient:
    """A client for the stack's Confluent-compatible registry API."""
    settings = settings or StackSettings()
    return SchemaRegistryClient({"url": settings.registry_url})


def contract_for_topic(topic: str, contract: str | None = None) -> str:
    """The contract a topic carries: explicit, or looked up (tests use unique topic names)."""
    if contract is not None:
        if contract not in CONTRACT_NAMES:
            raise ValueError(f"unknown contract {contract!r}; one of {CONTRACT_NAMES}")
        return contract
    try:
        return TOPIC_CONTRACTS[topic]
    except KeyError:
        raise ValueError(
            f"topic {topic!r} has no default contract; pass contract= (one of {CONTRACT_NAMES})"
        ) from None


def serializer(
    client: SchemaRegistryClient,
    contract: str,
    *,
    domain: bool = True,
    auto_register: bool = True,
    version: int | None = None,
) -> AvroSerializer:
    """Serializer for `contract`: takes a domain object (or an Avro dict when domain=False).

    The subject is "<topic>-value" (TopicNameStrategy), the same as Flink's
    avro-confluent format uses, so both sides agree on the schema id. `version` pins an
    older version of the contract (a producer not yet upgraded); default the newest.
    """
    to_dict = (lambda obj, _ctx: records.to_avro(obj)) if domain else None
    ser: AvroSerializer = AvroSerializer(
        client, schema_text(contract, version), to_dict, {"auto.register.schemas": auto_register}
    )
    return ser


def deserializer(
    client: SchemaRegistryClient, contract: str, *, domain: bool = True
) -> AvroDeserializer:
    """Deserializer reading with the contract's newest schema as reader schema."""
    from_dict = (lambda d, _ctx: records.from_avro(contract, d)) if domain else None
    de: AvroDeserializer = AvroDeserializer(client, schema_text(contract), from_dict)
    return de


def value_context(topic: str) -> SerializationContext:
    return SerializationContext(topic, MessageField.VALUE)


def register_contract(
    registry_url: str, topic: str, contract: str, version: int | None = None
) -> int:
    """Register `contract` (its newest version, or `version`) under "<topic>-value"
    (idempotent); returns its schema id."""
    client = SchemaRegistryClient({"url": registry_url})
    return client.register_schema(subject(topic), Schema(schema_text(contract, version), "AVRO"))


def register_contracts(
    client: SchemaRegistryClient, topics: dict[str, str] | None = None
) -> dict[str, int]:
    """Register every topic's contract under "<topic>-value"; returns subject -> schema id.

    Idempotent: registering the same schema again returns the same id.
    """
    out: dict[str, int] = {}
    for topic, contract in (topics or TOPIC_CONTRACTS).items():
        out[subject(topic)] = client.register_schema(
            subject(topic), Schema(schema_text(contract), "AVRO")
        )
    return out


# --- schemaless (no registry) ------------------------------------------------------------


@cache
def parsed_schema(contract: str, version: int | None = None) -> Any:
    return fastavro.parse_schema(schema(contract, version))


def encode(obj: object, contract: str | None = None, version: int | None = None) -> bytes:
    """Plain Avro body of a domain object (no wire-format header), in the contract's newest
    version or `version` (fields added later are left out)."""
    name = contract or records.contract_of(obj)
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, parsed_schema(name, version), records.to_avro(obj))  # type: ignore[arg-type]
    return buf.getvalue()


def decode(contract: str, body: bytes, version: int | None = None) -> Any:
    """The domain object of a plain Avro body written with the contract's newest schema, or
    with `version` (then resolved to the newest: fields added since get their defaults)."""
    reader = None if version is None else parsed_schema(contract)
    record = fastavro.schemaless_reader(io.BytesIO(body), parsed_schema(contract, version), reader)
    return records.from_avro(contract, record)  # type: ignore[arg-type]
