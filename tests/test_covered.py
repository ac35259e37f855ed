"""Issue 18.1/18.3: the nightly takes what the hourly runs counted from the state, fetches only the rest,
and every fact it reports equals a full re-fetch's (against the fake Loki, over real HTTP)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests import dayofruns as day
from tests.lokifake import Fault, FakeLoki
from triage.records import BUCKET_NS, HIST_BINS, Window
from triage.state.coverplan import bucket_bin, plan_cover

S, MIN, H = day.S, day.MIN, day.H


@pytest.fixture(scope="module")
def the_day(tmp_path_factory):
    """24 hourly runs over a day in the fake Loki, then the nightly three ways: on the state (answered),
    on a copy of the same state that forgot its coverage (a full re-fetch), on a fresh state."""
    base = tmp_path_factory.mktemp("day")
    with FakeLoki() as fake:
        in_day = day.fill_day(fake)
        hourly = day.run_the_day(base / "s.db", fake.url)
        full_state = day.copy_state(base / "s.db", base / "full" / "s.db", forget_coverage=True)
        legacy_state = day.copy_state(base / "s.db", base / "legacy" / "s.db")
        conn = sqlite3.connect(legacy_state)  # minutes counted before counts kept their first/last nanosecond
        with conn:
            conn.execute(f"UPDATE counts SET first_ns = NULL, last_ns = NULL WHERE bucket_ns % {3 * MIN} = 0")
        conn.close()
        before = len(fake.requests)
        capped = {"digest.max_cards": 2}  # the roll-up must be as true as the cards
        answered = day.run(base / "s.db", fake.url, day.nightly_now(), schedule="nightly", settings=capped)
        answered_requests = len(fake.requests) - before
        full = day.run(full_state, fake.url, day.nightly_now(), schedule="nightly", settings=capped)
        fresh = day.run(base / "fresh" / "s.db", fake.url, day.nightly_now(), schedule="nightly", settings=capped)
        legacy = day.run(legacy_state, fake.url, day.nightly_now(), schedule="nightly", settings=capped)
    return {"in_day": in_day, "hourly": hourly, "answered": answered, "full": full, "fresh": fresh, "legacy": legacy,
            "answered_requests": answered_requests}


def test_the_nightly_reports_exactly_what_a_full_re_fetch_reports(the_day):
    answered, full = day.facts(the_day["answered"]), day.facts(the_day["full"])
    assert answered["lines"] == the_day["in_day"] > 5000
    assert answered == full
    statuses = {c["status"] for c in answered["clusters"].values()}
    assert {"ongoing", "regressed"} <= statuses, statuses  # the day holds a comeback, not only steady lines


def test_the_nightly_digest_says_the_same_day_as_a_full_re_fetch(the_day):
    answered = Path(the_day["answered"].digest_path).read_text()
    full = Path(the_day["full"].digest_path).read_text()
    assert day.digest_facts(answered) == day.digest_facts(full)
    assert "█" in day.digest_facts(answered)["day"], "a sparkline with its peak"
    assert day.digest_facts(answered)["rollup"], "more clusters than digest.max_cards: a roll-up line"
    assert "of the window (07:01–06:51 UTC) come from the state, counted by 24 earlier runs" in answered
    assert "come from the state" not in full


def test_the_nightly_pulls_under_a_tenth_of_the_day(the_day):
    source = the_day["answered"].sources[0]
    full = the_day["full"].sources[0]
    assert full.pulled == the_day["in_day"]
    assert 0 < source.pulled <= the_day["in_day"] // 10, (source.pulled, the_day["in_day"])
    assert source.lines == the_day["in_day"] and source.counted_in_loki == 0
    assert source.queries == the_day["answered_requests"] > 0
    assert the_day["answered"].to_json()["sources"][0] | {"error": None} == {
        "name": "loki", "ok": True, "lines": source.lines, "error": None, "pulled": source.pulled,
        "counted_in_loki": 0, "queries": source.queries}


def test_minutes_counted_before_the_upgrade_are_fetched_not_guessed(the_day):
    """Rows without first/last nanoseconds (a state from before covered18_state_answers) would give first/last
    seen to the minute only: those minutes are fetched, and the facts still equal a full re-fetch's."""
    assert day.facts(the_day["legacy"]) == day.facts(the_day["full"])
    assert the_day["answered"].sources[0].pulled < the_day["legacy"].sources[0].pulled < the_day["in_day"]


def test_a_fresh_state_counts_the_same_day_the_same(the_day):
    """A nightly on a state that never saw the day (a prime run: every cluster new) counts the same lines."""
    answered, fresh = day.facts(the_day["answered"]), day.facts(the_day["fresh"])
    assert fresh["lines"] == answered["lines"]
    strip = ("status", "reported_to", "rolled_up", "first_seen_ns")  # history differs: it knows nothing before

    def by_problem(facts):  # fingerprints depend on which line a fresh miner saw first: key by what it is
        return {(c["template"], tuple(sorted(c["labels"].items()))): {k: v for k, v in c.items() if k not in strip}
                for c in facts["clusters"].values()}

    assert by_problem(fresh) == by_problem(answered)


