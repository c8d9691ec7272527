"""Table DDL of the anomalies job: the candles source and the anomaly sinks, as builders.

Each builder returns CREATE statements from its config, so the job (jobs/anomalies.py) runs
the same logic over Kafka + Iceberg in production and over bounded files in tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from adapters.avro import register_contract
from candleflow.config import StackSettings
from candleflow.kafka_security import KafkaSecurity
from jobs.candle_tables import (
    CANDLE_COLUMNS,
    _with,
    columns_sql,
    exactly_once_raw_sink_ddl,
    kafka_source_options,
)

ANOMALY_COLUMNS = [
    ("anomaly_id", "STRING NOT NULL"),
    ("rule", "STRING NOT NULL"),
    ("severity", "STRING NOT NULL"),
    ("exchange", "STRING NOT NULL"),
    ("symbol", "STRING NOT NULL"),
    ("interval", "STRING NOT NULL"),
    ("window_start", "TIMESTAMP(6) NOT NULL"),
    ("window_end", "TIMESTAMP(6) NOT NULL"),
    ("value", "DOUBLE NOT NULL"),
    ("threshold", "DOUBLE NOT NULL"),
    ("status", "STRING NOT NULL"),
    ("candle_revision", "INT NOT NULL"),
    ("details", "MAP<STRING NOT NULL, STRING NOT NULL> NOT NULL"),
]
# Flink's avro format (2.1) maps TIMESTAMP only to timestamp-millis: it rejects TIMESTAMP(6)
# when it derives its reader schema and writes epoch *milliseconds* into a field. So the
# Kafka source reads the contract's timestamp-micros fields as plain BIGINT (the same long
# on the wire: Avro resolution ignores the logical type), exact to the microsecond.
KAFKA_CANDLE_COLUMNS = [
    (name, "BIGINT NOT NULL" if typ.startswith("TIMESTAMP") else typ)
    for name, typ in CANDLE_COLUMNS
]
# From the detectors' rows (view anomaly_events) to the contract's columns. Window bounds
# travel as epoch milliseconds (candle windows are whole seconds) and become TIMESTAMP(6)
# in UTC (the job sets table.local-time-zone = UTC).
ANOMALY_SELECT = """anomaly_id, rule, severity, exchange, symbol, ivl,
  CAST(TO_TIMESTAMP_LTZ(window_start_ms, 3) AS TIMESTAMP(6)),
  CAST(TO_TIMESTAMP_LTZ(window_end_ms, 3) AS TIMESTAMP(6)),
  `value`, threshold, status, candle_revision, details"""


# --- sources and sinks --------------------------------------------------------------------


@dataclass(frozen=True)
class KafkaCandles:
    """candles.v1 (Avro, registry), read_committed: final and corrected candles."""

    topic: str
    bootstrap_servers: str
    registry_url: str
    group_id: str = "candleflow-anomalies"
    startup_mode: str = "group-offsets"
    bounded: bool = False  # stop at the latest offsets (tests, replays)
    # Kafka client security; None: CANDLEFLOW_KAFKA_* of the process building the DDL.
    security: KafkaSecurity | None = field(default=None, repr=False, compare=False)

    def ddl(self, name: str) -> str:
        """CREATE TABLE with the client's credentials in it: never log the statement."""
        options = kafka_source_options(self)
        cols = columns_sql(KAFKA_CANDLE_COLUMNS, nullable=True)
        return f"CREATE TEMPORARY TABLE `{name}` (\n{cols}\n) {_with(options)}"


@dataclass(frozen=True)
class FileCandles:
    """A bounded CSV of candles in arrival order (tests): CANDLE_COLUMNS, no header."""

    path: Path

    def ddl(self, name: str) -> str:
        options = {
            "connector": "filesystem",
            "path": str(self.path),
            "format": "csv",
            "csv.null-literal": "",
        }
        cols = columns_sql(CANDLE_COLUMNS, nullable=True)
        return f"CREATE TEMPORARY TABLE `{name}` (\n{cols}\n) {_with(options)}"


@dataclass(frozen=True)
class KafkaAnomalies:
    """anomalies.v1, exactly-once (transactions committed on checkpoints), key = anomaly_id.

    The value is the Avro contract in the Confluent wire format, encoded in the detector's
    Python step (adapters/avro.py, byte-equal to the Python producers) and written with
    the `raw` format: Flink's avro-confluent encoder would write timestamp-micros fields as
    milliseconds (see KAFKA_CANDLE_COLUMNS).
    """

    topic: str
    bootstrap_servers: str
    registry_url: str
    transactional_id_prefix: str = "candleflow-anomalies"
    transaction_timeout_ms: int = 900_000  # <= the broker's transaction.max.timeout.ms
    # Kafka client security; None: CANDLEFLOW_KAFKA_* of the process building the DDL.
    security: KafkaSecurity | None = field(default=None, repr=False, compare=False)

    def ddl(self, name: str) -> str:
        # Keyed by id: every record of one anomaly (ACTIVE, RETRACTED) in one partition,
        # in order; the topic can be compacted to each anomaly's last state.
        return exactly_once_raw_sink_ddl(
            name,
            topic=self.topic,
            bootstrap_servers=self.bootstrap_servers,
            key="k",
            key_type="BYTES",
            transactional_id_prefix=self.transactional_id_prefix,
            transaction_timeout_ms=self.transaction_timeout_ms,
            security=self.security,
        )

    def schema_id(self) -> int:
        """Register the contract under "<topic>-value" (idempotent) and return its id."""
        return register_contract(self.registry_url, self.topic, "anomaly")


@dataclass(frozen=True)
class FileAnomalies:
    """Newline-delimited JSON (tests)."""

    path: Path

    def ddl(self, name: str) -> str:
        options = {
            "connector": "filesystem",
            "path": str(self.path),
            "format": "json",
            "json.timestamp-format.standard": "ISO-8601",
        }
        return (
            f"CREATE TEMPORARY TABLE `{name}` (\n{columns_sql(ANOMALY_COLUMNS)}\n) {_with(options)}"
        )


@dataclass(frozen=True)
class IcebergAnomalies:
    """gold.anomalies: format v2, upsert on anomaly_id (one row per anomaly, last status)."""

    catalog: str
    database: str = "gold"
    table: str = "anomalies"

    @property
    def qualified(self) -> str:
        return f"`{self.catalog}`.`{self.database}`.`{self.table}`"

    def ddl(self) -> list[str]:
        cols = columns_sql(ANOMALY_COLUMNS)
        return [
            f"CREATE DATABASE IF NOT EXISTS `{self.catalog}`.`{self.database}`",
            f"CREATE TABLE IF NOT EXISTS {self.qualified} (\n{cols},\n"
            "  PRIMARY KEY (`anomaly_id`) NOT ENFORCED\n) WITH (\n"
            "  'format-version' = '2',\n  'write.upsert.enabled' = 'true'\n)",
        ]


def iceberg_catalog_ddl(stack: StackSettings) -> str:
    """The shared JDBC (SQLite) Iceberg catalog, as the candles job and PyIceberg see it."""
    from adapters.catalog import flink_catalog_ddl

    return flink_catalog_ddl(stack)
