"""Upsert snapshots for maintenance tests and benchmarks: UpsertCommits.java, compiled once
per data dir and run on the stack's Iceberg jars against its catalog (see the Java file)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from pyiceberg.manifest import DataFileContent

from adapters.catalog import catalog
from candleflow.config import StackSettings
from devstack import jvm

SOURCE = Path(__file__).with_name("UpsertCommits.java")


@dataclass(frozen=True)
class Commit:
    index: int
    snapshot_id: int
    timestamp_ms: int


def _classpath(settings: StackSettings) -> list[Path]:
    # slf4j-api for Iceberg's logging (no provider: silent), from the broker's jars.
    return [*jvm.flink_connector_jars(settings), *jvm.jars(settings, "kafka")]


def compiled(settings: StackSettings) -> Path:
    """The class directory of UpsertCommits, compiled when the source is newer."""
    out = settings.data_dir / "lakehouse-classes"
    cls = out / "UpsertCommits.class"
    if not cls.exists() or cls.stat().st_mtime < SOURCE.stat().st_mtime:
        out.mkdir(parents=True, exist_ok=True)
        javac = str(Path(jvm.java_bin()).with_name("javac"))
        cp = jvm.classpath(_classpath(settings))
        subprocess.run(
            [javac, "-nowarn", "-d", str(out), "-cp", cp, str(SOURCE)],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return out


def commit_upserts(
    settings: StackSettings,
    table: str,
    commits: int,
    *,
    first: int = 0,
    rows: int = 4,
    revisions: int = 12,
    pause_ms: int = 0,
) -> list[Commit]:
    """Commit `commits` upsert snapshots (commit i upserts `rows` candles of 1-minute window
    i // revisions at revision i % revisions); returns them in order."""
    cp = jvm.classpath([compiled(settings), *_classpath(settings)])
    args = [settings.catalog_uri, settings.warehouse_uri, table, commits, first, rows, revisions]
    proc = subprocess.run(
        [jvm.java_bin(), "-Xmx512m", "-cp", cp, "UpsertCommits", *map(str, args), str(pause_ms)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"UpsertCommits failed ({proc.returncode}): {proc.stderr[-3000:]}")
    out = []
    for line in proc.stdout.splitlines():
        if line.startswith("commit "):
            _, i, sid, ts = line.split()
            out.append(Commit(int(i), int(sid), int(ts)))
    if len(out) != commits:
        raise RuntimeError(f"UpsertCommits made {len(out)} of {commits} commits: {proc.stderr}")
    return out


def expected_revisions(
    commits: int, rows: int = 4, revisions: int = 12
) -> dict[tuple[str, int], int]:
    """(symbol, window index) -> the revision the table holds after commits 0..commits-1."""
    return {
        (f"SYM{s}-USDT", i // revisions): i % revisions for i in range(commits) for s in range(rows)
    }


def sequence_numbers(settings: StackSettings, table: str) -> tuple[int, int]:
    """(newest delete file, oldest data file) data sequence numbers of the current
    snapshot's live files; -1 for no delete file."""
    t = catalog(settings).load_table(table)
    snap = t.current_snapshot()
    assert snap is not None
    deletes: list[int] = [-1]
    data: list[int] = []
    for manifest in snap.manifests(t.io):
        for entry in manifest.fetch_manifest_entry(t.io, discard_deleted=True):
            is_data = entry.data_file.content == DataFileContent.DATA
            (data if is_data else deletes).append(entry.sequence_number or 0)
    return max(deletes), min(data)
