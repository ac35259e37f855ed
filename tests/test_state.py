"""The state file: real SQLite files in tmp_path."""

import os
import sqlite3
import stat

import pytest

from triage.errors import StateError, StateLockedError
from triage.state.db import ClusterUpdate, RunRecord, StateStore, merge_intervals
from triage.state.lock import RunLock
from triage.state.migrations import migrations

MIN = 60 * 10**9
LATEST = migrations._migrations[-1].name  # the newest migration, whichever branch added it


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
    assert store.schema_version() == LATEST
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
    assert store.schema_version() == LATEST
    assert store.cluster("fp1")["template"] == "t" and store.cluster("fp1")["samples"] == []
    store.close()


# ---------------------------------------------------------------------- the job over a real state file

S = 10**9
H = 3600 * S
DAY = 24 * H
T = 1795417200 * S  # 2026-11-23T07:00:00Z


def write_entries(path, entries):
    import json

    path.write_text("".join(json.dumps({"ts": str(ts), "labels": {"namespace": "prod", "app": "api"}, "line": line})
                            + "\n" for ts, line in entries))
    return path


def job(tmp_path, now_ns, *, sources, window=None, schedule="manual", settings=None):
    """One `triage run` through the pipeline, with the clock given (the only way to test days of history)."""
    from triage import config, pipeline
    from triage.records import Schedule
    from datetime import UTC, datetime

    overrides = {"sources": sources, "llm.mode": "off", "state.path": str(tmp_path / "s.db"),
                 "digest.dir": str(tmp_path / "d"), **(settings or {})}
    cfg = config.load(None, {}, overrides, cwd=tmp_path)
    options = pipeline.RunOptions(schedule=Schedule(schedule), from_ns=window[0] if window else None,
                                  to_ns=window[1] if window else None)
    return pipeline.run(cfg, pipeline.build_deps(cfg), options, datetime.fromtimestamp(now_ns // S, UTC))


def status_of(report, word):
    return [(e.finding.status.value, e.finding.cluster.count) for e in report.clusters if word in e.finding.cluster.template]


def test_a_comeback_after_the_counts_were_pruned_is_regressed(tmp_path):
    """Issue 13.1: 10 days quiet -> regressed, 40 days quiet (counts pruned at 30d) -> regressed too."""
    data = write_entries(tmp_path / "in.jsonl", [(T - 40 * DAY + S, "disk 1 full on node"),
                                                 (T - DAY + S, "other thing broke"), (T + S, "disk 2 full on node")])
    src = [f"file:{data}"]
    job(tmp_path, T - 40 * DAY + 2 * H, sources=src, window=(T - 40 * DAY, T - 40 * DAY + H))
    job(tmp_path, T - DAY + 2 * H, sources=src, window=(T - DAY, T - DAY + H))  # prunes the 40-day-old counts
    conn = sqlite3.connect(tmp_path / "s.db")
    assert conn.execute("SELECT COUNT(*) FROM counts WHERE bucket_ns < ?", [T - 30 * DAY]).fetchone()[0] == 0
    conn.close()
    report = job(tmp_path, T + 2 * H, sources=src, window=(T, T + H))
    assert status_of(report, "disk") == [("regressed", 1)]
    conn = sqlite3.connect(tmp_path / "s.db")
    assert conn.execute("SELECT kind FROM episodes ORDER BY opened_ns").fetchall() == [("new",), ("new",), ("regressed",)]


def test_a_window_read_again_after_a_partial_run_opens_no_second_episode(tmp_path):
    """Issue 13.2: the first sub-range fails; the next hourly run covers the window again."""
    from tests.lokifake import FakeLoki, Fault

    labels = {"namespace": "prod", "app": "api"}
    entries = [(labels, T - 3 * DAY + S, "disk 1 full on node"), (labels, T + 10 * 60 * S, "disk 2 full on node"),
               (labels, T + 70 * 60 * S, "disk 3 full on node")]
    with FakeLoki(entries) as fake:
        settings = {"loki.url": fake.url, "loki.query": '{namespace="prod"}', "loki.max_retries": 0,
                    "loki.concurrency": 1, "loki.settle": "0s"}
        job(tmp_path, T - 3 * DAY + 2 * H, sources=["loki"], window=(T - 3 * DAY, T - 3 * DAY + H), settings=settings)
        job(tmp_path, T + 60 * S, sources=["loki"], window=(T - H, T), schedule="hourly", settings=settings)
        fake.fail_next(Fault(500, "boom"))  # the first sub-range of the next run, [T, T+1h), fails
        partial = job(tmp_path, T + 2 * H + 60 * S, sources=["loki"], schedule="hourly", settings=settings)
        assert partial.exit_code == 3 and status_of(partial, "disk") == [("regressed", 1)]
        again = job(tmp_path, T + 3 * H + 60 * S, sources=["loki"], schedule="hourly", settings=settings)
    assert (again.window.from_ns, again.window.to_ns) == (T, T + 3 * H)
    assert status_of(again, "disk") == [("regressed", 2)]
    conn = sqlite3.connect(tmp_path / "s.db")
    assert conn.execute("SELECT COUNT(*) FROM episodes WHERE kind = 'regressed'").fetchone()[0] == 1
    assert not [e for e in again.clusters if e.reported_to], "the comeback was reported by the partial run already"
    reread = again.window_plan.reread
    assert (reread.from_ns, reread.to_ns, again.window_plan.reread_reason) == (T, T + 2 * H, "incomplete")
    digest = open(again.digest_path, encoding="utf-8").read()
    # people read human times (issue 16.3: no RFC 3339 nanosecond stamps in the digest; the report keeps them)
    assert "Re-read 2026-11-23 07:00:00 UTC → 2026-11-23 09:00:00 UTC of the previous run's window" in digest


def test_a_skipped_gap_is_said_with_its_length(tmp_path):
    """Issue 13.5: a gap longer than run.max_catchup is skipped, and the digest and report say so."""
    import json

    data = write_entries(tmp_path / "in.jsonl", [(T + S, "boom 1")])
    job(tmp_path, T + 60 * S, sources=[f"file:{data}"], window=(T - H, T), schedule="hourly")
    report = job(tmp_path, T + 3 * DAY + 60 * S, sources=[f"file:{data}"], schedule="hourly")
    skipped = report.window_plan.skipped
    assert (skipped.from_ns, skipped.to_ns) == (T, T + 2 * DAY)
    digest = open(report.digest_path, encoding="utf-8").read()
    assert "Gap skipped:** 2026-11-23 07:00:00 UTC → 2026-11-25 07:00:00 UTC (2 d)" in digest
    assert json.loads(json.dumps(report.to_json()))["window"]["skipped"] == {
        "from": "2026-11-23T07:00:00Z", "to": "2026-11-25T07:00:00Z"}


def test_rerunning_a_window_older_than_the_retention_never_changes_totals(tmp_path):
    """Issue 13.5: its counts and coverage are pruned, so it cannot be counted idempotently: not at all."""
    data = write_entries(tmp_path / "in.jsonl", [(T - 40 * DAY + S, "boom 1"), (T - 40 * DAY + 2 * S, "boom 2")])
    totals = []
    for _ in range(2):
        report = job(tmp_path, T, sources=[f"file:{data}"], window=(T - 40 * DAY, T - 40 * DAY + H))
        assert status_of(report, "boom")[0][1] == 2  # still shown
        conn = sqlite3.connect(tmp_path / "s.db")
        totals.append(conn.execute("SELECT SUM(total_count) FROM clusters").fetchone()[0])
        conn.close()
    assert totals[0] == totals[1] == 0
    assert "older than state.retention" in open(report.digest_path, encoding="utf-8").read()


def test_a_failed_sub_range_creates_no_cluster_and_no_episode(tmp_path):
    """Issue 13.5: entries of a sub-range that failed after its first page are dropped, not half-used."""
    from tests.lokifake import FakeLoki, Fault

    labels = {"namespace": "prod", "app": "api"}
    entries = [(labels, T + i * S, f"only here {i}") for i in range(3)] + [(labels, T + H + S, "fine 1")]
    with FakeLoki(entries) as fake:
        fake.fail_next(Fault(kind="slow"), Fault(500, "boom"))  # page 1 of [T, T+1h) arrives, page 2 fails
        report = job(tmp_path, T + 3 * H, sources=["loki"], window=(T, T + 2 * H), settings={
            "loki.url": fake.url, "loki.query": '{namespace="prod"}', "loki.max_retries": 0, "loki.concurrency": 1,
            "loki.page_limit": 2})
    assert report.exit_code == 3
    assert [e.finding.cluster.template for e in report.clusters] == ["fine <*>"]
    assert report.lines == 1 == sum(e.finding.cluster.count for e in report.clusters)
    conn = sqlite3.connect(tmp_path / "s.db")
    assert [r[0] for r in conn.execute("SELECT template FROM clusters")] == ["fine <*>"]
    assert conn.execute("SELECT COUNT(*) FROM episodes").fetchone()[0] == 1


def test_a_line_that_fits_two_generalized_templates_keeps_its_cluster_across_a_restart(tmp_path):
    """Issue 13.5: a line that fits two roots goes where it would have gone without the restart (the miner
    picks the most specific root, then the smallest fingerprint: no order is involved)."""
    first = [(T + S, "zeta beta gamma delta eps")]  # seen first, generalized last
    first += [(T + (2 + i) * S, f"alpha {w} gamma delta eps") for i, w in enumerate(["one", "two", "three"])]
    first += [(T + (6 + i) * S, f"{w} beta gamma delta eps") for i, w in enumerate(["eta", "theta"])]
    probe = (T + H + S, "alpha beta gamma delta eps")
    data = write_entries(tmp_path / "in.jsonl", first + [probe])
    one = job(tmp_path, T + 2 * H, sources=[f"file:{data}"], window=(T, T + H))
    assert sorted(e.finding.cluster.template for e in one.clusters) == [
        "<*> beta gamma delta eps", "alpha <*> gamma delta eps"]
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    whole = job(fresh, T + 3 * H, sources=[f"file:{data}"], window=(T, T + 2 * H))  # the same lines, no restart
    expected = next(e.finding.cluster.template for e in whole.clusters if e.finding.cluster.count == 4)
    two = job(tmp_path, T + 3 * H, sources=[f"file:{data}"], window=(T + H, T + 2 * H))
    assert [e.finding.cluster.template for e in two.clusters] == [expected]


def test_a_state_on_a_network_filesystem_is_refused_or_said_loudly(tmp_path, caplog):
    """Issue 13.6: flock on NFS may lock on one host only; the lock says so instead of trusting it."""
    mounts = tmp_path / "mounts"
    escaped = str(tmp_path / "nfs share").replace(" ", "\\040")
    mounts.write_text(f"/dev/root / ext4 rw 0 0\nfiler:/vol {escaped} nfs4 rw,relatime,vers=4.2 0 0\n")
    (tmp_path / "nfs share").mkdir()
    db = tmp_path / "nfs share" / "s.db"
    with pytest.raises(StateError, match=r"network filesystem \(nfs4 at .*nfs share\).*ReadWriteOnce") as err:
        RunLock(db, mounts=mounts).acquire()
    assert err.value.exit_code == 5 and "\n" not in str(err.value)
    lock = RunLock(db, mounts=mounts, allow_network_fs=True)
    lock.acquire()  # accepted, loudly
    assert any("UNSAFE" in r.message and "nfs4" in r.message for r in caplog.records)
    lock.release()
    local = RunLock(tmp_path / "local.db", mounts=mounts)
    local.acquire()  # the local disk is fine
    local.release()


@pytest.mark.parametrize("command", [["mute", "fp1", "--for", "1d"], ["unmute", "fp1"], ["prune", "--older-than", "30d"]])
def test_state_commands_that_write_take_the_lock(tmp_path, command):
    from click.testing import CliRunner

    from triage.cli import cli

    path = tmp_path / "t.db"
    store = StateStore.open(path)
    commit(store)
    store.close()
    before = sqlite3.connect(path).execute("SELECT muted_until_ns, mute_reason FROM clusters").fetchall()
    lock = RunLock(path)
    lock.acquire()
    try:
        result = CliRunner().invoke(cli, ["state", *command, "--state", str(path)])
    finally:
        lock.release()
    assert result.exit_code == 5 and "locked by another run" in result.output
    assert sqlite3.connect(path).execute("SELECT muted_until_ns, mute_reason FROM clusters").fetchall() == before
    assert CliRunner().invoke(cli, ["state", *command, "--state", str(path)]).exit_code == 0


def test_count_plan_counts_a_settling_entry_once_and_marks_only_complete_ranges():
    from triage.records import LogRecord, Window
    from triage.state.countplan import CountPlan, entry_id
    from triage.state.counting import subtract_intervals

    seen = LogRecord(95, {"app": "a"}, "x")
    late = LogRecord(96, {"app": "a"}, "y")
    plan = CountPlan(ranges=[Window(0, 50), Window(50, 100)], covered=[(0, 10)], settling=[(90, 100)],
                     counted_ids={entry_id(seen.ts_ns, seen.labels, seen.line)}, settle_from_ns=80, count_from_ns=5)

    def should_count(record: LogRecord, range_index: int) -> bool:  # as the job does it, entry by entry
        counted, old, identity = plan.decide(record.ts_ns, record.labels, record.line)
        plan.note(range_index, old, [(identity, record.ts_ns)] if identity is not None else None)
        return counted

    assert not should_count(LogRecord(7, {}, "covered"), 0)
    assert should_count(LogRecord(20, {}, "plain"), 0)
    assert not should_count(seen, 1) and should_count(late, 1)
    late_id = entry_id(late.ts_ns, late.labels, late.line)
    assert plan.marks(failed=set()) == ([(0, 50), (50, 80)], [(80, 100)], [(late_id, 96)])
    assert plan.marks(failed={1}) == ([(0, 50)], [], [])
    assert subtract_intervals([(0, 10), (20, 30)], [(5, 25)]) == [(0, 5), (25, 30)]


def test_the_plain_span_of_a_count_plan_is_where_decide_counts_and_remembers_nothing():
    from triage.records import Window
    from triage.state.countplan import CountPlan

    for covered, settling in (([], []), ([(0, 10)], []), ([], [(90, 100)])):
        plan = CountPlan(ranges=[Window(0, 100)], covered=covered, settling=settling, counted_ids=set(),
                         settle_from_ns=80, count_from_ns=5)
        start, end = plan.plain_span()
        assert (start, end) == ((5, 80) if not covered and not settling else (0, 0))
        assert all(plan.decide(ts, {}, "x") == (True, False, None) for ts in range(start, end))
        assert all(plan.decide(ts, {}, "x") != (True, False, None) for ts in (*range(0, 5), *range(80, 100))
                   if not covered and not settling)


def test_a_cluster_seen_only_in_an_old_window_that_comes_back_is_regressed(tmp_path):
    data = write_entries(tmp_path / "in.jsonl", [(T - 40 * DAY + S, "cache 1 miss storm"), (T + S, "cache 2 miss storm")])
    job(tmp_path, T, sources=[f"file:{data}"], window=(T - 40 * DAY, T - 40 * DAY + H))  # shown, not counted
    report = job(tmp_path, T + 2 * H, sources=[f"file:{data}"], window=(T, T + H))
    assert status_of(report, "cache") == [("regressed", 1)]
