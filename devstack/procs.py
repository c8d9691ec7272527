"""Background processes of the local stack: start in their own process group, track by pid
file, health-wait with a timeout, and stop the whole group (SIGTERM, then SIGKILL).

Every JVM we start carries `-Dcandleflow.stack=<data_dir>` so that `down` can also find a
stray process of ours (e.g. after a lost pid file) without touching anybody else's Java.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MARKER_PROP = "candleflow.stack"


class StackError(RuntimeError):
    """A stack process could not start or a precondition failed (message says what and why)."""


def marker(data_dir: Path) -> str:
    return f"-D{MARKER_PROP}={data_dir.resolve()}"


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            return exc.errno in (errno.EADDRINUSE, errno.EACCES)
        return False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped) is not alive for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []


def pids_with_marker(data_dir: Path) -> list[int]:
    """Every live process whose command line carries our marker for this data dir."""
    want = marker(data_dir)
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and want in cmdline(int(entry.name)):
            out.append(int(entry.name))
    return out


def tail(path: Path, lines: int = 30) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64_000))
            text = f.read().decode(errors="replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Proc:
    """One managed process: its pid file and log live in the stack's data dir."""

    name: str
    pid_file: Path
    log_file: Path

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None
        return pid if alive(pid) else None

    def start(
        self, argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> int:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            log.write(
                f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} "
                f"starting {self.name}: {' '.join(argv)}\n".encode()
            )
            log.flush()
            # start_new_session: own process group, so stop() reaches all its children and
            # Ctrl-C in the terminal that ran `stack up` does not kill the stack.
            p = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        self.pid_file.write_text(f"{p.pid}\n")
        return p.pid

    def wait_healthy(self, check: Callable[[], bool], timeout: float, what: str) -> float:
        """Poll `check` until true (returns the seconds waited); fail with the log tail if the
        process dies or time runs out."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        while True:
            pid = self.pid()
            if pid is None:
                raise StackError(
                    f"{self.name} died while starting ({what}); last lines of {self.log_file}:\n"
                    f"{tail(self.log_file)}"
                )
            try:
                if check():
                    return time.monotonic() - t0
            except Exception:  # noqa: BLE001 - a not-yet-ready service raises all sorts
                pass
            if time.monotonic() > deadline:
                raise StackError(
                    f"{self.name} not healthy after {timeout:.0f} s ({what}); last lines of "
                    f"{self.log_file}:\n{tail(self.log_file)}"
                )
            time.sleep(0.5)

    def stop(self, grace: float = 20.0) -> bool:
        """SIGTERM the process group, SIGKILL after `grace` seconds. True if it was running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        kill_group(pid, grace)
        self.pid_file.unlink(missing_ok=True)
        return True


def kill_group(pid: int, grace: float) -> None:
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    # If it was our child (a test session started it), reap it so no zombie stays behind.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def http_json(
    url: str, timeout: float = 2.0, method: str = "GET", body: object | None = None
) -> object:
    """GET (or `method`) a local JSON endpoint and decode its answer."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - local URL
        return json.loads(resp.read() or b"null")
