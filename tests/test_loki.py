"""The Loki source against a fake Loki over real HTTP, built from the recorded fixtures."""

from __future__ import annotations

import json
import re

import pytest

from tests.localserver import LocalServer, QuietHandler
from tests.lokifake import FIXTURES, Fault, FakeLoki, fixture_entries, fixture_text
from triage.errors import LokiQueryError, SourceError
from triage.records import Window
from triage.source.loki import LokiAuth, LokiSource, split_selector

T = 1795371286123456789  # the recorded burst: 18 entries on this nanosecond
B_WINDOW = Window(1795371281123456789, 1795371289123456789)
B_FIXTURES = ("b1_page1_backward_limit20.json", "b2_page2_backward_end_T_plus_1ns.json",
              "b4_page1_forward_limit20.json", "b5_page2_forward_start_T.json")
ALL = '{namespace=~"prod|staging"}'


def source(url: str, query: str = ALL, **kwargs) -> LokiSource:
    sleeps = kwargs.pop("sleeps", [])
    return LokiSource(url, query, sleep=sleeps.append, **kwargs)


def keys(records):
    return sorted((tuple(sorted(r.labels.items())), r.ts_ns, r.line) for r in records)


def test_fake_reproduces_recorded_first_page():
    """The double answers like the recorded server: 12 newer entries + 8 of the 18 at T."""
    entries = fixture_entries(*B_FIXTURES)
    assert len(entries) == 40
    recorded = json.loads((FIXTURES / "b1_page1_backward_limit20.json").read_text())
    recorded_ts = sorted(int(v[0]) for s in recorded["data"]["result"] for v in s["values"])
    with FakeLoki(entries) as fake:
        import requests

        body = requests.get(fake.url + "/loki/api/v1/query_range", params={
            "query": ALL, "start": str(B_WINDOW.from_ns), "end": str(B_WINDOW.to_ns), "limit": "20",
            "direction": "backward"}, timeout=5).json()
    served_ts = sorted(int(v[0]) for s in body["data"]["result"] for v in s["values"])
    assert served_ts == recorded_ts


@pytest.mark.parametrize("page_limit", [20, 19, 7, 5000])
def test_paging_across_a_same_nanosecond_burst_loses_and_duplicates_nothing(page_limit):
    entries = fixture_entries(*B_FIXTURES)
    with FakeLoki(entries) as fake:
        loki = source(fake.url, page_limit=page_limit)
        got = list(loki.fetch(B_WINDOW))
    assert keys(got) == sorted((tuple(sorted(l.items())), ts, line) for l, ts, line in entries)
    assert [r.ts_ns for r in got] == sorted(r.ts_ns for r in got), "merged by timestamp"
    assert loki.notes.failures == []


def test_burst_larger_than_a_page_is_fetched_stream_by_stream():
    entries = fixture_entries(*B_FIXTURES)
    with FakeLoki(entries) as fake:
        loki = source(fake.url, page_limit=10)  # 18 entries share T: more than a page
        got = list(loki.fetch(B_WINDOW))
        series_calls = [p for p, _, _ in fake.requests if p.endswith("/series")]
    assert len(got) == 40
    assert len({(r.ts_ns, r.line, tuple(sorted(r.labels.items()))) for r in got}) == 40
    assert series_calls, "the tied nanosecond was split by stream"


def test_burst_larger_than_a_page_within_one_stream_fails_with_the_count():
    labels = {"namespace": "prod", "app": "checkout"}
    with FakeLoki([(labels, T, f"item {i} failed") for i in range(12)], max_entries=5) as fake:
        loki = source(fake.url, page_limit=5)
        got = list(loki.fetch(Window(T - 10, T + 10)))
    assert len(loki.notes.failures) == 1
    message = str(loki.notes.failures[0].error)
    assert "share the timestamp" in message and "max_entries_limit_per_query" in message
    assert isinstance(loki.notes.failures[0].error, SourceError)
    assert len(got) <= 5


