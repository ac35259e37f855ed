"""The state file: real SQLite files in tmp_path."""

import os
import sqlite3
import stat

import pytest

from triage.errors import StateError, StateLockedError
from triage.state.db import ClusterUpdate, RunRecord, StateStore, merge_intervals
from triage.state.lock import RunLock

from triage.state.migrations import migrations as _migrations

LATEST_MIGRATION = _migrations._migrations[-1].name  # the newest, whichever branch added it

MIN = 60 * 10**9


def run_record(run_id="r1", to_ns=10 * MIN, complete=True):
    return RunRecord(run_id, "hourly", ["demo"], 0, to_ns, 0, 0, 0, complete, 1, 1, {})


def update(fp="fp1", count=1):
    return ClusterUpdate(fp, "v", ("prod", "a"), {"namespace": "prod"}, "boom <*>", 5, 6, count, "new", None)


def commit(store, **overrides):
    args = dict(run=run_record(), clusters=[update()], counts={("fp1", "demo", 0): 3},
                coverage={"demo": [(0, 10 * MIN)]}, grouping_version="v", prune_before_ns=0)
    args.update(overrides)
    store.commit_run(**args)


def test_new_state_is_owner_only_wal_and_migrated(tmp_path):
    path = tmp_path / "s" / "triage.db"
    store = StateStore.open(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.schema_version() == LATEST_MIGRATION
    store.close()


def test_counts_are_upserted_and_coverage_merged(tmp_path):
    store = StateStore.open(tmp_path / "t.db")
    commit(store)
    commit(store, run=run_record("r2", 20 * MIN), clusters=[update(count=2)], counts={("fp1", "demo", 0): 2},
           coverage={"demo": [(10 * MIN, 20 * MIN)]})
    assert store.db.execute("SELECT count FROM counts").fetchone()[0] == 5
    assert store.coverage("demo", 0, 30 * MIN) == [(0, 20 * MIN)]
    assert store.db.execute("SELECT total_count FROM clusters").fetchone()[0] == 3
    store.close()


def test_a_failed_commit_changes_nothing(tmp_path):
    store = StateStore.open(tmp_path / "t.db")
    commit(store)
    before = store.db.execute("SELECT count FROM counts").fetchall()
    with pytest.raises(StateError):
        # the same run id again violates the runs primary key after counts were already added
        commit(store, counts={("fp1", "demo", 0): 100, ("fp2", "demo", 0): 1})
    assert store.db.execute("SELECT count FROM counts").fetchall() == before
    assert store.db["runs"].count == 1
    store.close()


def test_history_sees_only_counts_before_the_window(tmp_path):
    store = StateStore.open(tmp_path / "t.db")
    commit(store, counts={("fp1", "demo", 0): 3, ("fp1", "demo", 5 * MIN): 4, ("fp1", "demo", 10 * MIN): 50})
    history = store.history(["fp1", "fp9"], 10 * MIN, 7 * 24 * 60 * MIN)
    assert history["fp1"].known and history["fp1"].baseline_count == 7
    assert history["fp1"].last_bucket_before_ns == 5 * MIN and history["fp1"].first_bucket_ns == 0
    assert not history["fp9"].known
    store.close()


def test_not_sqlite_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "t.db"
    path.write_bytes(b"this is not a database at all, keep me")
    with pytest.raises(StateError, match="not an SQLite file"):
        StateStore.open(path)
    assert path.read_bytes() == b"this is not a database at all, keep me"


def test_foreign_sqlite_and_newer_schema_are_refused(tmp_path):
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE x (a)").connection.commit()
    with pytest.raises(StateError, match="not a triage state"):
        StateStore.open(other)
    path = tmp_path / "t.db"
    StateStore.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES ('triage', 'm999_future', 'x')")
    conn.commit()
    conn.close()
    with pytest.raises(StateError, match="newer triage"):
        StateStore.open(path)


def test_snapshot_never_writes_the_file(tmp_path):
    path = tmp_path / "t.db"
    store = StateStore.open(path)
    commit(store)
    store.close()
    before = path.read_bytes()
    snap = StateStore.snapshot(path)
    commit(snap, run=run_record("r9"))
    snap.close()
    assert path.read_bytes() == before
    assert not (tmp_path / "missing.db").exists() or True
    StateStore.snapshot(tmp_path / "missing.db").close()
    assert not (tmp_path / "missing.db").exists()


def test_lock_excludes_a_second_run_and_can_wait(tmp_path):
    path = tmp_path / "t.db"
    first = RunLock(path)
    first.acquire()
    waits: list[float] = []
    clock = iter(range(100))
    second = RunLock(path, sleep=waits.append, clock=lambda: next(clock))
    with pytest.raises(StateLockedError, match="locked by another run"):
        second.acquire()
    with pytest.raises(StateLockedError, match="after waiting 3s"):
        second.acquire(wait_s=3)
    assert waits
    first.release()
    second.acquire(wait_s=3)
    second.release()


def test_merge_intervals():
    assert merge_intervals([(5, 7), (0, 2), (2, 3), (6, 9)]) == [(0, 3), (5, 9)]


def test_a_state_from_the_first_schema_migrates_and_keeps_its_data(tmp_path):
    from sqlite_utils import Database

    from triage.state.migrations import migrations

    path = tmp_path / "old.db"
    db = Database(path)
    migrations.apply(db, stop_before="m002_summaries_and_samples")
    db["clusters"].insert({"fingerprint": "fp1", "template": "t", "first_seen_ns": 1, "last_seen_ns": 2})
    db.close()
    store = StateStore.open(path)
    assert store.schema_version() == LATEST_MIGRATION
    assert store.cluster("fp1")["template"] == "t" and store.cluster("fp1")["samples"] == []
    store.close()
