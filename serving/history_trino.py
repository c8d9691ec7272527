"""History through Trino's Iceberg connector (production), with Iceberg time travel."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import trino
import trino.auth

from candleflow.config import StackSettings
from candleflow.domain import Anomaly, Candle, Explanation
from serving.history import (
    CANDLE_COLUMNS,
    CandleQuery,
    NotFound,
    Tables,
    candle_from_row,
    record_from_row,
)
from serving.settings import ServingSettings

log = logging.getLogger(__name__)

# The Trino catalog on the Iceberg tables (devstack/trino.py writes the local one by this
# name), and the error Trino answers while its workers are still announcing themselves.
CATALOG = "iceberg"
NO_NODES = "NO_NODES_AVAILABLE"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NO_NODES_STEP_S = 1.0
_ONE_US = timedelta(microseconds=1)


def _us(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // _ONE_US


def _naive(us: int) -> datetime:
    """UTC as a naive timestamp: the tables' TIMESTAMP(6) columns hold UTC wall time."""
    return (_EPOCH + us * _ONE_US).replace(tzinfo=None)


def _ts_literal(us: int) -> str:
    """A TIMESTAMP WITH TIME ZONE literal with microseconds, for FOR TIMESTAMP AS OF."""
    dt = _EPOCH + us * _ONE_US
    return f"TIMESTAMP '{dt.strftime('%Y-%m-%d %H:%M:%S.%f')} UTC'"


def _table_ref(name: str) -> str:
    schema, table = name.split(".", 1)
    return f'{CATALOG}."{schema}"."{table}"'


def time_travel(q: CandleQuery) -> str:
    if q.snapshot_id is not None:
        return f" FOR VERSION AS OF {int(q.snapshot_id)}"
    if q.as_of_us is not None:
        return f" FOR TIMESTAMP AS OF {_ts_literal(int(q.as_of_us))}"
    return ""


