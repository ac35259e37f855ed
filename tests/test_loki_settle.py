"""Issue 18, the way users run it: windows ending near now, and consecutive runs whose windows overlap
what the run before counted or left settling. Loki counts the settling minutes too (per cluster and
minute, a re-count adds only the difference), so a run pulls a bounded number of entries and the
totals over all runs equal the entries Loki holds, late ones included, none twice."""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.loki_corpus import corpus, counted_in_state, held, late_rows, problem_of
from tests.lokifake import FakeLoki

S = 10**9
MINUTE = 60 * S
T0 = 1795417200 * S  # 2026-11-23T07:00:00Z
MAX_PULL = 2_000  # the window holds ~20,000 entries: ten times loki.max_pull
NOW1 = T0 + 61 * MINUTE + 20 * S  # `--since 1h` ends at NOW1 - loki.delay: the last 10 minutes are settling
QUERY = '{namespace=~".+"}'


def run(state: Path, fake: FakeLoki, now_ns: int, *, schedule: str, max_pull: int = MAX_PULL):
    """One `triage run` through the pipeline with the clock given (`--since 1h` for a manual run)."""
    from triage import config, pipeline
    from triage.records import Schedule

    overrides = {"sources": ["loki"], "llm.mode": "off", "state.path": str(state), "loki.url": fake.url,
                 "loki.query": QUERY, "loki.max_retries": 0, "loki.max_pull": max_pull,
                 "digest.dir": str(state.parent / "digests")}
    cfg = config.load(None, {}, overrides, cwd=state.parent)
    options = pipeline.RunOptions(schedule=Schedule(schedule),
                                  since_ns=3600 * S if schedule == "manual" else None)
    served, requests = fake.entries_served, len(fake.requests)
    report = pipeline.run(cfg, pipeline.build_deps(cfg), options, datetime.fromtimestamp(now_ns / S, UTC))
    return report, fake.entries_served - served, len(fake.requests) - requests


def window_problems(report) -> dict:
    problems: dict[str, int] = {}
    for entry in report.clusters:
        cluster = entry.finding.cluster
        problem = problem_of(cluster.template, cluster.group_labels.get("app", ""))
        if problem:
            problems[problem] = problems.get(problem, 0) + cluster.count
    return problems


@pytest.fixture(scope="module")
def rows():
    return corpus(T0, 30_000, minutes=90)[0]


def test_a_window_ending_now_is_counted_in_loki_settling_minutes_too(tmp_path, rows):
    """(a) `--since 1h` right after the window: its last 10 minutes are settling. They are counted in
    Loki as well, so the pull stays bounded, and every count equals a full pull's."""
    with FakeLoki(rows) as fake:
        report, pulled, queries = run(tmp_path / "a" / "s.db", fake, NOW1, schedule="manual")
        full, full_pulled, _ = run(tmp_path / "full" / "s.db", fake, NOW1, schedule="manual", max_pull=10**9)
        window = report.window
        problems, minutes, total = held(fake.entries, window.from_ns, window.to_ns)
    source = report.sources[0]
    assert report.exit_code == 0 and report.lines == full.lines == total > 9 * MAX_PULL
    assert full_pulled >= total and full.sources[0].counted_in_loki == 0
    assert pulled <= MAX_PULL, f"pulled {pulled}: the settling minutes were pulled instead of counted"
    assert source.pulled <= pulled and source.counted_in_loki >= total - pulled > 0  # (a page tie re-sends a few)
    assert window_problems(report) == problems == window_problems(full)
    assert counted_in_state(tmp_path / "a" / "s.db") == (problems, minutes, total)
    assert queries < 150


@pytest.mark.parametrize("schedule", ["hourly", "manual"])
@pytest.mark.parametrize("later", ["loki3", "pre3"])
def test_consecutive_runs_count_every_entry_once_late_ones_included(tmp_path, rows, schedule, later):
    """(b) Three runs, 5 and 30 minutes apart, each window reaching into what the run before left
    settling (a manual `--since 1h` also into what it covered), with late entries written into the
    settling minutes between runs. Each run's window counts are exact, later runs count in Loki (b) or,
    against a Loki without `|>`, pull (c); over all runs every entry is counted exactly once."""
    rng = random.Random(18)
    state = tmp_path / "s.db"
    with FakeLoki(rows) as fake:
        reports = []
        for step, now in enumerate((NOW1, NOW1 + 5 * MINUTE, NOW1 + 30 * MINUTE)):
            if step:
                end = reports[-1][0].window.to_ns  # into what the run before left settling (its last 9 minutes)
                fake.add_many(late_rows(rng, end - 8 * MINUTE, end, 120))
                fake.pattern_filters = later == "loki3"
            report, pulled, queries = run(state, fake, now, schedule=schedule)
            window = report.window
            expected, _, total = held(fake.entries, window.from_ns, window.to_ns)
            assert report.exit_code == 0 and report.lines == total, step
            assert window_problems(report) == expected, step
            reports.append((report, pulled, queries))
        first = reports[0][0].window.from_ns
        problems, minutes, total = held(fake.entries, first, reports[-1][0].window.to_ns)
    assert counted_in_state(state) == (problems, minutes, total), "every entry counted once, the late ones too"
    for report, pulled, _ in reports[1:]:
        if later == "loki3":
            assert report.sources[0].counted_in_loki > 0, "a run whose window overlaps settling minutes counts in Loki"
            assert pulled <= MAX_PULL, pulled
        else:
            assert report.sources[0].counted_in_loki == 0
        if schedule == "manual":  # the window reaches back into what the run before covered: the state answers it
            assert "come from the state" in Path(report.digest_path).read_text(encoding="utf-8")
    assert reports[0][1] <= MAX_PULL


