"""Extract finds a logfmt line's fields once a shape (triage/extract.py, ``_Recipe``): a line read
through the recipe of another line of its shape must give exactly what a scan of its own gives.
Lines of one shape differ only in their ASCII digits, as the lines of one go-kit / logrus / klog call
site do (request ids, ports, offsets, timings)."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from triage import extract
from triage.extract import level_and_message

KEYS = ["msg", "message", "err", "error", "reason", "level", "lvl", "severity", "ts", "caller", "component",
        "k8s.pod", "shard1", "shard2", "user_id", "status", "code", "error_code", "op", "took", "x"]
WORDS = ["error", "ERROR", "warn", "Info", "panic", "1", "42", "0x1f", "10.0.3.7:9092", "a=b", "i/o timeout",
         "retry 1 of 3", "code 12", "2", "-", "/api/v1/items/17", "connection reset by peer", "λ7", "٣"]


@st.composite
def logfmt_lines(draw) -> str:
    pairs = []
    for _ in range(draw(st.integers(0, 7))):
        key = draw(st.sampled_from(KEYS))
        kind = draw(st.sampled_from(["bare", "quoted", "escaped", "empty", "blank"]))
        words = " ".join(draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=3)))
        value = {"bare": words.replace(" ", "_"), "quoted": f'"{words}"', "escaped": f'"say \\"{words}\\" \\\\ ok"',
                 "empty": '""', "blank": '"  "'}[kind]
        pairs.append(f"{key}={value}")
    prefix = draw(st.sampled_from(["", "2026-12-01T00:00:01Z ", "request failed: ", "[7] "]))
    return prefix + " ".join(pairs)


def _fresh(line: str) -> tuple:
    extract._RECIPES.clear()
    return level_and_message(line, {})


def _digits_changed(line: str, seed: int) -> str:
    rng = random.Random(seed)
    digits = "12" if seed % 2 else "0123456789"  # few digits: keys like shard1/shard2 often collide
    return "".join(rng.choice(digits) if "0" <= c <= "9" else c for c in line)


@settings(max_examples=400, deadline=None)
@given(logfmt_lines(), st.integers(0, 2**32))
def test_a_line_read_by_the_recipe_of_its_shape_gives_what_its_own_scan_gives(line, seed):
    other = _digits_changed(line, seed)
    expected = _fresh(other)
    extract._RECIPES.clear()
    level_and_message(line, {})  # the shape's recipe, made from the first line
    assert level_and_message(other, {}) == expected


def test_what_depends_on_digits_is_decided_for_every_line():
    # go-kit: whether the error is already in the message depends on the digits
    first = 'level=error msg="retry 1 of 3" err="1"'
    second = 'level=error msg="retry 2 of 3" err="1"'
    extract._RECIPES.clear()
    assert level_and_message(first, {}) == ("error", "retry 1 of 3")
    assert level_and_message(second, {}) == ("error", "retry 2 of 3: 1")
    # a digit in a key name decides how many distinct keys there are, even whether the line is logfmt
    expected = _fresh("shard1=a shard2=b")  # two keys: logfmt, named by its fields
    extract._RECIPES.clear()
    level_and_message("shard1=a shard1=b", {})  # one key: not logfmt, the line is the message
    assert level_and_message("shard1=a shard2=b", {}) == expected


def test_real_logfmt_shapes_read_from_their_recipe():
    lines = [  # go-kit, logrus text, Heroku's router (no message key: named by its fields)
        'level=error ts=2026-12-01T00:00:{:02d}.417Z caller=consumer.go:80 msg="kafka: error while consuming" '
        'partition={} err="read tcp 10.0.0.{}:36578->10.0.1.9:9092: i/o timeout"',
        'time="2026-12-01T00:00:{:02d}Z" level=warning msg="slow query took {}ms" table=orders rows={}',
        'at=error code=H12 desc="Request timeout" method=GET path="/orders/{:02d}" dyno=web.{} connect=1ms '
        'service=30000ms status=503 bytes=0 x={}',
    ]
    for template in lines:
        expected = [_fresh(template.format(n, 10 + n, 100 + n * 7)) for n in range(12)]
        extract._RECIPES.clear()
        got = [level_and_message(template.format(n, 10 + n, 100 + n * 7), {}) for n in range(12)]
        assert len(extract._RECIPES) == 1  # one shape: scanned once
        assert got == expected
