"""Table DDL for the candles job: the trades source and the four sinks, as builders.

Each builder takes the table name and its config and returns one CREATE TABLE statement,
so the job (jobs/candles.py) wires the same logic to Kafka + Iceberg in production and to
bounded files in tests and backfill.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from adapters.avro import register_contract
from candleflow import candle_map
from candleflow.contracts import subject
from candleflow.kafka_security import KafkaSecurity, flink_kafka_options

DEC = "DECIMAL(38, 18)"

# The contracts as Flink columns, generated from them (candleflow/candle_map.py; Avro
# timestamp-micros <-> TIMESTAMP(6)).
_FLINK_TYPES = {
    "string": "STRING",
    "timestamp": "TIMESTAMP(6)",
    "decimal": DEC,
    "long": "BIGINT",
    "int": "INT",
    "boolean": "BOOLEAN",
}


def _flink(columns: tuple[candle_map.Column, ...]) -> list[tuple[str, str]]:
    return [(c.name, _FLINK_TYPES[c.kind] + ("" if c.nullable else " NOT NULL")) for c in columns]


def trade_columns(version: int | None = None) -> list[tuple[str, str]]:
    """The Trade contract's columns at `version` (default the newest)."""
    return _flink(candle_map.columns(version, "trade"))


def candle_columns(version: int | None = None) -> list[tuple[str, str]]:
    """The Candle contract's columns at `version` (default the newest), derived ones too:
    silver's columns (docs/operations.md "Evolving a contract")."""
    return _flink(candle_map.columns(version))


# Trade v1: what the candle PTF reads and the late-trade DLQ carries (LateTrade stays v1).
TRADE_COLUMNS = trade_columns(1)
# The Candle's stored columns: what the PTF emits and the file sinks hold (readers derive
# the rest, candle_map.DERIVED_COLUMNS).
CANDLE_COLUMNS = _flink(candle_map.CANDLE_COLUMNS)

# The late-trade DLQ carries the v1 trade columns: the PTF emits those (LateTrade stays v1).
LATE_COLUMNS = TRADE_COLUMNS + [
    ("interval", "STRING NOT NULL"),
    ("window_start", "TIMESTAMP(6) NOT NULL"),
    ("reason", "STRING NOT NULL"),
    ("watermark", "TIMESTAMP(6) NOT NULL"),
]

# How each sink's columns are selected from the PTF output (view candle_events).
# (the PTF names the interval `ivl`; `open` and `close` are reserved words in Flink SQL).
_SELECT_AS = {"interval": "ivl", "open": "`open`", "close": "`close`"}
CANDLE_SELECT = ", ".join(_SELECT_AS.get(n, n) for n in candle_map.CANDLE_COLUMN_NAMES)
TRADE_SELECT = """exchange, symbol, t_native_symbol, t_trade_id, t_price, t_quantity, t_side,
  t_event_time, t_ingest_time, t_first_trade_id, t_last_trade_id, t_kind, t_contract_size"""
LATE_SELECT = f"{TRADE_SELECT}, ivl, window_start, reason, clock"


def candle_select(version: int | None = None) -> str:
    """How the Candle contract's columns at `version` are selected from the PTF output: the
    stored ones as named, each derived one by its Python function of the stored columns
    (jobs/candle_wire.py; exact Decimals, where Flink SQL's DECIMAL(38,18) division keeps 6
    places)."""
    stored = micros_select(CANDLE_SELECT)
    return ", ".join(
        f"{derived_function(c.name)}({stored})" if c.derived else _SELECT_AS.get(c.name, c.name)
        for c in candle_map.columns(version)
    )


def derived_function(column: str) -> str:
    """The SQL name of the Python function computing a derived candle column."""
    return f"candle_{column}"


class KafkaAvroSource(Protocol):
    """What a Kafka source table's config holds (KafkaSource here, KafkaCandles in
    jobs/anomaly_tables.py)."""

    @property
    def topic(self) -> str: ...

    @property
    def bootstrap_servers(self) -> str: ...

    @property
    def registry_url(self) -> str: ...

    @property
    def group_id(self) -> str: ...

    @property
    def startup_mode(self) -> str: ...

    @property
    def bounded(self) -> bool: ...

    @property
    def security(self) -> KafkaSecurity | None: ...


