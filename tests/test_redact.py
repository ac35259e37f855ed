"""Planted secrets never survive redaction; ordinary words are left alone."""

import pytest

from triage.extract import extract
from triage.records import LogRecord
from triage.redact import redact, redact_text

SECRETS = [
    ("postgres://app:hunter2pass@db:5432/orders", "hunter2pass"),
    ("Authorization: Bearer abc.def-ghi_jkl", "abc.def-ghi_jkl"),
    ('{"authorization":"Basic dXNlcjpwYXNz"}', "dXNlcjpwYXNz"),
    ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", "dozjgNryP4J3jVmNHl0w5N"),
    ("aws key AKIAIOSFODNN7EXAMPLE used", "AKIAIOSFODNN7EXAMPLE"),
    ("gh token ghp_1234567890abcdefghijklmnopqrstuvwxyz12", "ghp_1234567890abcdef"),
    ("slack xoxb-123456789012-abcdefghijkl", "xoxb-123456789012"),
    ("password=s3cr3t! user=bob", "s3cr3t!"),
    ('login failed {"password": "pa ss"}', "pa ss"),
    ("api_key: AbCdEf123456", "AbCdEf123456"),
    ("client_secret=zzz-top", "zzz-top"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----", "MIIEowIBAAKCAQEA"),
    ("mail from jane.doe@example.com bounced", "jane.doe@example.com"),
    ("webhook https://hooks.slack.com/services/T000/B000/XXXXXXXX failed", "T000/B000/XXXXXXXX"),
]


@pytest.mark.parametrize("text, secret", SECRETS)
def test_planted_secrets_are_masked(text, secret):
    assert secret not in redact_text(text)


@pytest.mark.parametrize("text, secret", SECRETS)
def test_secrets_never_reach_the_message_line_or_labels(text, secret):
    event = redact(extract(LogRecord(0, {"namespace": "prod", "note": text}, text)))
    assert secret not in event.message and secret not in event.line and secret not in str(event.labels)


@pytest.mark.parametrize("text", [
    "payment authorization failed: context deadline exceeded",
    "session lookup failed for user 42",
    "connection to 10.0.0.1:5432 refused",
])
def test_ordinary_lines_are_unchanged(text):
    assert redact_text(text) == text


def test_emails_and_ips_are_configurable():
    assert redact_text("a@b.io from 10.1.2.3", emails=False, ips=True) == "a@b.io from <ip>"
