"""File and demo sources."""

import json

import pytest

from tests.lokifake import FIXTURES
from triage.errors import UsageError
from triage.records import Window
from triage.source.demo import DemoSource
from triage.source.file import FileSource, load_records

H = 3600 * 10**9


def test_jsonl_accepts_every_ts_form_and_multiline_lines(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in [
        {"ts": "1795371286123456789", "labels": {"app": "a"}, "line": "one"},
        {"ts": 1795371286123456790, "labels": {"app": "a", "n": 3}, "line": "two\n\tat x.y(Z.java:1)"},
        {"ts": "2026-11-23T07:00:00.5Z", "line": "three"},
    ]) + "\n\n")
    records = list(load_records(path))
    assert [r.ts_ns for r in records] == [1795371286123456789, 1795371286123456790, 1795417200500000000]
    assert records[1].line == "two\n\tat x.y(Z.java:1)" and records[1].labels == {"app": "a", "n": "3"}
    assert records[2].labels == {}


def test_saved_loki_response_is_read_with_both_label_encodings():
    records = list(load_records(FIXTURES / "a_query_range_streams_limit100.json"))
    assert len(records) == 6 and records == sorted(records, key=lambda r: r.ts_ns)
    assert any("\n" in r.line for r in records), "the multi-line stack trace stays one entry"
    categorized = list(load_records(FIXTURES / "a5_query_range_logfmt_parser_categorize_labels.json"))
    assert categorized and all("app" in r.labels for r in categorized)


@pytest.mark.parametrize("content, message", [
    ('{"ts": 1, "line": "x"}\n{"ts": 2}\n', ":2: 'line' must be a string"),
    ('{"ts": "soon", "line": "x"}\n', "'ts': invalid time"),
    ('{"line": "x"}\n', "'ts' is missing"),
    ('{"status": "success", "data": {"resultType": "matrix", "result": []}}', "log query result"),
    ("not json\n", "neither JSON Lines entries nor a Loki query_range response"),
])
def test_malformed_files_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(UsageError, match=message):
        list(load_records(path))


def test_file_source_skips_and_counts_entries_outside_the_window(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_text("".join(json.dumps({"ts": ts, "line": "x"}) + "\n" for ts in (5, 10, 15, 20)))
    source = FileSource(f"file:{path}", path)
    assert [r.ts_ns for r in source.fetch(Window(10, 20))] == [10, 15]
    assert source.notes.skipped_outside_window == 2


def test_demo_is_deterministic_and_overlapping_windows_agree():
    start = 1795417200 * 10**9
    first = list(DemoSource().fetch(Window(start, start + 2 * H)))
    again = list(DemoSource().fetch(Window(start, start + 2 * H)))
    later = list(DemoSource().fetch(Window(start + H, start + 3 * H)))
    assert first == again
    overlap = [r for r in first if r.ts_ns >= start + H]
    assert overlap == [r for r in later if r.ts_ns < start + 2 * H]
    assert all(start <= r.ts_ns < start + 2 * H for r in first)


def test_demo_has_the_variety_a_real_cluster_has():
    start = 1795417200 * 10**9
    records = list(DemoSource().fetch(Window(start, start + 24 * H)))
    lines = [r.line for r in records]
    assert len({r.labels["namespace"] for r in records}) >= 2 and len({r.labels["app"] for r in records}) >= 5
    assert any(line.startswith("{") for line in lines) and any("level=error" in line for line in lines)
    assert any("\tat " in line for line in lines) and any("Traceback" in line for line in lines)
    assert any(line.startswith("panic:") for line in lines)


def test_deeply_nested_json_is_a_usage_error_not_a_crash(tmp_path):
    path = tmp_path / "deep.jsonl"
    path.write_text('{"a":' * 5000 + "1" + "}" * 5000 + "\n")
    with pytest.raises(UsageError):
        list(load_records(path))