def test_cards_get_spread_redacted_samples_from_the_state(the_day):
    report = the_day["answered"]
    steady = next(e.finding.cluster for e in report.clusters if "connection refused" in e.finding.cluster.template)
    assert 10 <= len(steady.samples) <= 20, len(steady.samples)
    assert steady.messages == [], "what varies is said to come from samples, not from every message"
    assert set(steady.pods) and set(steady.namespaces) == {"prod"}
    digest = Path(report.digest_path).read_text()
    assert "samples)" in digest or "What varies" not in digest


def test_hourly_runs_keep_at_most_one_sample_per_cluster_per_slot(the_day, tmp_path):
    state = Path(the_day["answered"].digest_path).parent.parent / "s.db"
    conn = sqlite3.connect(state)
    rows = conn.execute("SELECT fingerprint, COUNT(*) FROM samples GROUP BY fingerprint").fetchall()
    edges = conn.execute("SELECT COUNT(*) FROM counts WHERE first_ns IS NULL OR last_ns IS NULL").fetchone()[0]
    conn.close()
    assert rows and max(n for _, n in rows) <= 80 + 4, rows  # a day and a bit of the 18-minute grid
    assert edges == 0


def test_a_failed_sub_range_of_an_answered_nightly_creates_nothing_and_is_fetched_next_time(tmp_path):
    with FakeLoki() as fake:
        in_day = day.fill_day(fake, per_hour=60)
        day.run_the_day(tmp_path / "s.db", fake.url)
        counts_before = _counts(tmp_path / "s.db")
        fake.fail_next(*[Fault(status=503)] * 500)  # every request of the nightly fails
        failed = day.run(tmp_path / "s.db", fake.url, day.nightly_now(), schedule="nightly")
        assert failed.exit_code == 3 and not failed.sources[0].ok
        assert _counts(tmp_path / "s.db") == counts_before, "nothing counted from a failed sub-range"
        fake.faults.clear()
        again = day.run(tmp_path / "s.db", fake.url, day.nightly_now() + MIN, schedule="nightly",
                        window=day.nightly_window())
        assert again.exit_code == 0 and again.lines == in_day
        read = [(day.T0 - 31 * H, day.T0 - 29 * H), (day.T0 + day.SKEW, day.nightly_window()[1])]
        expected = sum(1 for _, ts, _ in fake.entries if any(a <= ts < b for a, b in read))
    assert _counts(tmp_path / "s.db")[0] == expected, "every entry read is counted once, none twice"


def test_entries_outside_the_asked_sub_ranges_are_not_counted_twice(tmp_path):
    """A proxy that answers more than ``[start, end)``: an entry of a minute the state answers must not be
    added to it again."""
    with FakeLoki() as fake:
        day.fill_day(fake, per_hour=60)
        day.run_the_day(tmp_path / "s.db", fake.url)
        full_state = day.copy_state(tmp_path / "s.db", tmp_path / "full" / "s.db", forget_coverage=True)
        fake.widen_ns = 20 * S
        answered = day.run(tmp_path / "s.db", fake.url, day.nightly_now(), schedule="nightly")
        fake.widen_ns = 0
        full = day.run(full_state, fake.url, day.nightly_now(), schedule="nightly")
    assert day.facts(answered) == day.facts(full)
    assert any("outside the window were skipped" in line for line in Path(answered.digest_path).read_text().splitlines())


def test_a_dry_run_nightly_answers_from_the_state_and_writes_nothing(tmp_path):
    import hashlib

    with FakeLoki() as fake:
        in_day = day.fill_day(fake, per_hour=60)
        day.run_the_day(tmp_path / "s.db", fake.url)
        day.copy_state(tmp_path / "s.db", tmp_path / "checkpointed" / "s.db")  # folds the WAL into the file
        before = hashlib.sha256((tmp_path / "s.db").read_bytes()).hexdigest()
        from triage import config, pipeline
        from triage.records import Schedule
        from datetime import UTC, datetime

        cfg = config.load(None, {}, {"sources": ["loki"], "llm.mode": "off", "state.path": str(tmp_path / "s.db"),
                                     "loki.url": fake.url, "loki.query": '{namespace=~".+"}',
                                     "digest.dir": str(tmp_path / "digests")}, cwd=tmp_path)
        options = pipeline.RunOptions(schedule=Schedule.NIGHTLY, dry_run=True)
        report = pipeline.run(cfg, pipeline.build_deps(cfg), options,
                              datetime.fromtimestamp(day.nightly_now() / S, UTC))
    assert report.dry_run and report.lines == in_day and report.sources[0].pulled < in_day // 10
    assert "come from the state" in report.digest_text
    assert hashlib.sha256((tmp_path / "s.db").read_bytes()).hexdigest() == before