def test_requests_use_integer_ns_forward_paging_from_the_newest_timestamp(fake_loki):
    for i in range(25):
        fake_loki.add({"namespace": "prod", "app": "a"}, 1_000 + i, f"line {i}")
    loki = source(fake_loki.url, '{namespace="prod"}', page_limit=10, concurrency=1)  # one worker: no split
    got = list(loki.fetch(Window(1_000, 2_000)))
    assert len(got) == 25
    sent = fake_loki.query_ranges()
    assert [(p["start"], p["end"], p["limit"], p["direction"]) for p in sent] == [
        ("1000", "2000", "10", "forward"), ("1009", "2000", "10", "forward"), ("1018", "2000", "10", "forward")]


def test_window_is_split_into_sub_ranges_and_merged_in_order(fake_loki):
    for i in range(100):
        fake_loki.add({"namespace": "prod", "app": "a"}, i * 10, f"line {i}")
    loki = source(fake_loki.url, '{namespace="prod"}', split_ns=95, concurrency=3)
    got = list(loki.fetch(Window(0, 1000)))
    assert [r.line for r in got] == [f"line {i}" for i in range(100)]
    ranges = sorted((int(p["start"]), int(p["end"])) for p in fake_loki.query_ranges())
    assert ranges[0] == (0, 95) and ranges[-1] == (950, 1000) and len(ranges) == 11


def test_page_limit_above_the_server_maximum_is_lowered_to_it():
    with FakeLoki([({"namespace": "prod"}, 5, "x")], max_entries=100) as fake:
        loki = source(fake.url, '{namespace="prod"}', page_limit=5000)
        got = list(loki.fetch(Window(0, 10)))
        limits = [p["limit"] for p in fake.query_ranges()]
    assert len(got) == 1
    assert limits == ["5000", "100"]


@pytest.mark.parametrize("query, fixture", [
    ('{app="checkout"', "e_error_logql_parse.txt"),
    ('{app="checkout"} |= ', "e2_error_logql_parse_bad_pipeline.txt"),
])
def test_a_bad_query_is_the_users_error_shown_as_loki_said_and_never_retried(fake_loki, query, fixture):
    loki = source(fake_loki.url, query)
    list(loki.fetch(Window(0, 10)))
    error = loki.notes.failures[0].error
    assert isinstance(error, LokiQueryError)
    assert fixture_text(fixture) in str(error)
    assert len(fake_loki.requests) == 1


def test_recorded_400_bodies_are_shown_verbatim(fake_loki):
    body = fixture_text("d_error_query_length_exceeded.txt")
    fake_loki.fail_next(Fault(400, body))
    loki = source(fake_loki.url, ALL)
    list(loki.fetch(Window(0, 10)))
    assert body in str(loki.notes.failures[0].error)


def test_429_with_retry_after_is_honoured_then_succeeds(fake_loki):
    fake_loki.add({"namespace": "prod"}, 5, "x")
    fake_loki.fail_next(Fault(429, "too many outstanding requests", {"Retry-After": "7"}),
                        Fault(429, "too many outstanding requests"))
    sleeps: list[float] = []
    loki = source(fake_loki.url, '{namespace="prod"}', sleeps=sleeps)
    got = list(loki.fetch(Window(0, 10)))
    assert len(got) == 1 and loki.notes.failures == []
    assert sleeps[0] >= 7
    assert len(sleeps) == 2
    assert loki.requests_by_status == {"429": 2, "200": 1}


@pytest.mark.parametrize("fault", [
    Fault(502, "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"),
    Fault(503, ""),
    Fault(504, "upstream request timeout"),
    Fault(kind="reset"),
    Fault(kind="truncate"),
])
def test_transient_faults_are_retried(fake_loki, fault):
    fake_loki.add({"namespace": "prod"}, 5, "x")
    fake_loki.fail_next(fault)
    loki = source(fake_loki.url, '{namespace="prod"}')
    assert [r.line for r in loki.fetch(Window(0, 10))] == ["x"]
    assert loki.notes.failures == []


