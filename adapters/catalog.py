"""The Iceberg catalog shared by Flink and Python: a JDBC catalog on SQLite + local warehouse.

PyIceberg's SqlCatalog and Iceberg's Java JdbcCatalog (with jdbc.schema-version=V1) read and
write the same `iceberg_tables` / `iceberg_namespace_properties` tables, so a table the Flink
jobs commit is visible to PyIceberg/DuckDB at once, under one catalog name everywhere.
"""

from __future__ import annotations

from pyiceberg.catalog.sql import SqlCatalog

from candleflow.config import StackSettings

NAMESPACES = ("bronze", "silver", "gold")


def sqlalchemy_uri(settings: StackSettings) -> str:
    """The SQLAlchemy URL PyIceberg needs for the same database the JDBC URL names."""
    jdbc = settings.catalog_uri
    if jdbc.startswith("jdbc:sqlite:"):
        return f"sqlite:///{jdbc.removeprefix('jdbc:sqlite:')}"
    if jdbc.startswith("jdbc:postgresql://"):
        user = settings.catalog_user
        password = settings.catalog_password.get_secret_value()
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        # Needs a PostgreSQL driver for SQLAlchemy (psycopg) in the services image.
        return f"postgresql+psycopg://{auth}{jdbc.removeprefix('jdbc:postgresql://')}"
    raise ValueError(
        f"CANDLEFLOW_CATALOG_JDBC_URI={jdbc!r}: only jdbc:sqlite: and jdbc:postgresql:// "
        "catalogs are supported"
    )


def catalog(settings: StackSettings | None = None) -> SqlCatalog:
    """The PyIceberg catalog (creates its tables in the catalog database on first use)."""
    s = settings or StackSettings()
    if not s.warehouse:
        s.warehouse_dir.mkdir(parents=True, exist_ok=True)
    return SqlCatalog(s.catalog_name, uri=sqlalchemy_uri(s), warehouse=s.warehouse_uri)


def catalog_properties(settings: StackSettings | None = None) -> dict[str, str]:
    """The Iceberg Java catalog properties for the same catalog."""
    s = settings or StackSettings()
    props = {
        "type": "iceberg",
        "catalog-impl": "org.apache.iceberg.jdbc.JdbcCatalog",
        "uri": s.catalog_uri,
        "jdbc.schema-version": "V1",
        "warehouse": s.warehouse_uri,
    }
    if s.catalog_user:
        props["jdbc.user"] = s.catalog_user
    if s.catalog_password.get_secret_value():
        props["jdbc.password"] = s.catalog_password.get_secret_value()
    return props


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