def test_the_report_file_has_the_per_source_figures(tmp_path):
    import json

    from click.testing import CliRunner

    from triage.cli import cli

    data = tmp_path / "in.jsonl"
    data.write_text(json.dumps({"ts": str(day.T0 + S), "labels": {"namespace": "prod", "app": "api"},
                                "line": "error: disk 1 full"}) + "\n")
    result = CliRunner().invoke(cli, ["run", "--source", f"file:{data}", "--from", str(day.T0), "--to", str(day.T0 + H),
                                      "--state", str(tmp_path / "s.db"), "--digest-dir", str(tmp_path / "d"),
                                      "--report-json", str(tmp_path / "r.json"), "--no-llm"], env={})
    assert result.exit_code == 0, result.output
    source = json.loads((tmp_path / "r.json").read_text())["sources"][0]
    assert {k: source[k] for k in ("lines", "pulled", "counted_in_loki", "queries")} == \
           {"lines": 1, "pulled": 1, "counted_in_loki": 0, "queries": 0}


def test_a_file_source_is_read_whole_and_its_covered_part_not_counted_again(tmp_path):
    import json

    data = tmp_path / "in.jsonl"
    data.write_text("".join(json.dumps({"ts": str(day.T0 + n * MIN), "labels": {"namespace": "prod", "app": "api"},
                                        "line": f"error: disk {n} full"}) + "\n" for n in range(120)))
    first = _file_run(tmp_path, data, (day.T0, day.T0 + H))
    second = _file_run(tmp_path, data, (day.T0, day.T0 + 2 * H))
    assert first.sources[0].pulled == 60  # the file's entries in the window
    assert second.sources[0].pulled == 120 and second.lines == 120, "the covered first hour is read again"
    assert first.sources[0].queries == second.sources[0].queries == 0
    assert _counts(tmp_path / "s.db")[0] == 120


# ---------------------------------------------------------------------- the plan alone (pure)

def test_the_plan_fetches_what_coverage_misses_and_the_minutes_the_state_cannot_split():
    window = Window(day.T0 + 30 * S, day.T0 + 30 * S + 24 * H)
    plan = plan_cover(window, [(day.T0 - H, day.T0 + 20 * H + 5 * S)], count_from_ns=0)
    fetched = sorted((w.from_ns, w.to_ns) for w in plan.fetch)
    assert fetched[0] == (window.from_ns, day.T0 + MIN)  # the window's first, partial minute
    assert fetched[-1] == (day.T0 + 20 * H, window.to_ns)  # the coverage's cut minute and the uncovered rest
    assert len(fetched) == 2 + 19  # one minute per histogram bin edge inside the covered part
    for part in plan.from_state:
        assert part.from_ns % BUCKET_NS == 0 and part.to_ns % BUCKET_NS == 0
        bins = {bucket_bin(window, b) for b in range(part.from_ns, part.to_ns, BUCKET_NS)}
        for bucket in range(part.from_ns, part.to_ns, BUCKET_NS):  # every entry of the minute has its bin
            last = bucket + BUCKET_NS - 1
            assert (last - window.from_ns) * HIST_BINS // window.duration_ns == bucket_bin(window, bucket)
        assert bins
    assert plan.state_ns + plan.fetch_ns == window.duration_ns


def test_the_plan_never_answers_from_before_the_retention_cutoff():
    window = Window(day.T0, day.T0 + 24 * H)
    plan = plan_cover(window, [(day.T0, day.T0 + 24 * H)], count_from_ns=day.T0 + 6 * H + 1)
    assert plan.from_state[0].from_ns == day.T0 + 6 * H + MIN
    assert plan.fetch[0] == Window(day.T0, day.T0 + 6 * H + MIN)


def _counts(state: Path) -> tuple[int, int]:
    conn = sqlite3.connect(state)
    row = conn.execute("SELECT COALESCE(SUM(count), 0), COUNT(*) FROM counts").fetchone()
    conn.close()
    return row


def _file_run(tmp_path, data, window):
    from triage import config, pipeline
    from datetime import UTC, datetime

    cfg = config.load(None, {}, {"sources": [f"file:{data}"], "llm.mode": "off", "state.path": str(tmp_path / "s.db"),
                                 "digest.dir": str(tmp_path / "d")}, cwd=tmp_path)
    options = pipeline.RunOptions(from_ns=window[0], to_ns=window[1])
    return pipeline.run(cfg, pipeline.build_deps(cfg), options, datetime.fromtimestamp((window[1] + H) / S, UTC))