def kafka_source_options(
    source: KafkaAvroSource, *, idle_timeout_ms: int | None = None
) -> dict[str, str]:
    """The WITH options of a read_committed Avro (registry) Kafka source: the one place for
    both jobs' sources (trades.v1 here, candles.v1 in jobs/anomaly_tables.py). They hold the
    client's credentials: never log them."""
    options = {
        "connector": "kafka",
        "topic": source.topic,
        "properties.bootstrap.servers": source.bootstrap_servers,
        "properties.group.id": source.group_id,
        "properties.isolation.level": "read_committed",
        "scan.startup.mode": source.startup_mode,
    }
    if idle_timeout_ms is not None:
        options["scan.watermark.idle-timeout"] = f"{idle_timeout_ms} ms"
    options |= {
        "value.format": "avro-confluent",
        "value.avro-confluent.url": source.registry_url,
        "value.avro-confluent.subject": subject(source.topic),
        **flink_kafka_options(source.security),
    }
    if source.startup_mode == "group-offsets":
        options["properties.auto.offset.reset"] = "earliest"
    if source.bounded:
        options["scan.bounded.mode"] = "latest-offset"
    return options


# Flink 2.1's avro format maps TIMESTAMP only to timestamp-millis (it rejects TIMESTAMP(6)),
# so on Kafka the contracts' timestamp-micros fields are plain BIGINT micros (the same long
# on the wire; the explicit contract schema keeps the logical type for readers).
def micros_columns(columns: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(n, t.replace("TIMESTAMP(6)", "BIGINT")) for n, t in columns]


_MICROS = {
    "window_start": "window_start_us",
    "window_end": "window_end_us",
    "t_event_time": "t_event_time_us",
    "t_ingest_time": "t_ingest_time_us",
    "clock": "clock_us",
}


def micros_select(select: str) -> str:
    """The same select list with every TIMESTAMP(6) column replaced by its µs BIGINT twin."""
    parts = [p.strip() for p in select.replace("\n", " ").split(",")]
    return ", ".join(_MICROS.get(p, p) for p in parts)


def columns_sql(columns: list[tuple[str, str]], *, nullable: bool = False) -> str:
    parts = []
    for name, typ in columns:
        if nullable:
            typ = typ.replace(" NOT NULL", "")
        parts.append(f"  `{name}` {typ}")
    return ",\n".join(parts)


def _with(options: dict[str, str]) -> str:
    body = ",\n".join(f"  '{k}' = '{v.replace(chr(39), chr(39) * 2)}'" for k, v in options.items())
    return f"WITH (\n{body}\n)"


def exactly_once_raw_sink_ddl(
    name: str,
    *,
    topic: str,
    bootstrap_servers: str,
    key: str,
    key_type: str,
    transactional_id_prefix: str,
    transaction_timeout_ms: int,
    security: KafkaSecurity | None = None,
) -> str:
    """A Kafka table of (key, value bytes) written in transactions committed on checkpoints.

    The value is a contract already encoded in the Confluent wire format (jobs/candle_wire.py):
    Flink's avro-confluent encoder would write timestamp-micros fields as milliseconds.
    `security` (default: CANDLEFLOW_KAFKA_* of this process) becomes the client's
    properties; the statement then holds credentials: never log it.
    """
    options = {
        "connector": "kafka",
        "topic": topic,
        "properties.bootstrap.servers": bootstrap_servers,
        "key.format": "raw",
        "key.fields": key,
        "value.format": "raw",
        "value.fields-include": "EXCEPT_KEY",
        "sink.delivery-guarantee": "exactly-once",
        "sink.transactional-id-prefix": transactional_id_prefix,
        # Must not exceed the broker's transaction.max.timeout.ms (the stack raises it to 1 h).
        "properties.transaction.timeout.ms": str(transaction_timeout_ms),
        **flink_kafka_options(security),
    }
    cols = columns_sql([(key, f"{key_type} NOT NULL"), ("v", "BYTES NOT NULL")])
    return f"CREATE TEMPORARY TABLE `{name}` (\n{cols}\n) {_with(options)}"


def _watermark(watermark_delay_ms: int) -> str:
    # The PTF decides lateness on each market's own clock; this watermark only drives the
    # idle flush of quiet markets (docs/semantics.md), so it trails the newest trade by a
    # small delay rather than by a grace.
    delay = f"{watermark_delay_ms / 1000:.3f}"
    return (
        ",\n  `rowtime` AS CAST(`event_time` AS TIMESTAMP(3)),\n"
        f"  WATERMARK FOR `rowtime` AS `rowtime` - INTERVAL '{delay}' SECOND"
    )


