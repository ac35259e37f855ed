"""Counting a window inside Loki (issue 18): patterns, the fake's metric queries, exact counts, fallbacks."""

from __future__ import annotations

import json
import random
import sqlite3

import pytest
import requests
from click.testing import CliRunner

from tests import lokiquery
from tests.loki_corpus import corpus, problem_of
from tests.lokifake import FIXTURES, FakeLoki, Fault, fixture_text
from triage.cli import cli
from triage.cluster import lokipattern

S = 10**9
MINUTE = 60 * S
T0 = 1795417200 * S  # 2026-11-23T07:00:00Z
HOUR = (T0, T0 + 3600 * S)
QUERY = '{namespace=~".+"}'


# ---------------------------------------------------------------- Loki's pattern semantics

@pytest.mark.parametrize("pattern, line, expected", [
    # upstream's own examples (pkg/logql/log/pattern, Matcher.Test)
    ("<_> bar", "foo bar baz", False),
    ("<_> baz", "foo bar baz", True),
    ("foo <_>", "foo bar baz", True),
    ("<_> bar <_>", " bar ", False),  # a wildcard never matches empty text
    ("<_>bar<_>", " bar ", True),
    # what the recorded Loki did (fixture j1's README)
    ("<_>payment failed<_>", 'level=error msg="payment failed" id=1', True),
    ("payment failed", 'level=error msg="payment failed" id=1', False),  # the whole line, not a substring
    ("<_>payment <_> failed<_>", 'level=error msg="payment failed" id=1', False),
    ("<_>payment failed<_>", 'level=error msg="other thing" id=3', False),
    # first occurrence, no backtracking: the literal after <_> is taken where it first appears
    ("<_> id=<_>x", "a id=x id=1x", False),  # a backtracking regex would retry at the second " id="
    ("bar", "foo bar", True),  # a leading literal is searched, not anchored (upstream's behaviour)
    ("<_>", "", False),
])
def test_pattern_matcher_mirrors_loki(pattern, line, expected):
    elements = lokipattern.parse(pattern)
    assert lokipattern.matches(elements, line) is expected
    assert (lokipattern.to_regex(elements).match(line) is not None) is expected


