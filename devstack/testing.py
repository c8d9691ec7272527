"""Test support for the shared local stack: test settings, session leases, unique names.

Several pytest sessions (and engineers) share one test stack. A session that finds it healthy
reuses it; one that finds it down starts it under a file lock. Each session holds a lease
(a file named after its pid); at the end, the stack is stopped only by a session that
started it and only when no other live session holds a lease, unless
CANDLEFLOW_TEST_KEEP_STACK=1 asks to leave it running.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from candleflow.config import StackSettings
from devstack.procs import alive
from devstack.stack import Stack


def stack_test_settings() -> StackSettings:
    """The test stack: its own ports and data dir, overridable with CANDLEFLOW_TEST_*."""
    env = os.environ.get
    return StackSettings(
        data_dir=Path(env("CANDLEFLOW_TEST_DATA_DIR", "/tmp/candleflow-test-stack")),
        kafka_port=int(env("CANDLEFLOW_TEST_KAFKA_PORT", "29092")),
        kafka_controller_port=int(env("CANDLEFLOW_TEST_KAFKA_CONTROLLER_PORT", "29093")),
        kafka_sasl_port=int(env("CANDLEFLOW_TEST_KAFKA_SASL_PORT", "29094")),
        kafka_sasl_ssl_port=int(env("CANDLEFLOW_TEST_KAFKA_SASL_SSL_PORT", "29095")),
        registry_port=int(env("CANDLEFLOW_TEST_REGISTRY_PORT", "28081")),
        flink_rest_port=int(env("CANDLEFLOW_TEST_FLINK_REST_PORT", "28088")),
        # Never point tests at a remote cluster configured for the services.
        kafka_bootstrap="",
        registry="",
    )


def unique_name(prefix: str, sep: str = "-") -> str:
    return f"{prefix}{sep}{uuid.uuid4().hex[:10]}"


@contextlib.contextmanager
def stack_lock(settings: StackSettings) -> Iterator[None]:
    """Serialize start/stop of the shared test stack across processes."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with (settings.data_dir / ".lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class Lease:
    """A claim on the shared stack: a file "<pid>.<tag>" (one per fixture of a session)."""

    def __init__(self, settings: StackSettings, tag: str = "stack") -> None:
        self.dir = settings.data_dir / "leases"
        self.path = self.dir / f"{os.getpid()}.{tag}"

    def take(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path.touch()

    def release(self) -> None:
        self.path.unlink(missing_ok=True)

    def others(self) -> list[Path]:
        """Leases held by other fixtures or live sessions (stale ones are removed)."""
        out = []
        for p in self.dir.glob("*"):
            pid = p.name.split(".", 1)[0]
            if p == self.path or not pid.isdigit():
                continue
            if alive(int(pid)):
                out.append(p)
            else:
                p.unlink(missing_ok=True)
        return out


def acquire_stack(flink: bool = False) -> tuple[Stack, bool]:
    """The shared test stack, started if needed; returns (stack, started_here)."""
    stack = Stack(stack_test_settings())
    with stack_lock(stack.settings):
        Lease(stack.settings, "flink" if flink else "stack").take()
        if stack.healthy(flink=flink):
            stack._bootstrap()  # topics/contracts/namespaces, in case it was started by hand
            return stack, False
        stack.up(flink=flink)
        return stack, True


def release_stack(stack: Stack, started: bool, services: str = "all") -> None:
    """Drop our lease; stop what we started if nobody else uses the stack."""
    with stack_lock(stack.settings):
        lease = Lease(stack.settings, "flink" if services == "flink" else "stack")
        lease.release()
        keep = os.environ.get("CANDLEFLOW_TEST_KEEP_STACK", "") not in ("", "0")
        # Flink is stopped when no other session uses Flink; the whole stack when no other
        # fixture or session holds any lease.
        others = lease.others()
        if services == "flink":
            others = [p for p in others if p.name.endswith(".flink")]
        if started and not keep and not others:
            if services == "flink":
                for name in ("flink-taskmanager", "flink-jobmanager"):
                    stack.procs[name].stop()
            else:
                stack.down()
