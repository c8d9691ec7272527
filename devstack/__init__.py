"""The local development stack: real processes started and stopped by the project.

Kafka (KRaft), the schema registry, a Flink session cluster, the Iceberg catalog and
Trino (`stack`, `config`, `procs`, `jvm`, `trino`), the `candleflow stack` commands
(`cli`), the demo, the recorded sample data and the shared test stack (`testing`).
Production never runs this code; Kubernetes points the same jobs and services at
existing services instead.
"""
