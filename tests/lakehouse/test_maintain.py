"""Maintenance of a silver.candles table after 1,000 upsert snapshots, on the real Trino and
the real catalog: snapshots and files end bounded by the retention, the rows read the same,
and time travel works inside the retention (and only there).

The 1,000 commits come in four rounds of 250 with a maintenance run after each, as the
chart's CronJob would run between checkpoints. Cost: 1.5-3 min (measured 174 s with both CPU
slots: the 1,000 commits dominate, each maintenance run takes a few seconds).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trino

from adapters.catalog import catalog
from candleflow.config import StackSettings
from devstack.upsert_commits import Commit, commit_upserts, expected_revisions, sequence_numbers
from jobs.candle_iceberg import ensure_silver_table
from lakehouse.maintain import KEEP_MARGIN_MS, Maintainer
from lakehouse.settings import MaintenanceSettings
from serving.settings import ServingSettings
from tests.serving.conftest import kafka_stack, trino_server  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.integration, pytest.mark.trino, pytest.mark.slow]

KEEP = 10
ROUNDS, PER_ROUND = 4, 250
ROWS, REVISIONS = 4, 12
DAY = datetime(2026, 11, 2, tzinfo=UTC)  # UpsertCommits.DAY: window i starts i minutes after it
COLUMNS = "symbol, window_start, revision, open, close, volume, trade_count, last_trade_id"


@pytest.fixture
def silver(trino_server: StackSettings, unique_namespace: str) -> Iterator[str]:  # noqa: F811
    ensure_silver_table(trino_server, namespace=unique_namespace)
    yield f"{unique_namespace}.candles"


def _ref(table: str) -> str:
    ns, name = table.split(".")
    return f'iceberg."{ns}"."{name}"'


def rows(m: Maintainer, table: str, snapshot_id: int | None = None) -> list[list[Any]]:
    travel = f" FOR VERSION AS OF {snapshot_id}" if snapshot_id is not None else ""
    return m.query(f"SELECT {COLUMNS} FROM {_ref(table)}{travel} ORDER BY symbol, window_start")


def kept_snapshots(m: Maintainer, table: str) -> list[int]:
    """Commit times (epoch ms) of the table's snapshots, newest first."""
    ns, name = table.split(".")
    sql = (
        "SELECT to_unixtime(committed_at) * 1000 "
        f'FROM iceberg."{ns}"."{name}$snapshots" ORDER BY committed_at DESC'
    )
    return [round(r[0]) for r in m.query(sql, table)]


def files_on_disk(location: Path) -> set[str]:
    return {p.name for p in (location / "data").rglob("*") if p.is_file() and p.suffix != ".crc"}


def referenced_files(settings: StackSettings, table: str) -> set[str]:
    """Data and delete files that any kept snapshot reads (Iceberg's manifests)."""
    t = catalog(settings).load_table(table)
    names = set()
    for snap in t.snapshots():
        for manifest in snap.manifests(t.io):
            for entry in manifest.fetch_manifest_entry(t.io, discard_deleted=True):
                names.add(Path(entry.data_file.file_path).name)
    return names


def plant_orphans(location: Path) -> tuple[Path, Path]:
    """A file no snapshot references, two hours old (removed), and a fresh one (kept: it
    could belong to a commit in flight)."""
    folder = location / "data"
    old, fresh = folder / "orphan-old.parquet", folder / "orphan-fresh.parquet"
    for p in (old, fresh):
        p.write_bytes(b"PAR1 not a real file PAR1")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    return old, fresh


def test_maintenance_bounds_1000_upsert_snapshots(trino_server: StackSettings, silver: str):  # noqa: F811
    settings = trino_server
    maint = MaintenanceSettings(
        tables=[silver], retention="0s", keep_last=KEEP, orphan_retention="1h"
    )
    m = Maintainer(maint, settings, ServingSettings(trino_url=""))
    location = Path(catalog(settings).load_table(silver).location().removeprefix("file:"))
    commits: list[Commit] = []
    for r in range(ROUNDS):
        made = commit_upserts(
            settings, silver, PER_ROUND, first=r * PER_ROUND, rows=ROWS, revisions=REVISIONS
        )
        commits += made
        before = rows(m, silver)
        # Trino applies the equality deletes: the last revision of every window, once.
        minute = timedelta(minutes=1)
        got = {(w[0], (w[1].replace(tzinfo=UTC) - DAY) // minute): w[2] for w in before}
        want = expected_revisions(len(commits), ROWS, REVISIONS)
        assert len(before) == len(want) and got == want
        # Inside the retention: the newest three; outside: this round's first.
        inside = {c.snapshot_id: rows(m, silver, c.snapshot_id) for c in made[-3:]}
        outside = made[0].snapshot_id
        old_orphan, fresh_orphan = plant_orphans(location)

        report = m.maintain(silver)

        assert rows(m, silver) == before, "maintenance changed what the table reads"
        for sid, expected in inside.items():
            assert rows(m, silver, sid) == expected, f"time travel to {sid} changed"
        with pytest.raises(trino.exceptions.TrinoUserError, match="snapshot"):
            rows(m, silver, outside)
        assert report.after is not None
        # Equality deletes folded: one data file, and any delete file Iceberg still lists is
        # not newer than it (an equality delete applies only to data files of lower sequence
        # numbers), so no delete is applied on read any more.
        assert report.after.data_files == 1, report
        newest_delete, oldest_data = sequence_numbers(settings, silver)
        assert newest_delete <= oldest_data, (newest_delete, oldest_data, report)
        assert report.after.delete_files <= report.before.delete_files // 10, report
        assert report.after.records == len(want)

        # At least KEEP snapshots, and no more than those committed in the margin before
        # the KEEP-th newest (Maintainer.expire_threshold).
        kept = kept_snapshots(m, silver)
        kth = kept[KEEP - 1]
        slack = sum(1 for c in commits if kth - KEEP_MARGIN_MS - 1000 <= c.timestamp_ms < kth)
        assert KEEP <= len(kept) <= KEEP + slack, (len(kept), slack)

        # Orphans: the old one is gone, the fresh one stays; every other file on disk is
        # read by a kept snapshot, and those are this round's files plus two compactions
        assert not old_orphan.exists() and fresh_orphan.exists()
        fresh_orphan.unlink()
        on_disk = files_on_disk(location)
        assert on_disk == referenced_files(settings, silver)
        # (+ the few delete files each optimize leaves dangling: 4 per run here)
        assert len(on_disk) <= 2 * PER_ROUND + 2 + 16, len(on_disk)
        assert report.before.snapshots >= PER_ROUND
    assert len(commits) == ROUNDS * PER_ROUND