@dataclass(frozen=True)
class KafkaSource:
    topic: str
    bootstrap_servers: str
    registry_url: str
    group_id: str = "candleflow-candles"
    startup_mode: str = "group-offsets"  # or earliest-offset / latest-offset
    idle_timeout_ms: int = 5000
    watermark_delay_ms: int = 0
    bounded: bool = False  # stop at the latest offsets (tests, replays)
    # Kafka client security; None: CANDLEFLOW_KAFKA_* of the process building the DDL.
    security: KafkaSecurity | None = field(default=None, repr=False, compare=False)
    # The Trade version read (its columns; None: the newest): records of every version are
    # resolved to it by their writer schema (Avro), older ones get NULL in the columns they
    # lack. The candles job reads v1: it uses none of the fields added since.
    contract_version: int | None = 1

    def ddl(self, name: str) -> str:
        """CREATE TABLE with the client's credentials in it: never log the statement."""
        # An idle partition must not hold the global watermark (idle flush).
        options = kafka_source_options(self, idle_timeout_ms=self.idle_timeout_ms)
        cols = columns_sql(micros_columns(trade_columns(self.contract_version)), nullable=True)
        delay = f"{self.watermark_delay_ms / 1000:.3f}"
        return (
            f"CREATE TEMPORARY TABLE `{name}` (\n{cols},\n"
            "  `rowtime` AS TO_TIMESTAMP_LTZ(`event_time` / 1000, 3),\n"
            f"  WATERMARK FOR `rowtime` AS `rowtime` - INTERVAL '{delay}' SECOND\n"
            f") {_with(options)}"
        )


@dataclass(frozen=True)
class FileSource:
    """A bounded CSV of trades in arrival order (tests, backfill): TRADE_COLUMNS, no header."""

    path: Path
    watermark_delay_ms: int = 0

    def ddl(self, name: str) -> str:
        options = {"format": "csv", "csv.null-literal": ""}
        return _trade_files_ddl(name, self.path, options, self.watermark_delay_ms)


def _trade_files_ddl(name: str, path: Path, options: dict[str, str], delay_ms: int) -> str:
    """A bounded filesystem table of trades (TRADE_COLUMNS) with the idle-flush watermark."""
    options = {"connector": "filesystem", "path": str(path), **options}
    return (
        f"CREATE TEMPORARY TABLE `{name}` (\n{columns_sql(TRADE_COLUMNS, nullable=True)}"
        f"{_watermark(delay_ms)}\n) {_with(options)}"
    )


@dataclass(frozen=True)
class BinanceFilesSource:
    """Bounded: data.binance.vision trades files read by the job itself (backfill). `manifest`
    lists them (jobs/backfill_files.py); the UDF jar's format parses and orders-checks them."""

    manifest: Path
    watermark_delay_ms: int = 0

    def ddl(self, name: str) -> str:
        options = {"format": "candleflow-binance-trades"}
        return _trade_files_ddl(name, self.manifest, options, self.watermark_delay_ms)


@dataclass(frozen=True)
class KafkaSink:
    """An exactly-once Avro topic (Kafka transactions committed on checkpoints)."""

    topic: str
    contract: str
    bootstrap_servers: str
    registry_url: str
    transactional_id_prefix: str
    # Must not exceed the broker's transaction.max.timeout.ms (the stack raises it to 1 h).
    transaction_timeout_ms: int = 900_000
    # Kafka client security; None: CANDLEFLOW_KAFKA_* of the process building the DDL.
    security: KafkaSecurity | None = field(default=None, repr=False, compare=False)
    # The contract version written (None: the newest); an older one keeps the producer on
    # it until every reader is upgraded (docs/operations.md "Evolving a contract").
    contract_version: int | None = None

    def ddl(self, name: str, columns: list[tuple[str, str]]) -> str:
        # Keyed by market: a market's candles stay in one partition, in order.
        return exactly_once_raw_sink_ddl(
            name,
            topic=self.topic,
            bootstrap_servers=self.bootstrap_servers,
            key="market_key",
            key_type="STRING",
            transactional_id_prefix=self.transactional_id_prefix,
            transaction_timeout_ms=self.transaction_timeout_ms,
            security=self.security,
        )

    def schema_id(self) -> int:
        """Register the contract under "<topic>-value" (idempotent) and return its id."""
        return register_contract(
            self.registry_url, self.topic, self.contract, self.contract_version
        )

    keyed = True
    micros = True


@dataclass(frozen=True)
class FileSink:
    """Newline-delimited JSON files (tests, backfill); decimals as plain numbers."""

    path: Path

    def ddl(self, name: str, columns: list[tuple[str, str]]) -> str:
        options = {
            "connector": "filesystem",
            "path": str(self.path),
            "format": "json",
            "json.encode.decimal-as-plain-number": "true",
            "json.timestamp-format.standard": "ISO-8601",
        }
        return f"CREATE TEMPORARY TABLE `{name}` (\n{columns_sql(columns)}\n) {_with(options)}"

    keyed = False
    micros = False


@dataclass(frozen=True)
class IcebergSink:
    """A table of the shared Iceberg catalog (created by the catalog DDL, see build())."""

    catalog: str
    database: str
    table: str

    @property
    def qualified(self) -> str:
        return f"`{self.catalog}`.`{self.database}`.`{self.table}`"

    keyed = False
    micros = False


@dataclass
class Sinks:
    candles: list[KafkaSink | FileSink | IcebergSink] = field(default_factory=list)
    late: list[KafkaSink | FileSink] = field(default_factory=list)
