"""Java and the cached JVM jars (resolved by scripts/setup_jars.sh into StackSettings.jars_dir)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from candleflow.config import StackSettings

MIN_JAVA = 17


class JavaError(RuntimeError):
    pass


def java_bin() -> str:
    """The `java` to run: $JAVA_HOME/bin/java, else the one on PATH; at least Java 17."""
    home = os.environ.get("JAVA_HOME")
    candidate = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not candidate or not Path(candidate).exists():
        raise JavaError(
            f"java not found (JAVA_HOME={home or 'unset'}, none on PATH): install a JDK "
            f"{MIN_JAVA}+, e.g. `apt-get install openjdk-17-jdk-headless`"
        )
    out = subprocess.run([candidate, "-version"], capture_output=True, text=True, timeout=30)
    match = re.search(r'version "(\d+)', out.stderr + out.stdout)
    if not match or int(match.group(1)) < MIN_JAVA:
        raise JavaError(f"{candidate} is not Java {MIN_JAVA}+: {out.stderr.strip()[:200]}")
    return candidate


def jars(settings: StackSettings, group: str) -> list[Path]:
    """The jars of one group (flink, kafka) or raise with how to get them."""
    folder = settings.jars_dir / group
    found = sorted(folder.glob("*.jar"))
    if not found:
        raise FileNotFoundError(
            f"no jars in {folder}: run `scripts/setup_jars.sh` (or `make setup-jars`) first"
        )
    return found


def classpath(paths: list[Path]) -> str:
    return os.pathsep.join(str(p) for p in paths)


def flink_connector_jars(settings: StackSettings | None = None) -> list[Path]:
    """Kafka connector, avro-confluent format, Iceberg runtime, Hadoop client, sqlite-jdbc."""
    return jars(settings or StackSettings(), "flink")


def client_classpath_env(settings: StackSettings | None = None) -> dict[str, str]:
    """Environment that puts the connector jars on the PyFlink gateway JVM's classpath.

    Set it (os.environ.update) before the first TableEnvironment is created. The client can
    then plan Kafka/Iceberg/Avro tables without shipping the jars as `pipeline.jars`, which
    is what a job submitted to the stack's session cluster needs (the cluster has them).
    """
    return {
        "HADOOP_CLASSPATH": classpath(flink_connector_jars(settings)),
        # Without this PyFlink treats a not-yet-configured environment as local and points
        # the job's Python workers at a loopback server inside this client process, which
        # is gone once the client exits: the TaskManagers must start their own workers.
        "_python_worker_execution_mode": "process",
    }


def registry_runner(settings: StackSettings) -> Path:
    found = sorted((settings.jars_dir / "registry").glob("apicurio-registry-app-*-runner.jar"))
    if not found:
        raise FileNotFoundError(
            f"Apicurio registry not found in {settings.jars_dir / 'registry'}: run "
            "`scripts/setup_jars.sh` (or `make setup-jars`) first"
        )
    return found[-1]


# Set in the client's os.environ by an in-process (loopback) PyFlink job: its Python worker
# does os.environ.update() with the gateway's environment. A session cluster started after
# such a job would inherit them, and every Python UDF of every later job would then try to
# reach that dead loopback server ("Failed to create stage bundle factory", restarting for
# ever).
_PYFLINK_CLIENT_VARS = (
    "PYTHON_LOOPBACK_SERVER_ADDRESS",
    "PYFLINK_GATEWAY_DISABLED",
    "PYFLINK_GATEWAY_PORT",
    "_PYFLINK_CONN_INFO_PATH",
    "_PYTHON_WORKER_MEMORY_LIMIT",
)


def flink_process_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment for the Flink cluster's processes: ours, less PyFlink's client state."""
    return {k: v for k, v in environ.items() if k not in _PYFLINK_CLIENT_VARS}
