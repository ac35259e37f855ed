"""The run lock: an advisory ``flock`` on ``<db>.lock`` held for a whole run.

The kernel drops a flock when its process dies, so a lock left by a killed run is never stale.

The lock is only as good as the filesystem: SQLite's WAL is not safe across hosts, and on NFS
(v3 ``nolock``, or some clients) or other network/cluster filesystems ``flock`` may lock on
this host only, so two CronJob pods on a ReadWriteMany volume could both write. Before a run
trusts the lock it checks the filesystem type of the state's folder (``/proc/mounts``) and
that a second open of the lock file is really excluded; a network filesystem is refused
(exit 5) unless ``state.allow_network_fs`` accepts the risk, and then it is said loudly.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

from triage.errors import StateError, StateLockedError

log = logging.getLogger(__name__)

# Filesystems shared between hosts, where a local flock does not exclude another host's writer.
NETWORK_FILESYSTEMS = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "afs", "ceph", "glusterfs", "lustre", "gpfs", "beegfs",
    "ocfs2", "gfs2", "fuse.sshfs", "fuse.glusterfs", "fuse.s3fs", "fuse.gcsfuse", "fuse.juicefs",
    "fuse.cephfs", "fuse.rclone", "fuse.goofys", "fuse.mountpoint-s3",
})


class RunLock:
    def __init__(self, db_path: Path, *, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, allow_network_fs: bool = False,
                 mounts: Path = Path("/proc/mounts")):
        self.path = Path(str(db_path) + ".lock")
        self._sleep = sleep
        self._clock = clock
        self._allow_network_fs = allow_network_fs
        self._mounts = mounts
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
        try:
            self._check_trust()
        except StateError:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def _check_trust(self) -> None:
        """Refuse a lock that cannot keep a second writer out (see the module docstring)."""
        state = self.path.with_suffix("")
        if not _flock_excludes(self.path):
            raise StateError(f"state {state}: flock on {self.path} does not exclude a second open on this "
                             "filesystem, so two runs could write at once; put the state on a local disk "
                             "(a ReadWriteOnce volume)")
        mount_point, fstype = filesystem_of(self.path.parent, _read_text(self._mounts))
        if fstype not in NETWORK_FILESYSTEMS:
            return
        problem = (f"state {state} is on a network filesystem ({fstype} at {mount_point}): its lock may hold on "
                   "this host only and SQLite is not safe across hosts; use a ReadWriteOnce single-writer volume")
        if not self._allow_network_fs:
            raise StateError(problem + " (or set state.allow_network_fs = true to accept the risk)")
        log.warning("UNSAFE: %s; state.allow_network_fs is set, continuing", problem)

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


def filesystem_of(path: Path, mounts_text: str) -> tuple[str, str]:
    """(mount point, filesystem type) of the mount holding ``path``, from /proc/mounts text."""
    target = os.path.realpath(path)
    best = ("/", "")
    for line in mounts_text.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        # /proc/mounts escapes space, tab, newline and backslash in octal (\040 ...)
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[1])
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best[0]):
            best = (point, fields[2])
    return best


def _flock_excludes(path: Path) -> bool:
    """Whether a second open file description of the (held) lock file is refused the lock."""
    try:
        probe = os.open(path, os.O_RDWR)
    except OSError:
        return True  # cannot tell; the first open worked, so do not refuse on this
    try:
        fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return True
    else:
        fcntl.flock(probe, fcntl.LOCK_UN)
        return False
    finally:
        os.close(probe)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""  # no mount table (not Linux): nothing to check against