def test_persistent_5xx_fails_the_source_after_the_retries(fake_loki):
    fake_loki.fail_next(*[Fault(502, "<html><title>502 Bad Gateway</title></html>")] * 3)
    sleeps: list[float] = []
    loki = source(fake_loki.url, '{namespace="prod"}', max_retries=2, sleeps=sleeps)
    list(loki.fetch(Window(0, 10)))
    error = loki.notes.failures[0].error
    assert isinstance(error, SourceError)
    assert "502" in str(error) and "Bad Gateway" in str(error) and "3 attempts" in str(error)
    assert len(sleeps) == 2
    assert all(0 <= s <= 30 for s in sleeps)


def test_unreachable_loki_fails_the_source_with_the_reason():
    loki = source("http://127.0.0.1:9", '{namespace="prod"}', max_retries=1)
    list(loki.fetch(Window(0, 10)))
    assert "Connection refused" in str(loki.notes.failures[0].error)


def test_timeout_is_retried_then_reported():
    with FakeLoki([({"namespace": "prod"}, 5, "x")]) as fake:
        fake.fail_next(Fault(kind="slow", delay_s=0.6), Fault(kind="slow", delay_s=0.6))
        loki = source(fake.url, '{namespace="prod"}', timeout_s=0.2, max_retries=1)
        list(loki.fetch(Window(0, 10)))
    assert "no answer within 0.2s" in str(loki.notes.failures[0].error)


def test_tenant_and_bearer_token_are_sent():
    with FakeLoki([({"namespace": "prod"}, 5, "x")], require_tenant="team-a", require_auth="Bearer s3cr3t") as fake:
        loki = source(fake.url, '{namespace="prod"}', auth=LokiAuth(tenant="team-a", token="s3cr3t"))
        assert len(list(loki.fetch(Window(0, 10)))) == 1
        missing = source(fake.url, '{namespace="prod"}')
        list(missing.fetch(Window(0, 10)))
    error = str(missing.notes.failures[0].error)
    assert "no org id" in error and "loki.tenant" in error


def test_basic_auth_is_sent():
    with FakeLoki([({"namespace": "prod"}, 5, "x")], require_auth="Basic dTpw") as fake:
        loki = source(fake.url, '{namespace="prod"}', auth=LokiAuth(username="u", password="p"))
        assert len(list(loki.fetch(Window(0, 10)))) == 1


def test_structured_metadata_splitting_a_stream_and_categorized_labels_are_read(fake_loki):
    from triage.source.file import parse_stream

    for name in ("a3_query_range_structured_metadata_default.json", "a2_query_range_categorize_labels.json"):
        body = json.loads((FIXTURES / name).read_text())
        records = [r for s in body["data"]["result"] for r in parse_stream(s, name)]
        assert len(records) == 4
        assert all(r.labels["app"] == "payments" for r in records)
        assert sum("trace_id" in r.labels for r in records) == 2


def test_multiline_and_non_ascii_lines_arrive_verbatim(fake_loki):
    trace = 'Exception in thread "main" java.lang.IllegalStateException: état invalide\n\tat com.x.Main.run(Main.java:3)'
    fake_loki.add({"namespace": "prod"}, 5, trace)
    fake_loki.add({"namespace": "prod"}, 6, "ошибка: 接続できません ✗")
    got = list(source(fake_loki.url, '{namespace="prod"}').fetch(Window(0, 10)))
    assert [r.line for r in got] == [trace, "ошибка: 接続できません ✗"]


def test_split_selector_skips_braces_inside_strings():
    assert split_selector('{app="a}b", ns=~"x|y"} |= "}" | logfmt') == ('{app="a}b", ns=~"x|y"}', '|= "}" | logfmt')
    with pytest.raises(LokiQueryError):
        split_selector('{app="a"')


def test_tls_is_verified_by_default_and_a_ca_file_is_honoured(tmp_path):
    import ssl
    import subprocess

    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(tmp_path / "key.pem"),
                    "-out", str(tmp_path / "cert.pem")], check=True, capture_output=True)
    with FakeLoki([({"namespace": "prod"}, 5, "x")]) as fake:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
        fake._server.socket = context.wrap_socket(fake._server.socket, server_side=True)
        url = fake.url.replace("http://", "https://")
        untrusted = source(url, '{namespace="prod"}', max_retries=0)
        list(untrusted.fetch(Window(0, 10)))
        assert "TLS error" in str(untrusted.notes.failures[0].error)
        trusted = source(url, '{namespace="prod"}', auth=LokiAuth(ca_file=tmp_path / "cert.pem"))
        got = [r.line for r in trusted.fetch(Window(0, 10))]
        assert got == ["x"], trusted.notes.failures


