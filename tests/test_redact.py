"""Planted secrets never survive redaction; ordinary words, ids, hashes and numbers are left alone."""

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.secretcorpus import FORMAT_CLASSES, KEY_CLASSES, ORDINARY, any_value, planted
from triage.extract import extract
from triage.records import LogRecord
from triage.redact import may_hold_secret, redact, redact_text
from triage.redact_rules import ALWAYS, BY_ENTROPY, NEVER, is_card_number, secret_verdict

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

# The four leaks found from outside (issue #14): each passed through r1 unredacted.
ISSUE_LEAKS = [
    ("rotation failed aws_access_key_id=AKIAQ4BARSECRET7X9Z try 0", "AKIAQ4BARSECRET7X9Z"),
    ("secret_key = 'django-insecure-abc123xyz'", "django-insecure-abc123xyz"),
    ("GCP key AIzaSyD-EXAMPLE1234567890abcdefghijkl", "AIzaSyD-EXAMPLE1234567890abcdefghijkl"),
    ("card 4111 1111 1111 1111 declined", "4111 1111 1111 1111"),
]

# A secret under a key whose name says so, in each assignment form logs use (value of any look).
KEY_FORMS = [
    ("password=letmein", "letmein"),
    ("passwd: letmein", "letmein"),
    ("pwd = 'letmein'", "letmein"),
    ('{"secret": "letmein"}', "letmein"),
    ("{'client_secret': 'letmein'}", "letmein"),
    ('token="letmein"', "letmein"),
    ("DB_PASSWORD=letmein", "letmein"),
    ("export GITHUB_TOKEN=letmein", "letmein"),
    ("X-Api-Key: letmein", "letmein"),
    ("Cookie: theme=dark; session=letmein", "letmein"),
    ("Set-Cookie: sid=letmein; Path=/; HttpOnly", "letmein"),
    ("Proxy-Authorization: Basic bGV0bWVpbjpsZXRtZWlu", "bGV0bWVpbjpsZXRtZWlu"),
    ("GET /cb?code=1&access_token=letmein&state=2", "letmein"),
    ("GET /x?X-Amz-Credential=letmein%2F2026&X-Amz-Signature=deadbeef01", "deadbeef01"),
    ("https://acct.blob.core.windows.net/c/b?sv=2022-11-02&sig=letmein%3D", "letmein"),
    ("DefaultEndpointsProtocol=https;AccountName=a;AccountKey=bGV0bWVpbg==;EndpointSuffix=core.windows.net",
     "bGV0bWVpbg=="),
    ('msg="retry with password=letmein"', "letmein"),
    ("request 9 failed: api_key: letmein", "letmein"),
    ("exec mysql --password=letmein -h db", "letmein"),
    ("GET /login?redirect_uri=https%3A%2F%2Fapp%2Fcb%3Fstate%3D1%26access_token%3Dletmein%26x%3D1", "letmein"),  # the key sits in the value of "failed:"
    ('"body={\\"password\\":\\"letmein\\"}"', "letmein"),
    ('{"password": "let\\"me in"}', 'let\\"me in'),
    ("accessKeyId: letmein", "letmein"),
    ("private_key => letmein", "letmein"),
    ("auth=admin:letmein", "admin:letmein"),
    ("jsessionid=letmein", "letmein"),
    ("X-Hub-Signature-256: sha256=letmein", "letmein"),
    ("aws_secret_access_key = letmein", "letmein"),
    ("credentials: letmein", "letmein"),
    ("signing_key=Zm9vYmFyYmF6cXV4MTIzNDU2", "Zm9vYmFyYmF6cXV4MTIzNDU2"),
    ("refresh token 9f8e7d6c5b4a39281706f5e4d3c2b1a0 rejected", "9f8e7d6c5b4a39281706f5e4d3c2b1a0"),
    ("aws secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY loaded", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ('{"msg":"hook https:\\/\\/hooks.slack.com\\/services\\/T1\\/B2\\/c3d4e5f6"}', "c3d4e5f6"),
]

CORPUS = planted()


@pytest.mark.parametrize("text, secret", SECRETS + ISSUE_LEAKS + KEY_FORMS)
def test_planted_secrets_are_masked(text, secret):
    assert secret not in redact_text(text)


@pytest.mark.parametrize("text, secret", SECRETS + ISSUE_LEAKS + KEY_FORMS)
def test_secrets_never_reach_the_message_line_or_labels(text, secret):
    event = redact(extract(LogRecord(0, {"namespace": "prod", "note": text}, text)))
    assert secret not in event.message and secret not in event.line and secret not in str(event.labels)


@pytest.mark.parametrize("entry", CORPUS, ids=[f"{p.secret_class}-{p.position}" for p in CORPUS])
def test_every_class_in_every_position_is_masked_and_the_rest_stays(entry):
    event = redact(extract(LogRecord(0, {"namespace": "prod"}, entry.line)))
    assert entry.secret not in event.line and entry.secret not in event.message
    assert entry.marker in event.line  # only the secret went, not the line around it
    assert may_hold_secret(entry.line)


def test_the_corpus_covers_every_class_in_every_position():
    assert len(CORPUS) >= 100
    by_class: dict[str, set[str]] = {}
    for entry in CORPUS:
        by_class.setdefault(entry.secret_class, set()).add(entry.position)
    assert all(len(positions) == 6 for positions in by_class.values()), by_class
    assert len({entry.secret for entry in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("text", ORDINARY + [
    "payment authorization failed: context deadline exceeded",
    "session lookup failed for user 42",
    "connection to 10.0.0.1:5432 refused",
    "authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=218.188.2.4",
    "Cannot invoke \"com.shop.cart.Item.getSku()\" because \"item\" is null",
    "keyboard-interactive auth for root: 3 attempts left",
])
def test_ordinary_lines_are_unchanged(text):
    assert redact_text(text) == text


@pytest.mark.parametrize("key, verdict", [
    ("password", ALWAYS), ("DB_PASSWORD", ALWAYS), ("aws_access_key_id", ALWAYS), ("accessKeyId", ALWAYS),
    ("X-Api-Key", ALWAYS), ("client_secret", ALWAYS), ("session_id", ALWAYS), ("csrftoken", ALWAYS),
    ("X-Amz-Signature", ALWAYS), ("Ocp-Apim-Subscription-Key", ALWAYS), ("db_pass", ALWAYS),
    ("signing_key", ALWAYS), ("key", BY_ENTROPY), ("cache_key", BY_ENTROPY), ("salt", BY_ENTROPY),
    ("token_count", NEVER), ("max_tokens", NEVER), ("prompt_tokens", NEVER), ("token_type", NEVER),
    ("auth_method", NEVER), ("password_file", NEVER), ("secret_name", NEVER), ("is_secret", NEVER),
    ("author", NEVER), ("tokenizer", NEVER), ("bypass", NEVER), ("pass", NEVER), ("session_count", NEVER),
    ("PassWord", ALWAYS), ("passWord", ALWAYS), ("DbPassWord", ALWAYS), ("PassWordFile", NEVER),
])
def test_key_names_say_whether_their_value_is_a_secret(key, verdict):
    assert secret_verdict(key) == verdict


def test_card_numbers_need_an_issuer_digit_and_the_luhn_checksum():
    assert is_card_number("4111 1111 1111 1111") and is_card_number("3782-822463-10005")
    assert is_card_number("5500000000000004") and is_card_number("6011111111111117")
    assert not is_card_number("4111 1111 1111 1112")  # one digit off: the checksum fails
    assert not is_card_number("1795417200123")  # an epoch in milliseconds: no issuer starts with 1
    assert not is_card_number("4111111111")  # too short for a card
    assert redact_text("ids 4111111111111112 and 4111111111111111") == "ids 4111111111111112 and <card>"
    # side-by-side numbers are not one card, whatever their digits add up to (Django: thread, request id)
    assert not is_card_number("23 717672919674186") and not is_card_number("4111 11111 111 1111")
    assert is_card_number("3782 822463 10005") and is_card_number("4111-1111-1111-1111")
    line = "ERROR 2026-12-01 02:48:19,663 log 23 717672919674186 Internal Server Error: /u/ofhfnjysy/"
    assert redact_text(line) == line


@pytest.mark.parametrize("entry", CORPUS[::7], ids=lambda p: f"{p.secret_class}-{p.position}")
def test_redaction_is_idempotent(entry):
    once = redact_text(entry.line)
    assert redact_text(once) == once


def test_emails_and_ips_are_configurable():
    assert redact_text("a@b.io from 10.1.2.3", emails=False, ips=True) == "a@b.io from <ip>"


# What a log puts around a token: any text, then a delimiter that is not a letter or a digit.
_AROUND = st.lists(st.sampled_from(["error", "msg=", "x", "42", " ", "https://h/p?q=", "{\"detail\":", "Bearer",
                                    "\n\tat a.B(C.java:1)", "token", ":", "="]), max_size=4).map("".join)
_DELIMITER = st.sampled_from([" ", "=", ": ", '"', "'", ",", ";", "(", ")", "[", "]", "{", "}", "/", "?", "&",
                              "\n", "\t", "_", "-", ".", "\\n", "<", ">", "|", "#", "%20", ""])


@given(st.sampled_from(sorted(FORMAT_CLASSES)), st.integers(0, 2**32), _AROUND, _DELIMITER, _DELIMITER, _AROUND)
def test_a_token_is_masked_whatever_surrounds_it(secret_class, seed, before, left, right, after):
    token = FORMAT_CLASSES[secret_class](random.Random(seed))
    probe = token.split("\n")[2] if secret_class == "private-key" else token
    if not left and before[-1:].isalnum() or not right and after[:1].isalnum():
        left = right = " "  # glued to a word, a token is a different word
    if secret_class == "card-number" and left == "." and before[-1:].isdigit():
        left = " "  # 42.4111...: the digits after a decimal point are a fraction, not a card
    line = f"{before}{left}{token}{right}{after}"
    event = redact(extract(LogRecord(0, {}, line)))
    assert probe not in event.line and probe not in event.message


_FORMS = ["{k}={v}", "{k}: {v}", "{k} = '{v}'", '"{k}": "{v}"', "'{k}': '{v}'", '{k}="{v}"', '\\"{k}\\":\\"{v}\\"',
          "{k} => {v}", "--{k}={v}", "?{k}={v}&x=1", "&{k}={v}", "\n{k}: {v}\n", "\\n{k}={v}\\n", "%26{k}%3D{v}%26"]


@given(st.sampled_from(sorted(k for keys in KEY_CLASSES.values() for k in keys)), st.integers(0, 2**32),
       st.sampled_from(_FORMS), _AROUND, _DELIMITER, _DELIMITER, _AROUND)
def test_a_secret_key_loses_its_value_in_any_form_and_place(key, seed, form, before, left, right, after):
    value = any_value(random.Random(seed))
    if not form.startswith(("'", '"', '\\"', "{k} = '")) or "%" in form:
        value = value.replace(" ", "")  # only a quoted value may hold spaces
    if key in ("key", "salt"):  # names that are only secret-ish: their value must look random, alone
        value, right = "Zm9vYmFyYmF6cXV4MTIzNDU2" + value.replace(" ", ""), " "
    if not left and before[-1:].isalnum() or not right and after[:1].isalnum():
        left = right = " "
    line = f"{before}{left}{form.format(k=key, v=value)}{right}{after}"
    assert value not in redact_text(line)


def test_a_label_named_like_a_secret_loses_its_value():
    # Loki labels are key=value pairs too: a promtail pipeline or an OTel resource attribute can turn a
    # field such as `password` or `api_key` into a label; its value is a secret whatever it looks like.
    event = redact(extract(LogRecord(1, {"app": "shop", "password": "hunter2", "API_KEY": "k1",
                                         "signing_key": "aB3dE5fG7hJ9kL1mN3pQ5r", "cache_key": "orders"}, "boom")))
    assert event.labels["password"] == "<redacted>" and event.labels["API_KEY"] == "<redacted>"
    assert event.labels["signing_key"] == "<redacted>"
    assert event.labels["app"] == "shop" and event.labels["cache_key"] == "orders"
