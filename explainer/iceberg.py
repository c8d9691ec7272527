"""gold.explanations: an Iceberg (format v2) projection of explanations.v1, one row per id.

Rows are only appended for ids not yet in the table, so writing the same explanation
again (restart, repair from the topic) never duplicates a row.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchTableError
from pyiceberg.schema import Schema
from pyiceberg.types import (
    BooleanType,
    DoubleType,
    ListType,
    NestedField,
    StringType,
    TimestamptzType,
)

from candleflow.config import StackSettings
from candleflow.domain import Explanation

SCHEMA = Schema(
    NestedField(1, "anomaly_id", StringType(), required=True),
    NestedField(2, "summary", StringType(), required=True),
    NestedField(3, "key_factors", ListType(10, StringType(), element_required=True), required=True),
    NestedField(4, "confidence", DoubleType(), required=True),
    NestedField(5, "caveats", ListType(11, StringType(), element_required=True), required=True),
    NestedField(6, "model", StringType(), required=True),
    NestedField(7, "offline", BooleanType(), required=True),
    NestedField(8, "created_at", TimestamptzType(), required=True),
    identifier_field_ids=[1],
)


def open_catalog(stack: StackSettings) -> Catalog:
    """The stack's JDBC/SQLite catalog through PyIceberg (shared with Flink)."""
    from adapters.catalog import catalog

    return catalog(stack)


def to_arrow(rows: list[Explanation], schema: Schema = SCHEMA) -> pa.Table:
    """Rows as Arrow, in the table's own schema (the catalog assigns the field ids)."""
    arrow_schema = schema.as_arrow()
    return pa.Table.from_pylist(
        [
            {
                "anomaly_id": e.anomaly_id,
                "summary": e.summary,
                "key_factors": list(e.key_factors),
                "confidence": float(e.confidence),
                "caveats": list(e.caveats),
                "model": e.model,
                "offline": e.offline,
                "created_at": datetime.fromtimestamp(e.created_at_us / 1_000_000, UTC),
            }
            for e in rows
        ],
        schema=arrow_schema,
    )


class ExplanationsTable:
    def __init__(self, stack: StackSettings, name: str = "gold.explanations") -> None:
        self.catalog = open_catalog(stack)
        self.name = name
        namespace = name.rsplit(".", 1)[0]
        with contextlib.suppress(NamespaceAlreadyExistsError):
            self.catalog.create_namespace(namespace)
        try:
            self.table = self.catalog.load_table(name)
        except NoSuchTableError:
            self.table = self.catalog.create_table_if_not_exists(
                name, schema=SCHEMA, properties={"format-version": "2"}
            )
        self.ids = self._ids()

    def _ids(self) -> set[str]:
        self.table.refresh()
        if self.table.current_snapshot() is None:
            return set()
        col = self.table.scan(selected_fields=("anomaly_id",)).to_arrow()["anomaly_id"]
        return set(col.to_pylist())

    def append_missing(self, rows: list[Explanation]) -> int:
        new: dict[str, Explanation] = {}
        for e in rows:
            if e.anomaly_id not in self.ids:
                new.setdefault(e.anomaly_id, e)
        if not new:
            return 0
        self.table.append(to_arrow(list(new.values()), self.table.schema()))
        self.ids.update(new)
        return len(new)

    def rows(self) -> list[dict[str, Any]]:
        self.table.refresh()
        if self.table.current_snapshot() is None:
            return []
        rows: list[dict[str, Any]] = self.table.scan().to_arrow().to_pylist()
        return rows
