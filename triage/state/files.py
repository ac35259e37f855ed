"""Opening and creating the state file: a new one appears whole or not at all."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sqlite_utils import Database

from triage.errors import StateError
from triage.state.migrations import migrations

SQLITE_HEADER = b"SQLite format 3\x00"


def connect(path: Path) -> Database:
    conn = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
    db = Database(conn)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    return db


STALE_BUILD_S = 600


def create(path: Path) -> None:
    """A new state file appears whole or not at all: built and migrated in a private file beside
    it, synced, then linked into place. A kill at any instant leaves no state file or a valid one
    (at worst a stray ``.<name>.new-<pid>`` build file, removed by a later creation)."""
    import time

    for stale in path.parent.glob(f".{path.name}.new-*"):
        try:
            if time.time() - stale.stat().st_mtime > STALE_BUILD_S:
                stale.unlink()
        except OSError:
            pass
    build = path.parent / f".{path.name}.new-{os.getpid()}"
    build.unlink(missing_ok=True)
    os.close(os.open(build, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        conn = sqlite3.connect(str(build), isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=DELETE")  # one self-contained file to move, no -wal beside it
            db = Database(conn)
            with db.atomic():
                migrations.apply(db)
        finally:
            conn.close()
        with build.open("rb+") as handle:
            os.fsync(handle.fileno())
        try:
            os.link(build, path)  # never replaces a state another process created meanwhile
        except FileExistsError:
            pass
        except OSError:
            if not path.exists():  # a filesystem without hard links: an atomic rename does it
                os.replace(build, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    finally:
        build.unlink(missing_ok=True)


def check_header(path: Path) -> None:
    try:
        with path.open("rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        return
    except IsADirectoryError:
        raise StateError(f"state {path}: is a directory, not a state file") from None
    except OSError as err:
        raise StateError(f"state {path}: cannot read: {err.strerror}") from None
    if header and header != SQLITE_HEADER:
        raise StateError(f"state {path}: not an SQLite file (corrupt or not a triage state); refusing to touch it")


def describe_db_error(path: Path | None, err: sqlite3.DatabaseError) -> str:
    text = str(err)
    if "readonly" in text or "read-only" in text:
        return f"state {path}: not writable (read-only file or directory)"
    if "disk is full" in text or "database or disk is full" in text:
        return f"state {path}: disk full"
    if "malformed" in text or "not a database" in text:
        return f"state {path}: corrupt ({text}); refusing to touch it"
    if "locked" in text:
        return f"state {path}: locked by another process ({text})"
    return f"state {path}: {text}"
