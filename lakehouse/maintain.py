"""Iceberg table maintenance through Trino's Iceberg connector (`ALTER TABLE ... EXECUTE`).

Every file operation is Iceberg's own, run by Trino: `optimize` (a RewriteFiles commit that
reads the rows with their deletes applied, so equality deletes are folded into the new data
files), `optimize_manifests`, `expire_snapshots` and `remove_orphan_files`. This module only
chooses the order, the arguments and the retries, and measures the table before and after.

Why Trino and not Iceberg's Flink maintenance API: see docs/operations.md "Table maintenance".

Concurrency with the streaming writers: Iceberg commits are optimistic. A Flink checkpoint
commit that loses the race to a maintenance commit retries on the new metadata (Iceberg's
`commit.retry.*`), and a RowDelta never conflicts with a rewrite or an expiry. A maintenance
step that loses a race (an `optimize` whose files got new deletes meanwhile) fails
instead, and is run again here, up to `attempts` times: the stream always wins.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import trino

from candleflow.config import StackSettings
from lakehouse.settings import MaintenanceSettings
from serving import history_trino as trino_server
from serving.history_trino import connect_args
from serving.settings import ServingSettings

log = logging.getLogger("candleflow.lakehouse")

STEPS = ("optimize", "optimize_manifests", "expire_snapshots", "remove_orphan_files")
# Trino error names that mean "another commit got there first": the step is retried.
_CONFLICTS = ("ICEBERG_COMMIT_ERROR", "TRANSACTION_CONFLICT")
# Time between reading the keep_last-th snapshot's age and Trino starting the expiry: at
# most this many snapshots committed in the margin before it are kept beyond keep_last.
KEEP_MARGIN_MS = 500


class MaintenanceError(RuntimeError):
    """A table could not be maintained; the message says which table, step and why."""


@dataclass(frozen=True)
class TableStats:
    """What a table holds: snapshots, and the files its current snapshot reads."""

    snapshots: int
    data_files: int
    delete_files: int
    bytes: int
    manifests: int
    records: int

    def row(self) -> list[str]:
        return [
            f"{self.snapshots:,}",
            f"{self.data_files:,}",
            f"{self.delete_files:,}",
            f"{self.manifests:,}",
            f"{self.bytes / 1e6:,.2f}",
        ]


@dataclass
class TableReport:
    table: str
    before: TableStats
    after: TableStats | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    retries: dict[str, int] = field(default_factory=dict)


def step_sql(
    table: str, step: str, settings: MaintenanceSettings, threshold: str | None = None
) -> str:
    """The `ALTER TABLE ... EXECUTE` statement of one step. `threshold` replaces the
    retention of expire_snapshots (widened to keep the last `keep_last`, see
    Maintainer.expire_threshold)."""
    ref = _ref(table)
    if step == "optimize":
        return f"ALTER TABLE {ref} EXECUTE optimize(file_size_threshold => '{settings.small_file}')"
    if step == "optimize_manifests":
        return f"ALTER TABLE {ref} EXECUTE optimize_manifests"
    if step == "expire_snapshots":
        return (
            f"ALTER TABLE {ref} EXECUTE expire_snapshots("
            f"retention_threshold => '{threshold or settings.retention}')"
        )
    if step == "remove_orphan_files":
        return (
            f"ALTER TABLE {ref} EXECUTE remove_orphan_files("
            f"retention_threshold => '{settings.orphan_retention}')"
        )
    raise ValueError(f"unknown maintenance step {step!r}: one of {', '.join(STEPS)}")


def _conflict(exc: trino.exceptions.TrinoQueryError) -> bool:
    """A lost commit race: Iceberg's CommitFailedException or ValidationException (e.g. an
    optimize whose data files got new deletes meanwhile), however Trino names it."""
    text = f"{exc.error_name} {exc.message}".lower()
    return exc.error_name in _CONFLICTS or any(
        w in text for w in ("cannot commit", "commitfailed", "validationexception", "conflict")
    )


def _ref(table: str) -> str:
    schema, name = table.split(".", 1)
    return f'{trino_server.CATALOG}."{schema}"."{name}"'


class Maintainer:
    """Runs the maintenance steps on tables over one Trino connection."""

    def __init__(
        self,
        settings: MaintenanceSettings,
        stack: StackSettings | None = None,
        serving: ServingSettings | None = None,
    ):
        self.settings = settings
        self._args = connect_args(stack or StackSettings(), serving or ServingSettings())
        self.where = f"{self._args['http_scheme']}://{self._args['host']}:{self._args['port']}"

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        # Trino refuses retentions under its catalog's minimums (7d by default) unless the
        # session lowers them: the configured retention is the guard that counts.
        conn = trino.dbapi.connect(
            **self._args,
            catalog=trino_server.CATALOG,
            timezone="UTC",
            session_properties={
                f"{trino_server.CATALOG}.expire_snapshots_min_retention": self.settings.retention,
                f"{trino_server.CATALOG}.remove_orphan_files_min_retention": (
                    self.settings.orphan_retention
                ),
            },
        )
        try:
            yield conn.cursor()
        except trino.exceptions.TrinoQueryError:
            raise
        except (OSError, trino.exceptions.TrinoConnectionError) as exc:
            raise MaintenanceError(f"cannot reach Trino at {self.where}: {exc}") from None
        finally:
            conn.close()

    def query(self, sql: str, table: str = "") -> list[list[Any]]:
        with self._cursor() as cur:
            try:
                cur.execute(sql)
                return list(cur.fetchall())
            except trino.exceptions.TrinoQueryError as exc:
                if exc.error_name in ("TABLE_NOT_FOUND", "SCHEMA_NOT_FOUND"):
                    raise MaintenanceError(
                        f"{table or sql}: no such table in Trino's {trino_server.CATALOG!r} "
                        f"catalog at {self.where}"
                    ) from None
                raise

    def stats(self, table: str) -> TableStats:
        """Snapshots (all kept), files and bytes of the current snapshot, its manifests."""
        schema, name = table.split(".", 1)
        meta = f'{trino_server.CATALOG}."{schema}"."{name}$%s"'
        snaps = self.query(f"SELECT count(*) FROM {meta % 'snapshots'}", table)[0][0]
        files = self.query(
            "SELECT count_if(content = 0), count_if(content <> 0), "
            "coalesce(sum(file_size_in_bytes), 0), coalesce(sum(if(content = 0, record_count)), 0) "
            f"FROM {meta % 'files'}",
            table,
        )[0]
        manifests = self.query(f"SELECT count(*) FROM {meta % 'manifests'}", table)[0][0]
        return TableStats(
            snapshots=int(snaps),
            data_files=int(files[0]),
            delete_files=int(files[1]),
            bytes=int(files[2]),
            records=int(files[3]),
            manifests=int(manifests),
        )

    def expire_threshold(self, table: str) -> str | None:
        """expire_snapshots' retention_threshold: the configured retention, widened to the
        age of the `keep_last`-th newest snapshot (plus KEEP_MARGIN_MS, the time until Trino
        starts the expiry), so the last `keep_last` snapshots are never expired. None: the
        table has no more than `keep_last` snapshots, nothing may expire.

        Trino 476's expire_snapshots has no `retain_last` argument, and Iceberg's table
        property `history.expire.min-snapshots-to-keep` cannot be set through Trino unless
        its catalog allows extra properties: both ages are read on Trino's own clock.
        """
        schema, name = table.split(".", 1)
        rows = self.query(
            "SELECT date_diff('millisecond', committed_at, current_timestamp) "
            f'FROM {trino_server.CATALOG}."{schema}"."{name}$snapshots" '
            f"ORDER BY committed_at DESC OFFSET {self.settings.keep_last - 1} LIMIT 1",
            table,
        )
        if not rows:
            return None
        keep_ms = int(rows[0][0]) + KEEP_MARGIN_MS
        retention_ms = int(self.settings.retention_td.total_seconds() * 1000)
        return f"{max(keep_ms, retention_ms)}ms"

    def run_step(self, table: str, step: str) -> int:
        """One step; a commit conflict is retried. Returns the retries it took (-1: the step
        had nothing to do)."""
        for attempt in range(self.settings.attempts):
            threshold = None
            if step == "expire_snapshots":
                threshold = self.expire_threshold(table)
                if threshold is None:
                    return -1
            sql = step_sql(table, step, self.settings, threshold)
            try:
                self.query(sql, table)
                return attempt
            except trino.exceptions.TrinoQueryError as exc:
                retry = _conflict(exc) and attempt + 1 < self.settings.attempts
                log.warning(
                    "maintenance step failed",
                    extra={"table": table, "step": step, "error": exc.error_name, "retry": retry},
                )
                if not retry:
                    raise MaintenanceError(
                        f"{table}: {step} failed after {attempt + 1} attempt(s): "
                        f"{exc.error_name}: {exc.message}"
                    ) from None
                time.sleep(min(2.0**attempt, 10.0))
        raise AssertionError("unreachable")

    def maintain(
        self,
        table: str,
        steps: tuple[str, ...] = STEPS,
        on_step: Callable[[str, str], None] | None = None,
    ) -> TableReport:
        """Every step on one table, in order, with the table's figures before and after."""
        report = TableReport(table, self.stats(table))
        for step in steps:
            if on_step is not None:
                on_step(table, step)
            t0 = time.monotonic()
            retries = self.run_step(table, step)
            report.seconds[step] = time.monotonic() - t0
            report.retries[step] = retries
            log.info(
                "maintenance step done",
                extra={"table": table, "step": step, "seconds": report.seconds[step]},
            )
        report.after = self.stats(table)
        return report
