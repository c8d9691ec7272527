"""Pick a history backend by name: DuckDB (embedded default) or Trino (production).

Apart from serving/history.py (the interface and the shared row mapping) so the backends
can import that module without an import cycle.
"""

from __future__ import annotations

from candleflow.config import StackSettings
from serving.history import History, Tables
from serving.settings import ServingSettings


def make_history(
    backend: str,
    settings: StackSettings,
    tables: Tables | None = None,
    serving: ServingSettings | None = None,
) -> History:
    """`serving` carries the Trino endpoint (default: CANDLEFLOW_SERVING_* from env)."""
    tables = tables or Tables()
    if backend == "duckdb":  # each backend's client library is imported only when chosen
        from serving.history_duckdb import DuckDBHistory

        return DuckDBHistory(settings, tables)
    if backend == "trino":
        from serving.history_trino import TrinoHistory

        return TrinoHistory(settings, tables, serving)
    raise ValueError(f"unknown history backend {backend!r}: duckdb or trino")
