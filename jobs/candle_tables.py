"""Table DDL for the candles job: the trades source and the four sinks, as builders.

Each builder takes the table name and its config and returns one CREATE TABLE statement,
so the job (jobs/candles.py) wires the same logic to Kafka + Iceberg in production and to
bounded files in tests and backfill.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from candleflow.avro import register_contract
from candleflow.contracts import subject
from candleflow.kafka_security import KafkaSecurity, flink_kafka_options

DEC = "DECIMAL(38, 18)"

# The trades.v1 contract as Flink columns (Avro timestamp-micros <-> TIMESTAMP(6)).
TRADE_COLUMNS = [
    ("exchange", "STRING NOT NULL"),
    ("symbol", "STRING NOT NULL"),
    ("native_symbol", "STRING NOT NULL"),
    ("trade_id", "BIGINT NOT NULL"),
    ("price", f"{DEC} NOT NULL"),
    ("quantity", f"{DEC} NOT NULL"),
    ("side", "STRING NOT NULL"),
    ("event_time", "TIMESTAMP(6) NOT NULL"),
    ("ingest_time", "TIMESTAMP(6) NOT NULL"),
    ("first_trade_id", "BIGINT"),
    ("last_trade_id", "BIGINT"),
    ("kind", "STRING NOT NULL"),
    ("contract_size", DEC),
]

CANDLE_COLUMNS = [
    ("exchange", "STRING NOT NULL"),
    ("symbol", "STRING NOT NULL"),
    ("interval", "STRING NOT NULL"),
    ("window_start", "TIMESTAMP(6) NOT NULL"),
    ("window_end", "TIMESTAMP(6) NOT NULL"),
    ("open", f"{DEC} NOT NULL"),
    ("high", f"{DEC} NOT NULL"),
    ("low", f"{DEC} NOT NULL"),
    ("close", f"{DEC} NOT NULL"),
    ("volume", f"{DEC} NOT NULL"),
    ("quote_volume", f"{DEC} NOT NULL"),
    ("trade_count", "BIGINT NOT NULL"),
    ("taker_buy_volume", f"{DEC} NOT NULL"),
    ("taker_buy_quote_volume", f"{DEC} NOT NULL"),
    ("vwap", DEC),
    ("first_trade_id", "BIGINT"),
    ("last_trade_id", "BIGINT"),
    ("revision", "INT NOT NULL"),
    ("is_empty", "BOOLEAN NOT NULL"),
]

# Columns each contract version added, after the v1 columns above (the Avro fields of the
# same names; docs/operations.md "Evolving a contract"). A candle's added columns are figures
# of its own fields computed at emission (Candle.volatility), outside the candle PTF.
TRADE_ADDED = {2: [("sequence", "BIGINT")]}
CANDLE_ADDED = {2: [("volatility", DEC)]}
CONTRACT_VERSION = 2  # the newest version of the Trade and Candle contracts


def _versioned(
    base: list[tuple[str, str]], added: dict[int, list[tuple[str, str]]], version: int | None
) -> list[tuple[str, str]]:
    v = CONTRACT_VERSION if version is None else version
    if not 1 <= v <= CONTRACT_VERSION:
        raise ValueError(f"contract version {v}: this build knows 1..{CONTRACT_VERSION}")
    return base + [col for n in sorted(added) if n <= v for col in added[n]]


def trade_columns(version: int | None = None) -> list[tuple[str, str]]:
    """The Trade contract's columns at `version` (default the newest)."""
    return _versioned(TRADE_COLUMNS, TRADE_ADDED, version)


def candle_columns(version: int | None = None) -> list[tuple[str, str]]:
    """The Candle contract's columns at `version` (default the newest)."""
    return _versioned(CANDLE_COLUMNS, CANDLE_ADDED, version)


# The late-trade DLQ carries the v1 trade columns: the PTF emits those (LateTrade stays v1).
LATE_COLUMNS = TRADE_COLUMNS + [
    ("interval", "STRING NOT NULL"),
    ("window_start", "TIMESTAMP(6) NOT NULL"),
    ("reason", "STRING NOT NULL"),
    ("watermark", "TIMESTAMP(6) NOT NULL"),
]

# How each sink's columns are selected from the PTF output (view candle_events).
CANDLE_SELECT = """exchange, symbol, ivl, window_start, window_end, `open`, high, low, `close`,
  volume, quote_volume, trade_count, taker_buy_volume, taker_buy_quote_volume, vwap,
  first_trade_id, last_trade_id, revision, is_empty"""
TRADE_SELECT = """exchange, symbol, t_native_symbol, t_trade_id, t_price, t_quantity, t_side,
  t_event_time, t_ingest_time, t_first_trade_id, t_last_trade_id, t_kind, t_contract_size"""
LATE_SELECT = f"{TRADE_SELECT}, ivl, window_start, reason, clock"
# Candle v2's volatility (Candle.volatility, per candle in Python: Flink SQL's DECIMAL division
# keeps only 6 places of (38,18) / (38,18)).
CANDLE_ADDED_SELECT = {2: "candle_volatility(high, low, `open`, is_empty)"}


def candle_select(version: int | None = None) -> str:
    """CANDLE_SELECT plus the expressions of the columns added up to `version`."""
    v = CONTRACT_VERSION if version is None else version
    return ", ".join(
        [CANDLE_SELECT, *(e for n, e in sorted(CANDLE_ADDED_SELECT.items()) if n <= v)]
    )


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
        options = {
            "connector": "kafka",
            "topic": self.topic,
            "properties.bootstrap.servers": self.bootstrap_servers,
            "properties.group.id": self.group_id,
            "properties.isolation.level": "read_committed",
            "scan.startup.mode": self.startup_mode,
            # An idle partition must not hold the global watermark (idle flush).
            "scan.watermark.idle-timeout": f"{self.idle_timeout_ms} ms",
            "value.format": "avro-confluent",
            "value.avro-confluent.url": self.registry_url,
            "value.avro-confluent.subject": subject(self.topic),
            **flink_kafka_options(self.security),
        }
        if self.startup_mode == "group-offsets":
            options["properties.auto.offset.reset"] = "earliest"
        if self.bounded:
            options["scan.bounded.mode"] = "latest-offset"
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
        options = {
            "connector": "filesystem",
            "path": str(self.path),
            "format": "csv",
            "csv.null-literal": "",
        }
        return (
            f"CREATE TEMPORARY TABLE `{name}` (\n{columns_sql(TRADE_COLUMNS, nullable=True)}"
            f"{_watermark(self.watermark_delay_ms)}\n) {_with(options)}"
        )


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