def test_a_tie_larger_than_5000_is_fetched_with_the_servers_stated_maximum():
    """Issue 13.5: the tie fetch asks for the server's maximum (learned from its 400), not max(limit, 5000)."""
    labels = {"namespace": "prod", "app": "checkout"}
    with FakeLoki([(labels, T, f"item {i} failed") for i in range(5200)], max_entries=8000) as fake:
        loki = source(fake.url, page_limit=100)
        got = list(loki.fetch(Window(T - 10, T + 10)))
        limits = [int(p["limit"]) for p in fake.query_ranges()]
    assert loki.notes.failures == []
    assert len(got) == 5200 and len({r.line for r in got}) == 5200
    assert 8000 in limits


def test_late_entries_in_the_settling_part_are_counted_once(tmp_path):
    """Issue 13.3: the part of a window younger than loki.settle is read again by the next run."""
    import sqlite3

    from tests.test_state import job

    t0 = 1795417200 * 10**9
    minute = 60 * 10**9
    labels = {"namespace": "prod", "app": "api"}
    with FakeLoki([(labels, t0 - 5 * minute, "queue 1 stalled")]) as fake:
        settings = {"loki.url": fake.url, "loki.query": '{namespace="prod"}', "loki.settle": "10m",
                    "run.auto_prime": False}
        first = job(tmp_path, t0 + minute, sources=["loki"], schedule="hourly", settings=settings)
        assert (first.window.to_ns, first.lines) == (t0, 1)
        fake.add(labels, t0 - 4 * minute, "queue 2 stalled")  # written late, into the part already read
        fake.add(labels, t0 + 55 * minute, "queue 3 stalled")
        second = job(tmp_path, t0 + 61 * minute, sources=["loki"], schedule="hourly", settings=settings)
    assert second.window.from_ns == t0 - 9 * minute  # where the first run's settling part began
    assert (second.window_plan.reread.from_ns, second.window_plan.reread_reason) == (t0 - 9 * minute, "settling")
    conn = sqlite3.connect(tmp_path / "s.db")
    assert conn.execute("SELECT SUM(count) FROM counts").fetchone()[0] == 3
    assert conn.execute("SELECT total_count FROM clusters").fetchall() == [(3,)]
    # identities are kept for the part still settling only
    assert conn.execute("SELECT ts_ns FROM settled_entries").fetchall() == [(t0 + 55 * minute,)]
    conn.close()


class _Replay(LocalServer):
    """Answers every query_range with one recorded body: the page encodings a real Loki sends."""

    def __init__(self, body: bytes):
        self.body = body
        self._start_server()

    def _handler(self):
        replay = self

        class Handler(QuietHandler):
            def do_GET(self):
                self.send_body(200, replay.body, "application/json; charset=UTF-8")

        return Handler


MIXED_PAGE = {"status": "success", "data": {"resultType": "streams", "result": [
    {"stream": {"app": "x", "pod": None}, "values": [["7", "null label value"]]},
    {"stream": {"app": "z"}, "values": [["8", 404], ["10", "text"]]},
    {"stream": {"app": "y"}, "values": [["6", "a", {"structuredMetadata": {"trace_id": "t1"}}], ["9", "b"]]},
]}}


@pytest.mark.parametrize("body", [
    (FIXTURES / "a2_query_range_categorize_labels.json").read_bytes(),
    (FIXTURES / "a3_query_range_structured_metadata_default.json").read_bytes(),
    (FIXTURES / "a5_query_range_logfmt_parser_categorize_labels.json").read_bytes(),
    json.dumps(MIXED_PAGE).encode(),
], ids=["categorize-labels", "metadata-in-stream", "parsed", "mixed"])
def test_every_page_encoding_is_read_as_the_file_reader_reads_it(body):
    """The fast page decoder (default [ts, line] pairs) gives what the general reader gives for every
    encoding Loki sends: categorize-labels triples, parser fields, null label values, a non-string line."""
    from triage.source.file import parse_stream

    expected = sorted((r for s in json.loads(body)["data"]["result"] for r in parse_stream(s, "x")),
                      key=lambda r: r.ts_ns)
    with _Replay(body) as replay:
        loki = source(replay.base_url, page_limit=5000, split_ns=10**18)  # one request: the body is the page
        got = list(loki.fetch(Window(expected[0].ts_ns, expected[-1].ts_ns + 1)))
    assert loki.notes.failures == []
    assert [(r.ts_ns, r.labels, r.line) for r in got] == [(r.ts_ns, r.labels, r.line) for r in expected]


