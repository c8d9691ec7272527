"""The live data files of an Iceberg snapshot with their data sequence numbers.

Upserted tables (silver.candles, format v2) keep every written row in the data files and
mark replaced ones with equality deletes, which PyIceberg 0.8 cannot apply. Readers that
query the data files directly (DuckDB) take, per key, the row of the file committed last
(highest data sequence number), then the highest revision: a re-run that writes revision 0
over an older revision 1 must win, so the revision alone cannot decide.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from pyiceberg.manifest import DataFileContent, ManifestContent


def local_path(uri: str) -> str:
    """DuckDB reads local paths (file:/x and file:///x alike)."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return parsed.path
    raise NotImplementedError(
        f"{uri}: the embedded readers read local warehouses; use Trino for remote storage"
    )


def data_files(table: Any, snapshot: Any) -> list[tuple[str, int]]:
    """(local path, data sequence number) of every live data file of `snapshot`."""
    out = []
    for manifest in snapshot.manifests(table.io):
        if manifest.content != ManifestContent.DATA:
            continue
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
            if entry.data_file.content == DataFileContent.DATA:
                out.append((local_path(entry.data_file.file_path), entry.sequence_number or 0))
    return out
