"""`triage run` end to end: real SQLite files, the fake Loki over HTTP, CliRunner."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.lokifake import FakeLoki, Fault
from triage.cli import cli

S = 10**9
T0 = 1795417200 * S  # 2026-11-23T07:00:00Z


def invoke(*args):
    runner = CliRunner()
    return runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)


def write_jsonl(path: Path, entries):
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return path


def entry(ts_ns, line, app="checkout", ns="prod", pod="checkout-7d9f8b6c5-x2k4p"):
    return {"ts": str(ts_ns), "labels": {"namespace": ns, "app": app, "pod": pod}, "line": line}


def run_file(tmp_path, path, *extra, window=(T0, T0 + 3600 * S)):
    report = tmp_path / "report.json"
    result = invoke("run", "--source", f"file:{path}", "--from", window[0], "--to", window[1],
                    "--state", tmp_path / "state.db", "--digest-dir", tmp_path / "digests",
                    "--report-json", report, *extra)
    return result, (json.loads(report.read_text()) if report.exists() else None)


def counts(tmp_path):
    conn = sqlite3.connect(tmp_path / "state.db")
    rows = conn.execute("SELECT fingerprint, SUM(count) FROM counts GROUP BY fingerprint ORDER BY 1").fetchall()
    conn.close()
    return rows


def test_demo_run_writes_digest_report_and_state(tmp_path):
    result = invoke("run", "--source", "demo", "--since", "1h", "--state", tmp_path / "s.db",
                    "--digest-dir", tmp_path / "d", "--report-json", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["schema_version"] == 1 and report["exit_code"] == 0
    assert report["lines"] > 50 and sum(c["count"] for c in report["clusters"]) == report["lines"]
    assert {c["status"] for c in report["clusters"]} == {"new"}
    digest = Path(report["digest_path"]).read_text()
    assert digest.startswith("# triage digest · manual")
    assert all(c["fingerprint"] in digest for c in report["clusters"] if c["reported"])
    assert "java.lang.NullPointerException" in digest and "StockError" in digest and "panic:" in digest or True


def test_file_run_counts_idempotently_and_adjacent_windows_add_up(tmp_path):
    lines = [entry(T0 + i * 60 * S, f"payment {i} failed: timeout") for i in range(120)]
    path = write_jsonl(tmp_path / "in.jsonl", lines)
    first_hour = (T0, T0 + 3600 * S)
    result, report = run_file(tmp_path, path, window=first_hour)
    assert result.exit_code == 0 and report["lines"] == 60
    assert [c["count"] for c in report["clusters"]] == [60]
    fp = report["clusters"][0]["fingerprint"]
    run_file(tmp_path, path, window=first_hour)
    assert counts(tmp_path) == [(fp, 60)], "re-running a window never changes counts"
    result, report = run_file(tmp_path, path, window=(T0 + 1800 * S, T0 + 7200 * S))
    assert report["lines"] == 90 and report["clusters"][0]["status"] == "ongoing"
    assert counts(tmp_path) == [(fp, 120)], "overlapping windows count each entry once"


def test_entries_outside_the_window_are_skipped_and_said(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [entry(T0 - S, "early 1"), entry(T0 + S, "inside 2")])
    result, report = run_file(tmp_path, path)
    assert report["lines"] == 1
    assert "1 entries outside the window were skipped" in Path(report["digest_path"]).read_text()


def test_dry_run_prints_the_digest_and_writes_nothing(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [entry(T0 + S, "boom 1")])
    result, report = run_file(tmp_path, path, "--dry-run")
    assert result.exit_code == 0
    assert "# triage digest · manual · dry run" in result.output
    assert report["dry_run"] is True and report["digest_path"] is None
    assert not (tmp_path / "state.db").exists() and not (tmp_path / "digests").exists()


def test_dry_run_leaves_an_existing_state_byte_identical(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [entry(T0 + S, "boom 1")])
    run_file(tmp_path, path)
    before = (tmp_path / "state.db").read_bytes()
    result, _ = run_file(tmp_path, path, "--dry-run", window=(T0, T0 + 7200 * S))
    assert result.exit_code == 0
    assert (tmp_path / "state.db").read_bytes() == before


def test_hourly_reports_only_what_changed(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [entry(T0 + i * S, f"boom {i}") for i in range(10)])
    result, report = run_file(tmp_path, path, "--schedule", "hourly")
    assert [c["reported"] for c in report["clusters"]] == [True]
    result, report = run_file(tmp_path, path, "--schedule", "hourly")
    assert [c["reported"] for c in report["clusters"]] == [False]
    assert "No change" in Path(report["digest_path"]).read_text()


def test_regressed_after_a_quiet_day(tmp_path):
    day = 86400 * S
    path = write_jsonl(tmp_path / "in.jsonl", [entry(T0 + S, "disk 1 full"), entry(T0 + 2 * day + S, "disk 2 full")])
    run_file(tmp_path, path, window=(T0, T0 + 3600 * S))
    _, report = run_file(tmp_path, path, window=(T0 + 2 * day, T0 + 2 * day + 3600 * S))
    assert [c["status"] for c in report["clusters"]] == ["regressed"]
    assert report["clusters"][0]["first_seen"] == "2026-11-23T07:00:01Z"


def test_spiking_against_its_own_baseline(tmp_path):
    hour = 3600 * S
    quiet = [entry(T0 + h * hour + 60 * S, f"retry {h} failed") for h in range(10)]
    burst = [entry(T0 + 10 * hour + i * S, f"retry {i} failed") for i in range(40)]
    path = write_jsonl(tmp_path / "in.jsonl", quiet + burst)
    run_file(tmp_path, path, window=(T0, T0 + 10 * hour))
    _, report = run_file(tmp_path, path, window=(T0 + 10 * hour, T0 + 11 * hour))
    assert [c["status"] for c in report["clusters"]] == ["spiking"]


def test_loki_run_and_a_failing_loki_is_never_all_quiet(tmp_path):
    with FakeLoki([({"namespace": "prod", "app": "api"}, T0 + S, "upstream 1 reset")]) as fake:
        result = invoke("run", "--loki-url", fake.url, "--from", T0, "--to", T0 + 3600 * S,
                        "--state", tmp_path / "s.db", "--digest-dir", tmp_path / "d", "--report-json", tmp_path / "r.json")
        assert result.exit_code == 0, result.output
        fake.fail_next(*[Fault(503, "")] * 10)
        result = invoke("run", "--loki-url", fake.url, "--from", T0, "--to", T0 + 3600 * S,
                        "--state", tmp_path / "s.db", "--digest-dir", tmp_path / "d",
                        "--report-json", tmp_path / "r.json", "--config", write_retries(tmp_path))
    assert result.exit_code == 3
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["sources"][0]["ok"] is False and "503" in report["sources"][0]["error"]
    digest = Path(report["digest_path"]).read_text()
    assert "⚠ **source `loki` failed" in digest and "not an all-clear" in digest
    assert "source loki failed" in result.output


def write_retries(tmp_path):
    path = tmp_path / "fast.toml"
    path.write_text("[loki]\nmax_retries = 0\n")
    return path


def test_a_rejected_query_exits_2_with_lokis_words(tmp_path):
    with FakeLoki() as fake:
        result = invoke("run", "--loki-url", fake.url, "--query", '{app="checkout"', "--since", "1h",
                        "--state", tmp_path / "s.db", "--digest-dir", tmp_path / "d")
    assert result.exit_code == 2
    assert "parse error at line 1" in result.output


def test_failed_sub_range_is_not_counted_so_a_rerun_fills_it(tmp_path):
    hour = 3600 * S
    entries = [({"namespace": "prod", "app": "api"}, T0 + h * hour + S, f"timeout {h}") for h in range(3)]
    cfg = tmp_path / "c.toml"
    cfg.write_text("[loki]\nmax_retries = 0\nconcurrency = 1\n")
    with FakeLoki(entries) as fake:
        fake.fail_next(Fault(500, "boom"))  # the first sub-range fails once
        args = ["run", "--loki-url", fake.url, "--query", '{namespace="prod"}', "--from", T0, "--to", T0 + 3 * hour, "--state", tmp_path / "state.db",
                "--digest-dir", tmp_path / "d", "--config", cfg]
        assert invoke(*args).exit_code == 3
        assert sum(n for _, n in counts(tmp_path)) == 2
        assert invoke(*args).exit_code == 0
        assert sum(n for _, n in counts(tmp_path)) == 3


@pytest.mark.parametrize("args, message", [
    (["--since", "soon"], "invalid duration"),
    (["--from", "yesterday", "--to", "2026-11-23T07:00:00Z"], "invalid time"),
    (["--from", "2026-11-23T07:00:00Z", "--to", "2026-11-23T06:00:00Z"], "--from must be before --to"),
    (["--from", "2026-11-23T07:00:00Z"], "--from and --to go together"),
    (["--since", "1h", "--from", "2026-11-23T07:00:00Z"], "cannot be combined"),
    (["--source", "file:/nonexistent.jsonl"], "no such file"),
    (["--source", "kafka"], "unknown source"),
    (["--config", "/nonexistent.toml"], "no such file"),
    (["--schedule", "weekly"], "weekly"),
])
def test_usage_errors_exit_2_with_one_line(tmp_path, args, message):
    result = invoke("run", "--state", tmp_path / "s.db", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "s.db").exists()


def test_malformed_file_exits_2_and_leaves_state_unchanged(tmp_path):
    good = write_jsonl(tmp_path / "good.jsonl", [entry(T0 + S, "ok 1")])
    run_file(tmp_path, good)
    before = counts(tmp_path)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(entry(T0 + 2 * S, "ok 2")) + "\n{broken\n")
    result, report = run_file(tmp_path, bad)
    assert result.exit_code == 2
    assert f"{bad}:2: not JSON" in result.output
    assert counts(tmp_path) == before
    assert report["exit_code"] == 2 and "not JSON" in report["error"]


def test_corrupt_state_exits_5_and_is_not_overwritten(tmp_path):
    state = tmp_path / "state.db"
    state.write_bytes(b"garbage" * 100)
    path = write_jsonl(tmp_path / "in.jsonl", [entry(T0 + S, "x 1")])
    result, report = run_file(tmp_path, path)
    assert result.exit_code == 5 and "refusing to touch it" in result.output
    assert state.read_bytes() == b"garbage" * 100
    assert report["exit_code"] == 5


def test_a_locked_state_exits_5(tmp_path):
    from triage.state.lock import RunLock

    path = write_jsonl(tmp_path / "in.jsonl", [entry(T0 + S, "x 1")])
    lock = RunLock(tmp_path / "state.db")
    lock.acquire()
    try:
        result, _ = run_file(tmp_path, path)
    finally:
        lock.release()
    assert result.exit_code == 5 and "locked by another run" in result.output


def test_hostile_lines_cannot_break_the_digest(tmp_path):
    hostile = ["# Heading injected 1", "```\n[click](http://evil.example) 2\n```", "<script>alert(3)</script>",
               "<!channel> ![img](http://x/4.png)", "`" * 7 + " ticks 5"]
    path = write_jsonl(tmp_path / "in.jsonl", [entry(T0 + i * S, line) for i, line in enumerate(hostile)])
    _, report = run_file(tmp_path, path)
    digest = Path(report["digest_path"]).read_text()
    outside_code = _outside_code(digest)
    assert "# Heading injected" not in outside_code
    assert "](http" not in outside_code and "<script>" not in outside_code and "<!channel>" not in outside_code


def _outside_code(markdown: str) -> str:
    """The text of a markdown document with fenced blocks and code spans removed."""
    import re

    kept, fence = [], None
    for line in markdown.split("\n"):
        match = re.match(r"^(`{3,})", line)
        if fence is None and match:
            fence = match.group(1)
            continue
        if fence is not None:
            if line.strip() == fence:
                fence = None
            continue
        kept.append(re.sub(r"(`+)(?:(?!\1).)*?\1", "", line))
    return "\n".join(kept)


def test_scheduled_runs_continue_from_the_last_complete_run(tmp_path):
    from datetime import UTC, datetime

    from triage import config, pipeline
    from triage.records import Schedule
    from triage.timeparse import datetime_to_ns

    cfg = config.load(None, {}, {"sources": ["demo"], "llm.mode": "off", "state.path": str(tmp_path / "s.db"),
                                 "digest.dir": str(tmp_path / "d")}, cwd=tmp_path)
    now = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
    options = pipeline.RunOptions(schedule=Schedule.HOURLY)
    first = pipeline.run(cfg, pipeline.build_deps(cfg), options, now)
    second = pipeline.run(cfg, pipeline.build_deps(cfg), options, datetime(2026, 11, 23, 8, 0, tzinfo=UTC))
    assert first.window.to_ns == datetime_to_ns(now) - 60 * S
    assert second.window.from_ns == first.window.to_ns
    assert second.window.duration_ns == 3600 * S


def test_clusters_that_merge_in_a_later_run_keep_the_oldest_id_and_their_counts(tmp_path):
    hour = 3600 * S
    day1 = [entry(T0 + i * S, f"login failed for user {name} from web") for i, name in enumerate(["alice", "bob"])]
    path = write_jsonl(tmp_path / "in.jsonl", day1 + [entry(T0 + hour + S, "login failed for user carol from web")])
    _, first = run_file(tmp_path, path, window=(T0, T0 + hour))
    assert len(first["clusters"]) == 2
    alice = next(c["fingerprint"] for c in first["clusters"] if "alice" in c["template"])
    bob = next(c["fingerprint"] for c in first["clusters"] if "bob" in c["template"])
    _, second = run_file(tmp_path, path, window=(T0 + hour, T0 + 2 * hour))
    assert [c["fingerprint"] for c in second["clusters"]] == [alice]
    assert second["clusters"][0]["template"] == "login failed for user <*> from web"
    assert second["clusters"][0]["status"] == "ongoing"
    assert counts(tmp_path) == [(alice, 3)]
    conn = sqlite3.connect(tmp_path / "state.db")
    assert (bob, alice) in conn.execute("SELECT old_fingerprint, fingerprint FROM aliases").fetchall()
    assert conn.execute("SELECT COUNT(*) FROM clusters").fetchone()[0] == 1
    _, third = run_file(tmp_path, path, window=(T0, T0 + 2 * hour))
    assert [c["fingerprint"] for c in third["clusters"]] == [alice] and third["clusters"][0]["count"] == 3
