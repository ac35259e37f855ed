"""The run lock: an advisory ``flock`` on ``<db>.lock`` held for a whole run.

The kernel drops a flock when its process dies, so a lock left by a killed run is never stale.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable
from pathlib import Path

from triage.errors import StateError, StateLockedError


class RunLock:
    def __init__(self, db_path: Path, *, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        self.path = Path(str(db_path) + ".lock")
        self._sleep = sleep
        self._clock = clock
        self._fd: int | None = None

    def acquire(self, wait_s: float | None = None) -> None:
        """Take the lock; without ``wait_s`` fail at once when another run holds it."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as err:
            raise StateError(f"cannot create lock file {self.path}: {err.strerror}") from None
        deadline = None if wait_s is None else self._clock() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if deadline is None or self._clock() >= deadline:
                    holder = _read_holder(fd)
                    os.close(fd)
                    waited = "" if wait_s is None else f" after waiting {wait_s:g}s"
                    raise StateLockedError(
                        f"state {self.path.with_suffix('')} is locked by another run{holder}{waited}; "
                        "use --wait to queue behind it"
                    ) from None
                self._sleep(0.5)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""
