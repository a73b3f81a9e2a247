"""Claims that die with their holder: ``flock`` lock files naming their owner, and stale temporary files.

A lock taken with :func:`claim` is released by the kernel the moment its process dies,
so a point (or a sweep) is never held by a dead owner and a new claimant takes it over
without guessing; the file holds the owner's pid and host for messages. Temporary
files are named after their writer (:func:`temp_name`) so :func:`remove_stale_temps`
can remove those whose writer is gone.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import re
import signal
import socket
import time
from pathlib import Path
from typing import IO, Any

HOST = socket.gethostname()
FOREIGN_STALE_S = 24 * 3600  # a temporary file of another host is removed only when this old
_TEMP = re.compile(r"^\..+\.(?P<host>[^.]+)-(?P<pid>\d+)\.(?:tmp|part)$")
_OLD_TEMP = re.compile(r"^\..+\.(?P<pid>\d+)\.tmp$|^\..+\.[A-Za-z0-9_]{8}\.part$")  # names used before


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def temp_name(path: str | Path, suffix: str = "tmp") -> Path:
    """A temporary name next to ``path`` that names this host and process: ``.NAME.HOST-PID.SUFFIX``."""
    path = Path(path)
    host = HOST.split(".")[0] or "host"
    return path.with_name(f".{path.name}.{host}-{os.getpid()}.{suffix}")


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Remove the temporary files in ``folder`` whose writer is dead; return them."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    host = HOST.split(".")[0] or "host"
    for path in folder.iterdir():
        m = _TEMP.match(path.name)
        if m:
            dead = (
                not pid_alive(int(m["pid"]))
                if m["host"] == host
                else time.time() - path.stat().st_mtime > FOREIGN_STALE_S
            )
        else:
            old = _OLD_TEMP.match(path.name)
            if not old:
                continue
            dead = not pid_alive(int(old["pid"])) if old["pid"] else time.time() - path.stat().st_mtime > 3600
        if dead:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


class Held:
    """A lock this process holds: the open file whose ``flock`` the kernel drops when the process dies."""

    def __init__(self, path: Path, handle: IO[str]):
        self.path, self.handle = path, handle

    def release(self) -> None:
        """Unlink the lock file, then drop the lock (in this order, so no one locks a file that is going)."""
        if self.handle.closed:
            return
        self.path.unlink(missing_ok=True)
        self.handle.close()

    def __enter__(self) -> "Held":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def claim(path: str | Path, info: dict[str, Any] | None = None) -> Held | None:
    """Take the lock at ``path`` unless a live process holds it; ``None`` when one does.

    The file then holds this process's pid and host (and ``info``). A lock left by a dead
    process is free: the kernel released it when that process died.
    """
    path = Path(path)
    while True:
        handle = open(path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return None
        # The holder we waited for may have unlinked the file before releasing it: then
        # this lock is on a file no one else will open; start again on the current one.
        try:
            same = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        handle.close()
    handle.seek(0)
    handle.truncate()
    handle.write(
        json.dumps({"pid": os.getpid(), "host": HOST, "since": time.strftime("%Y-%m-%dT%H:%M:%S"), **(info or {})})
    )
    handle.flush()
    return Held(path, handle)


def held(path: str | Path) -> bool:
    """Whether a live process holds the lock at ``path`` (a missing file is not held)."""
    try:
        handle = open(path)
    except FileNotFoundError:
        return False
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        return False


def holder(path: str | Path) -> dict[str, Any]:
    """What the lock file says about its holder (empty when unreadable)."""
    try:
        return json.loads(Path(path).read_text() or "{}")
    except (OSError, ValueError):
        return {}


def die_with_parent(parent: int | None = None) -> None:
    """Ask Linux to SIGKILL this process when its parent dies (prctl PDEATHSIG); exit if it already has."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG = 1, SIGKILL = 9
    except (OSError, AttributeError):  # not Linux: the sweep's watchdog still stops the point
        return
    if parent is not None and os.getppid() != parent:
        os._exit(1)


def worker_start(parent: int, queue: Any) -> None:
    """Start of a local sweep worker: die with the sweep ``parent``, then take this worker's environment.

    A pool initializer in this light module, so a worker is tied to its sweep before it
    imports anything heavy; the environment (its GPU, its CPU threads) comes from ``queue``.
    """
    die_with_parent(parent)
    # Ctrl-C reaches the whole terminal's process group: the sweep alone handles it and lets its
    # points know through its lock (their kernels run in sessions of their own and never see it).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.update(queue.get())