def test_late_entries_counted_by_loki_are_added_and_nothing_is_subtracted(tmp_path, rows):
    """The settling minutes' counts per cluster only grow (Loki never drops an entry it accepted):
    a re-count adds the difference; the state keeps, per cluster and minute, what it counted."""
    rng = random.Random(5)
    state = tmp_path / "s.db"
    with FakeLoki(rows) as fake:
        first, _, _ = run(state, fake, NOW1, schedule="hourly")
        conn = sqlite3.connect(state)
        marked = conn.execute("SELECT COUNT(*) FROM loki_minutes").fetchone()[0]
        conn.close()
        assert marked > 0, "the settling minutes Loki counted are remembered per cluster and minute"
        fake.add_many(late_rows(rng, first.window.to_ns - 9 * MINUTE, first.window.to_ns, 60))
        second, _, _ = run(state, fake, NOW1 + 20 * MINUTE, schedule="hourly")
        problems, minutes, total = held(fake.entries, first.window.from_ns, second.window.to_ns)
    assert second.sources[0].counted_in_loki > 0
    assert counted_in_state(state) == (problems, minutes, total)
    conn = sqlite3.connect(state)
    left = conn.execute("SELECT MIN(bucket_ns) FROM loki_minutes").fetchone()[0]
    conn.close()
    assert left is None or left >= NOW1 + 20 * MINUTE - 10 * MINUTE - MINUTE, "settled minutes are forgotten"


def test_minutes_counted_by_count_follow_merges_settle_and_prune_in_the_runs_transaction(tmp_path):
    """The (cluster, minute) pairs Loki counted while settling: a merged cluster's go to its survivor
    (like its counts), covering a minute forgets it, retention prunes it, and a commit that fails
    writes none of it."""
    from triage.errors import StateError
    from triage.state.db import ClusterUpdate, RunRecord, StateStore

    def cluster(fp):
        return ClusterUpdate(fp, "v", ("prod", "a"), {"namespace": "prod"}, f"boom {fp}", 5, 6, 1, "new", None)

    def commit(run_id, **kwargs):
        args = dict(run=RunRecord(run_id, "hourly", ["loki"], 0, 10 * MINUTE, 0, 0, 0, True, 1, 1, {}),
                    clusters=[cluster("a"), cluster("b")], counts={}, coverage={}, grouping_version="v",
                    prune_before_ns=0)
        store.commit_run(**(args | kwargs))

    store = StateStore.open(tmp_path / "s.db")
    commit("r1", by_count={("a", "loki", 5 * MINUTE), ("a", "loki", 6 * MINUTE), ("b", "loki", 6 * MINUTE),
                           ("b", "loki", 7 * MINUTE)}, counts={("a", "loki", 6 * MINUTE): 4})
    with pytest.raises(StateError):  # the same run id again: nothing of this commit lands
        commit("r1", by_count={("a", "loki", 9 * MINUTE)})
    assert store.counted_by_count("loki", 0, 10 * MINUTE) == {("a", 5 * MINUTE), ("a", 6 * MINUTE),
                                                              ("b", 6 * MINUTE), ("b", 7 * MINUTE)}
    commit("r2", aliases={"b": "a"})
    assert store.counted_by_count("loki", 0, 10 * MINUTE) == {("a", 5 * MINUTE), ("a", 6 * MINUTE), ("a", 7 * MINUTE)}
    commit("r3", coverage={"loki": [(5 * MINUTE + 1, 7 * MINUTE)]})  # minute 5 is only partly covered
    assert store.counted_by_count("loki", 0, 10 * MINUTE) == {("a", 5 * MINUTE), ("a", 7 * MINUTE)}
    commit("r4", prune_before_ns=6 * MINUTE)
    assert store.counted_by_count("loki", 0, 10 * MINUTE) == {("a", 7 * MINUTE)}
    assert store.counted_in_minutes("loki", {6 * MINUTE, 7 * MINUTE}) == {("a", "loki", 6 * MINUTE): 4}
    store.close()


def test_a_window_starting_inside_a_minute_loki_counted_never_counts_it_twice(tmp_path, rows):
    """`--since 1h` runs 55 minutes apart: the second window starts inside a settling minute Loki counted
    in the first. Its part of that minute cannot be compared with the whole minute's count, so late
    entries there are counted only as far as they exceed it (here: not at all), never twice; the whole
    minutes after it are re-counted exactly."""
    rng = random.Random(3)
    state = tmp_path / "s.db"
    with FakeLoki(rows) as fake:
        first, _, _ = run(state, fake, NOW1, schedule="manual")
        cut = NOW1 + 55 * MINUTE - 61 * MINUTE  # where the second window starts
        assert cut % MINUTE and first.window.to_ns - 10 * MINUTE < cut < first.window.to_ns
        fake.add_many(late_rows(rng, cut - cut % MINUTE, first.window.to_ns, 90))
        second, _, _ = run(state, fake, NOW1 + 55 * MINUTE, schedule="manual")
        _, minutes, _ = held(fake.entries, first.window.from_ns, second.window.to_ns)
    assert second.sources[0].counted_in_loki > 0
    _, in_state, _ = counted_in_state(state)
    assert all(in_state.get(m, 0) <= n for m, n in minutes.items()), "nothing counted twice"
    whole = {m: n for m, n in minutes.items() if m > cut}
    assert {m: in_state.get(m, 0) for m in whole} == whole, "the whole minutes after the cut: late ones included"