def test_a_malformed_page_value_fails_the_sub_range_and_says_which():
    body = json.dumps({"status": "success", "data": {"resultType": "streams", "result": [
        {"stream": {"app": "x"}, "values": [["5", "ok"], ["not-a-time", "bad"]]}]}}).encode()
    with _Replay(body) as replay:
        loki = source(replay.base_url)
        assert list(loki.fetch(Window(0, 10))) == []
    assert len(loki.notes.failures) == 1
    assert "'not-a-time' is not integer nanoseconds" in str(loki.notes.failures[0].error)


# ---------------------------------------------------------------------- one range fetched by several requests at once

HOUR = 3600 * 10**9


def _hour_of_entries(count: int, seed: int, tail_heavy: bool = False) -> list[tuple[dict, int, str]]:
    """``count`` entries in one hour over a few streams, with same-nanosecond bursts (a batch written
    by one process at once) and, with ``tail_heavy``, nine in ten in the last minute (an incident)."""
    import random

    rng = random.Random(seed)
    entries = []
    while len(entries) < count:
        if tail_heavy and rng.random() < 0.9:
            ts = HOUR - 60 * 10**9 + rng.randrange(60 * 10**9)
        else:
            ts = rng.randrange(HOUR)
        for n in range(rng.choice([1, 1, 1, 3, 12])):  # a burst: entries on one nanosecond
            entries.append(({"namespace": "prod", "app": rng.choice("abc")}, ts, f"line {len(entries)} {n}"))
    return entries[:count]


@pytest.mark.parametrize("page_limit, seed, tail_heavy", [(100, 1, False), (37, 2, False), (50, 3, True),
                                                          (13, 4, True)])
def test_one_range_is_fetched_by_several_requests_at_once_in_order_without_loss(page_limit, seed, tail_heavy):
    """A 1 h window is one planned range: paging it from one start would be one request at a time.
    Its rest is cut into pieces after the first page; the reader still gets every entry once, in order."""
    entries = _hour_of_entries(3000, seed, tail_heavy)
    with FakeLoki(entries) as fake:
        fake.delay_s = 0.05  # long enough that requests sent together overlap on a loaded machine
        loki = source(fake.url, '{namespace="prod"}', page_limit=page_limit, concurrency=4)
        got = list(loki.fetch(Window(0, HOUR)))
        in_flight = fake.max_in_flight
    assert loki.notes.failures == []
    assert keys(got) == sorted((tuple(sorted(l.items())), ts, line) for l, ts, line in entries)
    assert len(got) == len(entries), "nothing twice"
    assert [r.ts_ns for r in got] == sorted(r.ts_ns for r in got)
    assert in_flight >= 3, f"only {in_flight} requests were in flight at once"


def test_a_slow_reader_holds_a_bounded_number_of_pages(caplog):
    """The pieces are fetched ahead of the reader, never the whole window: at most 2 * (PAGES_AHEAD +
    concurrency) pages plus the reader's PAGES_AHEAD wait, however many the window holds."""
    import logging
    import time

    from triage.source.pieces import PAGES_AHEAD

    entries = _hour_of_entries(6000, 5)
    with FakeLoki(entries) as fake:
        loki = source(fake.url, '{namespace="prod"}', page_limit=50, concurrency=4)
        with caplog.at_level(logging.DEBUG, logger="triage.source.loki"):
            count = 0
            for _ in loki.fetch(Window(0, HOUR)):
                count += 1
                if count % 50 == 0:
                    time.sleep(0.01)  # a reader slower than the fetch
    assert count == len(entries)
    held = int(re.search(r"at most (\d+) pages held", caplog.text).group(1))
    assert 2 < held <= 2 * (PAGES_AHEAD + 4) + PAGES_AHEAD


