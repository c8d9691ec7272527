"""The Iceberg catalog shared by Flink and Python: a JDBC catalog on SQLite + local warehouse.

PyIceberg's SqlCatalog and Iceberg's Java JdbcCatalog (with jdbc.schema-version=V1) read and
write the same `iceberg_tables` / `iceberg_namespace_properties` tables, so a table the Flink
jobs commit is visible to PyIceberg/DuckDB at once, under one catalog name everywhere.
"""

from __future__ import annotations

from pyiceberg.catalog.sql import SqlCatalog

from candleflow.config import StackSettings

NAMESPACES = ("bronze", "silver", "gold")


def catalog(settings: StackSettings | None = None) -> SqlCatalog:
    """The PyIceberg catalog (creates its tables in the SQLite file on first use)."""
    s = settings or StackSettings()
    s.warehouse_dir.mkdir(parents=True, exist_ok=True)
    return SqlCatalog(
        s.catalog_name,
        uri=f"sqlite:///{s.catalog_db}",
        warehouse=s.warehouse_dir.as_uri(),
    )


def catalog_properties(settings: StackSettings | None = None) -> dict[str, str]:
    """The Iceberg Java catalog properties for the same catalog."""
    s = settings or StackSettings()
    return {
        "type": "iceberg",
        "catalog-impl": "org.apache.iceberg.jdbc.JdbcCatalog",
        "uri": s.catalog_uri,
        "jdbc.schema-version": "V1",
        "warehouse": s.warehouse_dir.as_uri(),
    }


def flink_catalog_ddl(settings: StackSettings | None = None, name: str | None = None) -> str:
    """`CREATE CATALOG ...` for Flink SQL (needs iceberg-flink-runtime + sqlite-jdbc jars)."""
    s = settings or StackSettings()
    props = ",\n  ".join(f"'{k}' = '{v}'" for k, v in catalog_properties(s).items())
    return f"CREATE CATALOG IF NOT EXISTS `{name or s.catalog_name}` WITH (\n  {props}\n)"


def ensure_namespaces(
    settings: StackSettings | None = None, names: tuple[str, ...] = NAMESPACES
) -> list[str]:
    """Create the missing namespaces; returns the names created."""
    cat = catalog(settings)
    existing = {ns[0] for ns in cat.list_namespaces()}
    created = [n for n in names if n not in existing]
    for n in created:
        cat.create_namespace_if_not_exists(n)
    return created