def connect_args(stack: StackSettings, serving: ServingSettings) -> dict[str, Any]:
    """trino.dbapi.connect arguments: CANDLEFLOW_SERVING_TRINO_URL (+ user, password or
    token) when set, else the local stack's Trino. Holds secrets: never log the result."""
    args: dict[str, Any] = {"host": stack.host, "port": stack.trino_port, "http_scheme": "http"}
    if serving.trino_url:
        url = urlsplit(serving.trino_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(
                f"CANDLEFLOW_SERVING_TRINO_URL={serving.trino_url!r}: expected http(s)://host[:port]"
            )
        default_port = 443 if url.scheme == "https" else 8080
        args = {"host": url.hostname, "port": url.port or default_port, "http_scheme": url.scheme}
    args["user"] = serving.trino_user
    password = serving.trino_password.get_secret_value()
    token = serving.trino_access_token.get_secret_value()
    if password:
        args["auth"] = trino.auth.BasicAuthentication(serving.trino_user, password)
    elif token:
        args["auth"] = trino.auth.JWTAuthentication(token)
    return args


class TrinoHistory:
    # Bound of the NO_NODES_AVAILABLE retries: three times the ~10 s announcement lag.
    no_nodes_retry_s = 30.0

    def __init__(
        self, settings: StackSettings, tables: Tables, serving: ServingSettings | None = None
    ):
        self.settings = settings
        self.tables = tables
        self._connect_args = connect_args(settings, serving or ServingSettings())

    def connect(self) -> Any:
        return trino.dbapi.connect(**self._connect_args, catalog=CATALOG, timezone="UTC")

    def query(self, sql: str, params: list[Any] | None = None) -> tuple[list[str], list[list[Any]]]:
        """Run one statement; NO_NODES_AVAILABLE is retried for up to `no_nodes_retry_s`.

        A coordinator that has just started (or a new worker) answers every query, but
        schedules a catalog's splits only once its node manager has seen the catalog in the
        nodes' announcements, which takes up to about ten seconds (see devstack.trino.health).
        That error, and only that one, is worth waiting out; the retries are logged.
        """
        waited = 0.0
        while True:
            try:
                return self._query_once(sql, params)
            except trino.exceptions.TrinoQueryError as exc:
                if exc.error_name != NO_NODES or waited >= self.no_nodes_retry_s:
                    raise
                log.warning(
                    "Trino %s (catalog %s not scheduled on a node yet): retrying in %.1fs "
                    "(%.1fs of %.0fs waited)",
                    exc.error_name,
                    CATALOG,
                    _NO_NODES_STEP_S,
                    waited,
                    self.no_nodes_retry_s,
                )
            time.sleep(_NO_NODES_STEP_S)
            waited += _NO_NODES_STEP_S

    def _query_once(self, sql: str, params: list[Any] | None) -> tuple[list[str], list[list[Any]]]:
        conn = self.connect()
        try:
            cur = conn.cursor()
            try:
                cur.execute(sql, params or [])
            except trino.exceptions.TrinoUserError as exc:
                if exc.error_name in ("TABLE_NOT_FOUND", "SCHEMA_NOT_FOUND"):
                    raise NotFound(exc.message) from None
                if "snapshot" in (exc.message or "").lower():
                    raise NotFound(exc.message) from None
                raise
            rows = cur.fetchall()
            return [d[0] for d in cur.description], rows
        finally:
            conn.close()

    def _snapshot_id(self, q: CandleQuery) -> int:
        if q.snapshot_id is not None:
            return q.snapshot_id
        ref = _table_ref(self.tables.candles).rsplit(".", 1)
        snaps = f'{ref[0]}."{ref[1].strip(chr(34))}$snapshots"'
        where = ""
        if q.as_of_us is not None:
            where = f" WHERE committed_at <= {_ts_literal(q.as_of_us)}"
        _, rows = self.query(
            f"SELECT snapshot_id FROM {snaps}{where} ORDER BY committed_at DESC LIMIT 1"
        )
        return int(rows[0][0]) if rows else 0

    def get_candles(self, q: CandleQuery) -> tuple[list[Candle], int]:
        cols = ", ".join(f'"{c}"' for c in CANDLE_COLUMNS)
        sql = (
            f"SELECT {cols} FROM {_table_ref(self.tables.candles)}{time_travel(q)} "
            'WHERE symbol = ? AND "interval" = ? AND window_start >= ?'
        )
        params: list[Any] = [q.symbol, q.interval, _naive(q.start_us)]
        if q.end_us is not None:
            sql += " AND window_start < ?"
            params.append(_naive(q.end_us))
        if q.exchange:
            sql += " AND exchange = ?"
            params.append(q.exchange)
        sql += f" ORDER BY window_start, exchange LIMIT {int(q.limit)}"
        names, rows = self.query(sql, params)
        out = []
        for row in rows:
            d = dict(zip(names, row, strict=True))
            d["window_start"], d["window_end"] = _us(d["window_start"]), _us(d["window_end"])
            out.append(candle_from_row(d))
        return out, self._snapshot_id(q)

    def list_symbols(self) -> list[tuple[str, str, list[str]]]:
        _, rows = self.query(
            'SELECT exchange, symbol, array_agg(DISTINCT "interval") FROM '
            f"{_table_ref(self.tables.candles)} GROUP BY 1, 2 ORDER BY 1, 2"
        )
        return [(r[0], r[1], sorted(r[2])) for r in rows]

    def get_anomaly(self, anomaly_id: str) -> tuple[Anomaly | None, Explanation | None]:
        """The current row of the id. Trino applies the tables' deletes (gold.anomalies is
        upserted on anomaly_id, gold.explanations has one row per id), so at most one row
        is live; more than one is a broken table, and no row of it is "the latest"."""
        out: list[Any] = []
        for name, contract in (
            (self.tables.anomalies, "anomaly"),
            (self.tables.explanations, "explanation"),
        ):
            try:
                names, rows = self.query(
                    f"SELECT * FROM {_table_ref(name)} WHERE anomaly_id = ? LIMIT 2", [anomaly_id]
                )
            except NotFound:
                out.append(None)
                continue
            if len(rows) > 1:
                raise RuntimeError(f"{name}: several live rows for anomaly_id {anomaly_id!r}")
            out.append(
                record_from_row(contract, dict(zip(names, rows[0], strict=True))) if rows else None
            )
        return out[0], out[1]