def test_failed_pieces_fail_their_planned_range_once(fake_loki):
    """Several pieces of one range fail at once (Loki down after the first page): the range is
    reported failed once, with the error, and the other ranges of the window are read whole."""
    entries = _hour_of_entries(2000, 6)
    for labels, ts, line in entries:
        fake_loki.add(labels, ts, line)
    fake_loki.add({"namespace": "prod", "app": "a"}, HOUR + 5, "the next hour")
    loki = source(fake_loki.url, '{namespace="prod"}', page_limit=40, concurrency=4, max_retries=1)
    fake_loki.fail_next(Fault(kind="slow"), *[Fault(503, "unavailable")] * 40)
    got = list(loki.fetch(Window(0, HOUR)))
    assert [f.window for f in loki.notes.failures] == [Window(0, HOUR)]
    assert "HTTP 503 unavailable" in str(loki.notes.failures[0].error)
    assert len(got) < len(entries)
    fake_loki.faults.clear()  # Loki is back
    assert [r.line for r in loki.fetch(Window(HOUR, 2 * HOUR))] == ["the next hour"]


# ---------------------------------------------------------------------- a level from Loki 3 instead of a regex

DETECTED = '{namespace=~".+"} | detected_level=~"error|fatal|critical"'  # the README's example query
A_WINDOW = Window(1795365826921399093, 1795373165427364088)  # the recorded a* requests' window


def _levelled_entries():
    """Entries as Loki 3 returns them by default: ``detected_level`` (structured metadata) in the stream
    labels (fixture a3), next to entries it detected as info and one it could not (``unknown``)."""
    entries = fixture_entries("a3_query_range_structured_metadata_default.json")
    base = {"namespace": "prod", "app": "checkout", "pod": "checkout-7d9f-x2k4p", "service_name": "checkout"}
    entries += [({**base, "detected_level": "info"}, T + n, f"level=info msg=\"cart saved\" n={n}") for n in range(5)]
    entries.append(({**base, "detected_level": "unknown"}, T + 9, "E1201 12:00:00.000000 1 reflector.go:1] error"))
    entries += [({**base, "detected_level": "error"}, T, f"level=error msg=\"db timeout\" n={n}") for n in range(12)]
    entries += [({**base, "detected_level": "info"}, T, f"level=info msg=\"retrying\" n={n}") for n in range(4)]
    return entries


def test_a_detected_level_query_selects_by_the_level_loki_stored():
    entries = _levelled_entries()
    errors = [e for e in entries if e[0].get("detected_level") in ("error", "fatal", "critical")]
    with FakeLoki(entries) as fake:
        loki = source(fake.url, DETECTED, page_limit=5)  # 16 entries share T: fetched stream by stream
        got = list(loki.fetch(A_WINDOW))
        tie_queries = [p["query"] for p in fake.query_ranges() if p["end"] == str(T + 1)]
    assert loki.notes.failures == []
    assert keys(got) == sorted((tuple(sorted(l.items())), ts, line) for l, ts, line in errors)
    assert tie_queries and all(q.endswith('| detected_level=~"error|fatal|critical"') for q in tie_queries)
    assert all(r.labels["detected_level"] == "error" for r in got)


def test_triage_run_reads_with_a_detected_level_query(tmp_path):
    from click.testing import CliRunner

    from triage.cli import cli

    entries = _levelled_entries()
    errors = sum(e[0].get("detected_level") == "error" for e in entries)
    with FakeLoki(entries) as fake:
        result = CliRunner().invoke(cli, [
            "run", "--loki-url", fake.url, "--query", DETECTED,
            "--from", str(A_WINDOW.from_ns), "--to", str(A_WINDOW.to_ns),
            "--state", str(tmp_path / "s.db"), "--digest-dir", str(tmp_path / "d"), "--no-llm",
            "--report-json", str(tmp_path / "r.json")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "r.json").read_text())["lines"] == errors