def test_compiled_regex_agrees_with_the_algorithm_on_random_lines():
    """The fake Loki counts with the regex form; it must be the same test as the algorithm."""
    rng = random.Random(7)
    alphabet = "ab =\"\\\n"
    for _ in range(4000):
        line = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12)))
        parts, last_wild = [], None
        for _ in range(rng.randrange(1, 5)):
            wild = rng.random() < 0.5 and last_wild is not True
            parts.append("<_>" if wild else "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 3))))
            last_wild = wild
        elements = lokipattern.parse("".join(parts))
        assert lokipattern.matches(elements, line) == (lokipattern.to_regex(elements).match(line) is not None), \
            (parts, line)


def test_named_captures_and_consecutive_wildcards_are_rejected():
    with pytest.raises(lokipattern.PatternError):
        lokipattern.parse("upstream returned <html> for <_>")
    with pytest.raises(lokipattern.PatternError):
        lokipattern.parse("a <_><_> b")


@pytest.mark.parametrize("lines", [
    # JSON bodies: the pattern is built from and matches the raw JSON text, quotes and backslashes included
    ['{"level":"fatal","msg":"ledger write failed","tx":"1f2e","err":"disk \\"/data\\" full","path":"D:\\\\l\\\\1"}',
     '{"level":"fatal","msg":"ledger write failed","tx":"9a0b","err":"disk \\"/data\\" full","path":"D:\\\\l\\\\22"}'],
    # multi-line entries (a Python traceback), a backtick in the text
    ['Traceback (most recent call last):\n  File "/app/r.py", line 8, in r\nStockError: item 12 `gone`',
     'Traceback (most recent call last):\n  File "/app/r.py", line 8, in r\nStockError: item 977 `gone`'],
    ["level=error msg=\"db timeout\" after=12ms\r", "level=error msg=\"db timeout\" after=7ms\r"],
])
def test_built_patterns_match_raw_lines_and_survive_logql_quoting(lines):
    pattern = lokipattern.build(lines)
    assert pattern is not None and "<_>" in pattern
    assert all(lokipattern.matches(lokipattern.parse(pattern), line) for line in lines)
    assert lokiquery.unquote(lokipattern.quote(pattern)) == pattern  # what Loki's lexer reads back


def test_a_template_with_angle_bracket_text_gets_no_pattern():
    lines = ["upstream returned <html><body>502</body></html> for /v1/carts/1",
             "upstream returned <html><body>502</body></html> for /v1/carts/2"]
    assert lokipattern.build(lines) is None  # <html> would be a named capture: this template is pulled


def test_choose_keeps_only_patterns_that_are_safe_on_the_sample():
    samples = {
        "a": (("prod", "checkout"), ["payment 1 failed for user 7", "payment 2 failed for user 9"]),
        "b": (("prod", "checkout"), ["refund 3 failed for user 7"]),  # a literal line: its own pattern
        "c": (("prod", "payments"), ["payment 5 failed for user 1"]),  # a's template in another group
    }
    chosen = lokipattern.choose(samples, max_chars=10_000)
    patterns = {p.pattern: p.clusters for p in chosen}
    # a's pattern matches c's line whole, in another group: one pattern, counted by group
    assert patterns == {"payment <_> failed for user <_>": {("prod", "checkout"): "a", ("prod", "payments"): "c"},
                        "refund 3 failed for user 7": {("prod", "checkout"): "b"}}
    samples["d"] = (("prod", "checkout"), ["payment 8 failed for user 3 twice"])  # a's pattern takes part of d
    assert {p.pattern for p in lokipattern.choose(samples, max_chars=10_000)} == {
        "refund 3 failed for user 7", "payment 5 failed for user 1", "payment 8 failed for user 3 twice"}, \
        "a pattern that matches another cluster's line in its own group is not safe (a stays in the residue)"
    del samples["d"]
    assert lokipattern.choose(samples, max_chars=40) == [chosen[0]], "the longest query stays within its budget"


# ---------------------------------------------------------------- the fake's metric queries

def test_fake_answers_metric_queries_like_the_recorded_loki():
    """j1: a pattern-filtered count per app in a range query; f2: an instant vector; j2: the residue."""
    end = 1796112571094908084  # the recorded entries were pushed 3, 2 and 1 s before the query (j2 holds id=3)
    rows = [({"probe": "p1", "app": "a"}, end - 3 * S, 'level=error msg="payment failed" id=1'),
            ({"probe": "p1", "app": "a"}, end - 2 * S, 'level=error msg="payment failed" id=2'),
            ({"probe": "p1", "app": "a"}, end - 1 * S, 'level=error msg="other thing" id=3')]
    recorded = json.loads((FIXTURES / "j1_metric_pattern_filter_count.json").read_text())
    with FakeLoki(rows) as fake:
        body = requests.get(fake.url + "/loki/api/v1/query_range", params={
            "query": 'sum by (app) (count_over_time({probe="p1"} |> "<_>payment failed<_>" [1h]))',
            "start": str(end - 3600 * S), "end": str(end), "step": "3600"}).json()
        assert body["data"]["resultType"] == recorded["data"]["resultType"] == "matrix"
        assert [(r["metric"], r["values"]) for r in body["data"]["result"]] == \
            [(r["metric"], r["values"]) for r in recorded["data"]["result"]]
        instant = requests.get(fake.url + "/loki/api/v1/query", params={
            "query": 'sum by (app) (count_over_time({probe="p1"} |> "<_>payment failed<_>" [1h]))',
            "time": str(end)}).json()
        assert instant["data"]["resultType"] == "vector" and instant["data"]["result"][0]["value"][1] == "2"
        residue = requests.get(fake.url + "/loki/api/v1/query_range", params={
            "query": '{probe="p1"} !> "<_>payment failed<_>"', "start": str(end - 3600 * S), "end": str(end),
            "limit": "100"}).json()
        assert [v[1] for s in residue["data"]["result"] for v in s["values"]] == ['level=error msg="other thing" id=3']


def test_minute_points_count_each_minute_exactly_with_offset_1ns():
    """The point at t of ``[1m] offset 1ns`` counts [t - 1m, t): an entry on a minute's edge is that minute's."""
    rows = [({"app": "a"}, T0, "x at edge"), ({"app": "a"}, T0 + MINUTE - 1, "x last ns"),
            ({"app": "a"}, T0 + MINUTE, "x next edge")]
    with FakeLoki(rows) as fake:
        body = requests.get(fake.url + "/loki/api/v1/query_range", params={
            "query": 'sum(count_over_time({app="a"} [1m] offset 1ns))', "start": str(T0 + MINUTE),
            "end": str(T0 + 2 * MINUTE), "step": "60"}).json()
    points = body["data"]["result"][0]["values"]
    assert points == [[(T0 + MINUTE) / S - 0.001, "2"], [(T0 + 2 * MINUTE) / S - 0.001, "1"]]


def test_pre_3_0_fake_rejects_pattern_filters_with_a_parse_error():
    with FakeLoki([({"app": "a"}, T0, "x")], pattern_filters=False) as fake:
        response = requests.get(fake.url + "/loki/api/v1/query_range", params={
            "query": '{app="a"} |> "<_>x"', "start": str(T0), "end": str(T0 + S), "limit": "10"})
    assert response.status_code == 400
    assert response.text == "parse error at line 1, col 12: syntax error: unexpected >"
    assert response.text.startswith(fixture_text("e_error_logql_parse.txt")[:26])  # the recorded format


# ---------------------------------------------------------------- end to end: exact counts

def run(tmp_path, fake, max_pull, name, window=HOUR, **env):
    base = tmp_path / name
    base.mkdir()
    env = {"TRIAGE_LOKI__MAX_PULL": str(max_pull), **{f"TRIAGE_LOKI__{k.upper()}": str(v) for k, v in env.items()}}
    result = CliRunner(env=env).invoke(cli, [
        "run", "--source", "loki", "--loki-url", fake.url, "--query", QUERY, "--from", str(window[0]), "--to",
        str(window[1]), "--state", str(base / "s.db"), "--digest-dir", str(base / "d"),
        "--report-json", str(base / "r.json")], catch_exceptions=False)
    report = json.loads((base / "r.json").read_text())
    digest = open(report["digest_path"], encoding="utf-8").read() if report["digest_path"] else ""
    by_problem, names = {}, {}
    for cluster in report["clusters"]:
        problem = problem_of(cluster["template"], cluster["labels"].get("app", ""))
        names[cluster["fingerprint"]] = problem or cluster["template"]
        by_problem[problem] = by_problem.get(problem, 0) + cluster["count"]
    conn = sqlite3.connect(base / "s.db")
    minutes = {}
    for fingerprint, bucket, count in conn.execute("SELECT fingerprint, bucket_ns, count FROM counts"):
        key = (names.get(fingerprint, fingerprint), bucket)
        minutes[key] = minutes.get(key, 0) + count
    conn.close()
    return result, report, digest, by_problem, minutes


@pytest.fixture(scope="module")
def planted():
    return corpus(T0, 30_000)


def test_planted_problems_counted_in_loki_are_exact(tmp_path, planted):
    rows, expected = planted
    with FakeLoki(rows) as fake:
        _, pulled_all, _, all_problems, all_minutes = run(tmp_path, fake, 10**9, "all")
        before = len(fake.requests)
        result, report, digest, problems, minutes = run(tmp_path, fake, 5_000, "counted")
        queries = len(fake.requests) - before
    assert result.exit_code == 0, result.output
    source = report["sources"][0]
    assert pulled_all["sources"][0]["counted_in_loki"] == 0
    assert source["counted_in_loki"] > 20_000 and report["lines"] == len(rows) == pulled_all["lines"]
    assert report["lines"] - source["counted_in_loki"] <= 5_000 + 1_000, "pulled: the sample and the residue"
    for marker, count in expected.items():
        assert problems[marker] == count == all_problems[marker], marker
    assert minutes == all_minutes, "every cluster's per-minute counts equal a full pull's"
    seen = {(c["fingerprint"], c["first_seen"], c["last_seen"]) for c in report["clusters"]}
    assert seen == {(c["fingerprint"], c["first_seen"], c["last_seen"]) for c in pulled_all["clusters"]}
    assert sum(c["count"] for c in report["clusters"]) == report["lines"]
    assert "more than loki.max_pull (5,000): Loki counted" in digest
    assert sum(c["counted_in_loki"] for c in report["clusters"]) == source["counted_in_loki"]
    by_loki = [c for c in report["clusters"] if c["counted_in_loki"]]
    assert by_loki and f"**{by_loki[0]['count']:,}** in this window ({by_loki[0]['counted_in_loki']:,} counted by Loki)" \
        in digest, "each card says how much of its count Loki counted"
    assert queries < 100


def test_partial_edge_minutes_are_pulled_and_counts_stay_exact(tmp_path, planted):
    """A window that does not start or end on a minute: Loki counts the whole minutes, the edges are pulled."""
    rows, _ = planted
    window = (T0 + 17 * S + 5, T0 + 3600 * S - 3 * S)
    with FakeLoki(rows) as fake:
        _, pulled_all, _, all_problems, all_minutes = run(tmp_path, fake, 10**9, "all", window)
        _, report, _, problems, minutes = run(tmp_path, fake, 5_000, "counted", window)
    assert report["sources"][0]["counted_in_loki"] > 0 and report["lines"] == pulled_all["lines"] < len(rows)
    assert problems == all_problems and minutes == all_minutes


def test_a_failed_sub_range_drops_what_loki_counted_there_too(tmp_path, planted):
    """Residue requests of the second half-hour fail (503, no retry): that sub-range counts nothing,
    neither its pulled entries nor Loki's counts of it; the first half-hour counts exactly."""
    rows, _ = planted
    half = T0 + 1800 * S
    with FakeLoki(rows) as fake:
        _, _, _, _, all_minutes = run(tmp_path, fake, 10**9, "all", split="30m")
        residue = lambda query: "!>" in query and "|>" not in query  # noqa: E731 (the residue: no |>)
        fake.fail_when.append((lambda path, params: path.endswith("/query_range") and residue(params.get("query", ""))
                               and int(params["start"]) >= half, Fault(status=503, body="")))
        result, report, digest, _, minutes = run(tmp_path, fake, 5_000, "failed", split="30m", max_retries=0)
    assert result.exit_code == 3 and not report["sources"][0]["ok"]
    assert minutes == {key: n for key, n in all_minutes.items() if key[1] < half}
    assert "failed (partial results below)" in digest


def test_a_loki_without_pattern_filters_is_pulled_with_a_warning(tmp_path, planted):
    rows, expected = planted
    with FakeLoki(rows, pattern_filters=False) as fake:
        result, report, digest, problems, _ = run(tmp_path, fake, 5_000, "old")
    assert result.exit_code == 0
    assert report["sources"][0]["counted_in_loki"] == 0 and report["lines"] == len(rows)
    assert all(problems[m] == n for m, n in expected.items())
    assert "⚠ loki: the window holds 30,000 entries, more than loki.max_pull (5,000)" in digest
    assert "no pattern filters |> (they came with Loki 3.0)" in digest


@pytest.mark.parametrize("limits, reason", [
    ({"max_query_chars": 400}, "refused as too long"),  # a proxy's 414 for a long URL
    ({"max_series": 1}, "maximum number of series (1) reached"),  # Loki's max_query_series
    ({"metric_max_query_length_ns": 30 * MINUTE}, "the query time range exceeds the limit"),
])
def test_a_query_over_the_servers_limits_means_pulling(tmp_path, planted, limits, reason):
    rows, expected = planted
    with FakeLoki(rows, **limits) as fake:
        result, report, digest, problems, _ = run(tmp_path, fake, 5_000, "limits")
    assert result.exit_code == 0
    assert report["sources"][0]["counted_in_loki"] == 0
    assert all(problems[m] == n for m, n in expected.items())
    assert reason in digest and "every entry was pulled" in digest


def test_a_small_window_is_pulled_as_before(tmp_path, planted):
    rows, _ = planted
    with FakeLoki(rows) as fake:
        _, report, digest, _, _ = run(tmp_path, fake, 10**9, "small")
        metric = [p for _, p, _ in fake.requests if "count_over_time" in p.get("query", "")]
    assert report["sources"][0]["counted_in_loki"] == 0 and len(metric) == 1, "one count_over_time, then the pull"
    assert "loki.max_pull" not in digest


def test_a_loki_that_cannot_parse_the_count_query_is_pulled_with_a_warning(tmp_path, planted):
    # Loki before 2.3 has no `offset` in metric queries: the first count query is a 400 parse error
    # while log queries work. Every entry is pulled, the counts stay exact, and the digest says why.
    rows, expected = planted
    with FakeLoki(rows) as fake:
        fake.fail_when.append((lambda path, params: "offset" in params.get("query", ""),
                               Fault(400, "parse error at line 1, col 58: syntax error: unexpected IDENTIFIER")))
        result, report, digest, problems, _ = run(tmp_path, fake, 5_000, "no-offset")
    assert result.exit_code == 0
    assert report["sources"][0]["counted_in_loki"] == 0 and report["lines"] == len(rows)
    assert all(problems[m] == n for m, n in expected.items())
    assert "⚠ loki: Loki could not say how many entries the window holds" in digest and "every entry was pulled" in digest
    assert "syntax error: unexpected IDENTIFIER" in digest and "no pattern filters" not in digest
