"""The fast redaction path (pre-filter, rules run only where their trigger is, the pair scan
anchored on key words, the memo) masks exactly what every rule over the whole text masks.

``redact_text_unfiltered`` is the definition: each rule over the whole entry, no gate, no skipped
rule, no cache. A pre-filter that skips too much shows up here as a difference, on every planted
secret class, on the Kubernetes corpus and on random text built from the pieces secrets and their
keys are made of (cases, separators, escapes, positions at the very start and end)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.k8s_corpus import generate
from tests.secretcorpus import FORMAT_CLASSES, KEY_CLASSES, ORDINARY, planted
from tests.test_redact import ISSUE_LEAKS, KEY_FORMS, SECRETS
from triage.extract import extract
from triage.records import LogRecord
from triage.redact import redact, redact_for_grouping, redact_text, redact_text_unfiltered
from triage.redact_gates import KEY_TRIGGERS
from triage.redact_rules import NEVER, secret_verdict

_TOKEN = "ghp_" + "aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6"
_RANDOM = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"

# Where a pre-filter or a per-rule gate could miss: a secret at the very start or end of the text,
# across the lines of a trace, key words in any case, inside a JSON string with escapes, in labels.
ADVERSARIAL = [
    # at the very start / the very end / the whole text
    ("password=hunter2xyz failed", "hunter2xyz"),
    ("login failed password=hunter2xyz", "hunter2xyz"),
    ("token=hunter2xyz", "hunter2xyz"),
    (f"{_TOKEN} rejected", _TOKEN),
    (f"rejected {_TOKEN}", _TOKEN),
    (_TOKEN, _TOKEN),
    ("AKIAQ4BARSECRET7X9ZA rejected", "AKIAQ4BARSECRET7X9ZA"),
    ("4111111111111111", "4111111111111111"),
    ("declined 4111 1111 1111 1111", "4111 1111 1111 1111"),
    ("Bearer abcdefgh12345678 rejected", "abcdefgh12345678"),
    ("rejected key Zm9vYmFyYmF6cXV4MTIzNDU2", "Zm9vYmFyYmF6cXV4MTIzNDU2"),
    (f"lookup failed: session id {_RANDOM}", _RANDOM),  # prose: "session id" is one of its words
    (f"session-id {_RANDOM} expired", _RANDOM),
    # across the lines of a stack trace or a multi-line entry
    ("java.lang.IllegalStateException: login failed\n\tat a.B(C.java:1)\npassword=hunter2xyz", "hunter2xyz"),
    ("Traceback (most recent call last):\nKeyError: 'x'\nDB_PASSWORD=hunter2xyz\n", "hunter2xyz"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU\n-----END OPENSSH PRIVATE KEY-----",
     "b3BlbnNzaC1rZXktdjEAAAAABG5vbmU"),
    ("error\\npassword=hunter2xyz\\n\\tat a.B(C.java:1)", "hunter2xyz"),
    ("upstream failed\nAuthorization: Bearer abc.def-ghi_jkl\nAccept: */*", "abc.def-ghi_jkl"),
    # key words in any case
    ("PASSWORD=hunter2xyz", "hunter2xyz"),
    ("Password: hunter2xyz", "hunter2xyz"),
    ("dbPassword=hunter2xyz", "hunter2xyz"),
    ("X-AUTH-TOKEN: hunter2xyz", "hunter2xyz"),
    ("ApiKey=hunter2xyz", "hunter2xyz"),
    ("AUTHORIZATION: Bearer hunter2xyz", "hunter2xyz"),
    ("COOKIE: theme=dark; sid=hunter2xyz", "hunter2xyz"),
    (f"SESSION ID {_RANDOM}", _RANDOM),
    # a case variant that IGNORECASE rules match (long s, Kelvin sign, dotted and dotless i)
    ("Baſic dXNlcjpwYXNzd29yZA1", "dXNlcjpwYXNzd29yZA1"),
    ("authorİzation: Basic dXNlcjpwYXNzd29yZA1", "dXNlcjpwYXNzd29yZA1"),
    # inside a JSON string, with its escapes
    ('{"msg":"login {\\"password\\":\\"hunter2xyz\\"}"}', "hunter2xyz"),
    ('{"detail":"Authorization: Bearer abc.def-ghi_jkl\\r\\n"}', "abc.def-ghi_jkl"),
    ('{"url":"postgres:\\/\\/app:hunter2xyz@db:5432\\/orders"}', "hunter2xyz"),
    (f'{{"err":"bad token \\"{_TOKEN}\\""}}', _TOKEN),
    ('{"password": "hunter\\"2xyz"}', 'hunter\\"2xyz'),
    # a key longer than any bounded look-ahead after its secret word
    ("password_" + "x" * 150 + "=hunter2xyz", "hunter2xyz"),
    # one format rule's mask takes another's context words with it (found by hypothesis)
    ("eyJhbGciOiAiSFMyNTYiLCAidHlwIjogIkpXVCJ9.eyJzdWIiOiAiMnlXNEFjcTlHRiIsICJpYXQiOiAxNzU0MzQ5MzM5fQ.M9TBrKrmGs"
     "AWS_SECRET_ACCESS_KEY=ghu_W4Acq9GFz6Y1t9EwL56nGisiWgNZq6ITZM5jsalt", "W4Acq9GFz6Y1t9EwL56nGisiWgNZq6ITZM5j"),
    # URL-encoded keys (a redirect_uri): %3D separators and %26 joins
    ("GET /cb?next=%2Fx%3Faccess_token%3Dhunter2xyz%26a%3D1", "hunter2xyz"),
]


@pytest.mark.parametrize("text, secret", ADVERSARIAL)
def test_adversarial_secrets_are_masked(text, secret):
    assert secret not in redact_text(text)
    assert secret not in redact_text_unfiltered(text)


@pytest.mark.parametrize("text, secret", ADVERSARIAL)
def test_adversarial_secrets_leave_no_trace_in_grouping_samples_or_labels(text, secret):
    record = LogRecord(0, {"namespace": "prod", "note": text, "url": f"https://u:{secret}@h/"}, text)
    for event in (redact_for_grouping(extract(record)), redact(extract(record))):
        assert secret not in event.message and secret not in event.line and secret not in str(event.labels)


def _known_lines() -> list[str]:
    lines = [text for text, _ in SECRETS + ISSUE_LEAKS + KEY_FORMS + ADVERSARIAL] + ORDINARY
    lines += [entry.line for entry in planted()] + [entry.line for entry in planted(seed=7)]
    for entry in generate(3000, seed=5):
        event = extract(LogRecord(0, entry["labels"], entry["line"]))
        lines += [entry["line"], event.message, *entry["labels"].values()]
    return lines


def _differences(texts) -> list[tuple[str, bool, bool, str, str]]:
    out = []
    for text in texts:
        for emails, ips in ((True, False), (False, True)):
            fast, full = redact_text(text, emails=emails, ips=ips), redact_text_unfiltered(text, emails=emails, ips=ips)
            if fast != full:
                out.append((text, emails, ips, fast, full))
    return out


def test_the_fast_path_equals_every_rule_on_every_known_line():
    lines = _known_lines()
    assert len(lines) > 10_000
    assert _differences(lines) == []
    assert _differences(lines) == []  # again: a memo or a cache gives the same answer the second time


# The pieces secrets, their keys and their surroundings are made of.
_PIECES = [
    "password", "PASSWORD", "Passwd", "pwd", "pass", "token", "TOKEN", "X-Auth-Token", "api_key", "ApiKey", "key",
    "KeyError", "session", "session id", "session-id", "SessionId", "sid", "sig", "cookie", "Set-Cookie", "auth",
    "Authorization", "bearer", "Basic", "secret", "client_secret", "credentials", "salt", "signature", "jwt", "csrf",
    "sas", "aws", "private key", "is", "was", "error", "failed", "user", "x", "bypass", "inside", "keyboard",
    "=", ": ", ":", " = ", "=>", '":"', '": "', '\\":\\"', "%3D", "%3d", "%26", "&", "?", " ", "  ", "\n", "\t", "\\n",
    "\\t", "\\r", ",", ";", '"', "'", '\\"', "\\/", "/", "://", "@", "{", "}", "[", "]", "(", ")", "<", ">", "|",
    "-", "_", ".", "~", "--", "\\", "<redacted>",
    _RANDOM, "Zm9vYmFyYmF6cXV4MTIzNDU2", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "hunter2", "letmein",
    "4111 1111 1111 1111", "4111111111111111", "5500-0000-0000-0004", "2026", "1234567890123", "42",
    "jane@example.com", "10.0.0.1", "https://u:p@h/x", "hooks.slack.com/services/T0/B0/abcdef",
    "-----BEGIN RSA PRIVATE KEY-----", "-----END RSA PRIVATE KEY-----", "ſ", "K", "İ", "ı", "é", "ß",
]
_FORMAT_TOKEN = st.builds(lambda name, seed: FORMAT_CLASSES[name](random.Random(seed)),
                          st.sampled_from(sorted(FORMAT_CLASSES)), st.integers(0, 2**32))
_KEY_NAME = st.sampled_from(sorted(k for keys in KEY_CLASSES.values() for k in keys))
_TEXT = st.lists(st.one_of(st.sampled_from(_PIECES), _FORMAT_TOKEN, _KEY_NAME), max_size=14).map("".join)


@settings(max_examples=400, deadline=None)
@given(_TEXT)
def test_the_fast_path_equals_every_rule_on_random_text(text):
    assert _differences([text]) == []


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("aAeEiIkKoOpPsStTwWyY19_-.=:%3D&?\"'\\ \n<>@/ſKİı")), max_size=60))
def test_the_fast_path_equals_every_rule_on_random_characters(text):
    assert _differences([text]) == []


_KEY_WORDS = st.sampled_from(["pass", "word", "Pass", "Word", "secret", "Secret", "token", "Token", "key", "Key",
                              "KEY", "api", "x", "auth", "Auth", "sig", "sid", "sessid", "session", "id", "Id", "db",
                              "salt", "creds", "jwt", "csrf", "xsrf", "sas", "cookie", "pwd", "passwd", "credential",
                              "priv", "private", "access", "account", "signature", "count", "is", "name", "2"])


@given(st.lists(_KEY_WORDS, min_size=1, max_size=4), st.sampled_from(["_", "-", ".", ""]))
def test_every_secret_key_name_holds_a_key_trigger(words, joiner):
    # The pair scan only looks at keys holding one of these words: a secret name without one would pass it by.
    key = joiner.join(words)
    if secret_verdict(key) != NEVER:
        assert any(trigger in key.lower() for trigger in KEY_TRIGGERS), key


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet="0123456789 --. x:٣", max_size=60))
def test_the_card_pre_check_says_no_only_where_the_card_gate_does(text):
    from triage.redact_rules import CARD_GATE, may_hold_card

    assert may_hold_card(text) == (CARD_GATE.search(text) is not None)


def test_the_card_pre_check_lets_every_card_form_through():
    from triage.redact_rules import may_hold_card

    for text in ("4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111", "card 5500 0000 0000 0004 exp",
                 "x=378282246310005", "4111 1111-1111 1111"):
        assert may_hold_card(text), text
    for text in ("10.245.206.163:36578->10.111.66.195:9092", "ts=1796083327785", "4111  1111 1111 1111"):
        assert not may_hold_card(text), text
