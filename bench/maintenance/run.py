"""A simulated span of 5 s checkpoints on silver.candles, before and after maintenance.

One commit per checkpoint (12 per minute), each an upsert of the 1-minute candles of ROWS
symbols in the shape of Flink's upsert sink (a data file and an equality-delete file in a
RowDelta, tests/lakehouse/UpsertCommits.java); a window is rewritten 12 times, its last
revision wins. Then `candleflow lakehouse maintain` (Trino's optimize, optimize_manifests,
expire_snapshots, remove_orphan_files) with a retention of 0s and keep-last 100 (so what
is left is what a run keeps at the end of a retention window). The kept snapshots still
reference the span's small files, so a second run follows keep-last more checkpoints
("after_next_run"): the steady state of a scheduled job.

Measured before and after: snapshots, data and delete files of the current snapshot, all
files and bytes under the table's location (data + metadata), the size of the current
metadata.json, and the wall time of a Trino query over the whole span (per-symbol OHLCV
aggregate; median of --reps runs after one warm-up). Also each maintenance step's time.

Runs on its own catalog and Trino (CANDLEFLOW_DATA_DIR, CANDLEFLOW_TRINO_PORT: set your
own), started if needed and stopped at the end if the bench started it:

    CANDLEFLOW_DATA_DIR=/tmp/cf-maint CANDLEFLOW_TRINO_PORT=34080 \\
      /work/wt/heavy -x .venv/bin/python -m bench.maintenance.run --hours 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from pathlib import Path

from adapters.catalog import catalog
from candleflow.config import StackSettings
from devstack import trino as trino_server
from devstack.upsert_commits import commit_upserts
from jobs.candle_iceberg import ensure_silver_table
from lakehouse.maintain import Maintainer
from lakehouse.settings import MaintenanceSettings
from serving.settings import ServingSettings

CHECKPOINTS_PER_HOUR = 720  # 5 s
QUERY = (
    "SELECT symbol, count(*), min(low), max(high), sum(volume), max(revision) "
    "FROM {ref} GROUP BY symbol ORDER BY symbol"
)


def disk(location: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for sub in ("data", "metadata"):
        files = [p for p in (location / sub).rglob("*") if p.is_file()]
        out[f"disk_{sub}_files"] = len(files)
        out[f"disk_{sub}_bytes"] = sum(p.stat().st_size for p in files)
    return out


def measure(
    settings: StackSettings, m: Maintainer, table: str, location: Path, reps: int
) -> dict[str, object]:
    ns, name = table.split(".")
    ref = f'iceberg."{ns}"."{name}"'
    m.query(QUERY.format(ref=ref))  # warm-up: metadata cache, JIT
    times, result = [], None
    for _ in range(reps):
        t0 = time.perf_counter()
        result = m.query(QUERY.format(ref=ref))
        times.append(time.perf_counter() - t0)
    stats = m.stats(table)
    current = catalog(settings).load_table(table).metadata_location
    return {
        **vars(stats),
        **disk(location),
        "metadata_json_bytes": Path(current.removeprefix("file:")).stat().st_size,
        "query_s_median": statistics.median(times),
        "query_s_all": [round(t, 3) for t in times],
        "result": [[str(v) for v in row] for row in result or []],
    }


def _ratio(before: dict, after: dict, what: str) -> float:
    total = [d[f"disk_data_{what}"] + d[f"disk_metadata_{what}"] for d in (before, after)]
    return round(total[0] / total[1], 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hours", type=float, default=24.0, help="simulated hours (720 commits/h)")
    ap.add_argument("--rows", type=int, default=4, help="candles upserted per checkpoint")
    ap.add_argument("--keep-last", type=int, default=100)
    ap.add_argument("--reps", type=int, default=5, help="timed runs of the query")
    args = ap.parse_args()

    settings = StackSettings()
    pid = trino_server.start(settings)
    try:
        ns = f"bench_maint_{uuid.uuid4().hex[:6]}"
        table = f"{ns}.candles"
        location = Path(ensure_silver_table(settings, ns).location().removeprefix("file:"))
        commits = int(args.hours * CHECKPOINTS_PER_HOUR)
        t0 = time.perf_counter()
        commit_upserts(settings, table, commits, rows=args.rows, revisions=12)
        commit_s = time.perf_counter() - t0
        maint = MaintenanceSettings(
            tables=[table], retention="0s", keep_last=args.keep_last, orphan_retention="1s"
        )
        m = Maintainer(maint, settings, ServingSettings(trino_url=""))
        before = measure(settings, m, table, location, args.reps)
        time.sleep(1.5)  # orphan_retention 1s: every unreferenced file is older than that
        report = m.maintain(table)
        after = measure(settings, m, table, location, args.reps)
        assert before.pop("result") == after.pop("result"), "maintenance changed the result"
        # The next keep-last checkpoints, and the next run: now every kept snapshot is newer
        # than the first compaction, so the span's small files and deletes expire with them.
        commit_upserts(settings, table, args.keep_last, first=commits, rows=args.rows, revisions=12)
        time.sleep(1.5)
        report2 = m.maintain(table)
        steady = measure(settings, m, table, location, args.reps)
        steady.pop("result")
        out = {
            "commits": commits,
            "hours": args.hours,
            "rows_per_commit": args.rows,
            "commit_s": round(commit_s, 1),
            "maintenance_s": {k: round(v, 2) for k, v in report.seconds.items()},
            "next_maintenance_s": {k: round(v, 2) for k, v in report2.seconds.items()},
            "before": before,
            "after": after,
            "after_next_run": steady,
            "ratios_before_over_after": {
                k: round(before[k] / after[k], 2)  # type: ignore[operator]
                for k in ("snapshots", "data_files", "delete_files", "manifests", "query_s_median")
                if after.get(k)
            }
            | {
                "files_on_disk": _ratio(before, after, "files"),
                "bytes_on_disk": _ratio(before, after, "bytes"),
            },
        }
        print(json.dumps(out, indent=2))
        catalog(settings).purge_table(table)
    finally:
        if pid:
            trino_server.stop(settings)


if __name__ == "__main__":
    main()
