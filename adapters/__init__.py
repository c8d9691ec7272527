"""Adapters: the one place the project talks to its infrastructure's client libraries.

Avro/schema-registry serde (`avro`), Iceberg catalog access (`catalog`, `iceberg_files`)
and Kafka topic admin (`topics`). Jobs, services, the dev stack and the tools use these;
the core (`candleflow/`) never imports them.
"""
