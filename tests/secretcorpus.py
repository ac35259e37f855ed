"""A planted-secret corpus: every secret class redaction covers, in every position a log puts it.

Each planted entry is a (class, position, line, secret, marker). ``secret`` is the exact value
that must never reach an output; ``marker`` is a made-up word unique to the entry, so a test can
prove the entry itself reached an output (its sample) while its secret did not. Secrets are drawn
fresh from a seeded generator in each class's real shape (prefix, length, alphabet, checksum), so
nothing here is a value the rules were written against.

Positions: a JSON field, a logfmt pair, free text, a URL, an HTTP header, a stack trace (Java and
Python). Format classes sit under neutral names (``detail``, ``q``, ``X-Upstream``) so only the
token's own shape can give it away; key-name classes carry values of every look, words included.

``ORDINARY`` lists lines whose ids, hashes and numbers have the shapes of secrets but are not:
they must come out of redaction unchanged.
"""

from __future__ import annotations

import base64
import json
import random
import string
from dataclasses import dataclass

ALNUM = string.ascii_letters + string.digits
UPPER_DIGITS = string.ascii_uppercase + string.digits
B64 = ALNUM + "+/"
HEX = "0123456789abcdef"
POSITIONS = ("json", "logfmt", "text", "url", "header", "stack")


@dataclass(frozen=True)
class Planted:
    secret_class: str
    position: str
    line: str
    secret: str
    marker: str


def _pick(rng: random.Random, alphabet: str, size: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(size))


def _luhn_complete(rng: random.Random, prefix: str, length: int) -> str:
    body = prefix + _pick(rng, string.digits, length - len(prefix) - 1)
    total = 0
    for position, char in enumerate(reversed(body)):
        d = int(char)
        if position % 2 == 0:  # the check digit will sit to the right: these are doubled
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


def _card(rng: random.Random) -> str:
    brand = rng.choice([("4", 16, (4, 4, 4, 4)), ("51", 16, (4, 4, 4, 4)), ("2221", 16, (4, 4, 4, 4)),
                        ("37", 15, (4, 6, 5)), ("6011", 16, (4, 4, 4, 4)), ("35", 16, (4, 4, 4, 4))])
    digits = _luhn_complete(rng, brand[0], brand[1])
    style = rng.choice([" ", "-", ""])
    if not style:
        return digits
    parts, start = [], 0
    for size in brand[2]:
        parts.append(digits[start:start + size])
        start += size
    return style.join(parts)


def _jwt(rng: random.Random) -> str:
    def part(obj) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")
    header = part({"alg": "HS256", "typ": "JWT"})
    payload = part({"sub": _pick(rng, ALNUM, 10), "iat": rng.randrange(1_700_000_000, 1_800_000_000)})
    return f"{header}.{payload}.{_pick(rng, ALNUM + '-_', 43)}"


def _private_key(rng: random.Random) -> str:
    kind = rng.choice(["RSA ", "EC ", "OPENSSH ", ""])
    body = "\n".join(_pick(rng, B64, 64) for _ in range(3))
    return f"-----BEGIN {kind}PRIVATE KEY-----\n{body}\n-----END {kind}PRIVATE KEY-----"


# Format classes: name -> a generator of a fresh token in the provider's shape.
FORMAT_CLASSES = {
    "aws-access-key-id": lambda r: r.choice(["AKIA", "ASIA"]) + _pick(r, UPPER_DIGITS, 16),
    "google-api-key": lambda r: "AIza" + _pick(r, ALNUM + "-_", 35),
    "github-pat": lambda r: r.choice(["ghp_", "gho_", "ghs_", "ghu_"]) + _pick(r, ALNUM, 36),
    "github-fine-grained": lambda r: "github_pat_" + _pick(r, ALNUM, 22) + "_" + _pick(r, ALNUM, 59),
    "gitlab-pat": lambda r: "glpat-" + _pick(r, ALNUM + "-_", 20),
    "slack-token": lambda r: (f"xox{r.choice('abposr')}-{r.randrange(10**11, 10**12)}-{r.randrange(10**11, 10**12)}-"
                              + _pick(r, ALNUM, 24)),
    "slack-webhook": lambda r: (f"https://hooks.slack.com/services/T{_pick(r, UPPER_DIGITS, 8)}/"
                                f"B{_pick(r, UPPER_DIGITS, 10)}/{_pick(r, ALNUM, 24)}"),
    "stripe-key": lambda r: r.choice(["sk_live_", "rk_live_", "sk_test_"]) + _pick(r, ALNUM, 24),
    "npm-token": lambda r: "npm_" + _pick(r, ALNUM, 36),
    "pypi-token": lambda r: "pypi-AgEIcHlwaS5vcmc" + _pick(r, ALNUM + "-_", 70),
    "jwt": _jwt,
    "card-number": _card,
    "private-key": _private_key,
}

# Key-name classes: (key names in the forms logs use, a generator of values of every look).
_WORDY = ["correcthorsebatterystaple", "letmein-please", "Summer2026!", "p@ss w0rd", "hunter2hunter2"]


def any_value(rng: random.Random) -> str:
    return rng.choice([
        lambda: rng.choice(_WORDY) + _pick(rng, string.ascii_lowercase, 4),  # looks like words
        lambda: _pick(rng, ALNUM, rng.randrange(8, 30)),
        lambda: _pick(rng, HEX, 32),
        lambda: _pick(rng, B64, 40) + "==",
        lambda: "django-insecure-" + _pick(rng, string.ascii_lowercase + string.digits, 12),
    ])()


KEY_CLASSES = {
    "password": ["password", "passwd", "pwd", "DB_PASSWORD", "userPassword", "smtp_pass"],
    "secret": ["secret", "client_secret", "secret_key", "AWS_SECRET_ACCESS_KEY", "SecretAccessKey", "webhookSecret"],
    "token": ["token", "access_token", "refresh_token", "X-Auth-Token", "_authToken", "csrftoken"],
    "credential": ["credential", "credentials", "X-Amz-Credential", "db_creds"],
    "api-key": ["api_key", "apikey", "X-Api-Key", "apiKey", "Ocp-Apim-Subscription-Key"],
    "access-key": ["access_key", "aws_access_key_id", "accessKeyId", "AccountKey"],
    "private-key": ["private_key", "privateKey", "ssh_private_key"],
    "session": ["session", "sessionid", "session_id", "JSESSIONID", "PHPSESSID", "connect.sid"],
    "cookie": ["cookie", "remember_cookie"],
    "auth": ["auth", "basic_auth", "proxy_auth"],
    "signature": ["signature", "sig", "X-Amz-Signature", "X-Hub-Signature-256"],
    "high-entropy-key": ["key", "salt", "signing_key", "hmac_key", "encryption_key"],
}


def _format_line(rng: random.Random, position: str, secret: str, marker: str) -> str:
    if position == "json":
        return json.dumps({"level": "error", "msg": f"upstream call failed {marker}", "detail": secret,
                           "attempt": rng.randrange(1, 5)})
    if position == "logfmt":
        return f'level=error msg="upstream call failed {marker}" detail={json.dumps(secret)} attempt={rng.randrange(1, 5)}'
    if position == "text":
        return f"upstream call failed {marker}: rejected {secret} after {rng.randrange(2, 9)} tries"
    if position == "url":
        if secret.startswith("https://"):
            return f"POST {secret} returned 404 {marker}"
        return f"GET https://api.example.com/v1/items?q={secret}&page={rng.randrange(1, 9)} returned 401 {marker}"
    if position == "header":
        return f"upstream rejected request {marker}\nX-Upstream: {secret}\nUser-Agent: curl/8.5.0"
    if rng.random() < 0.5:
        return (f"com.shop.client.UpstreamException: call failed {marker} with {secret}\n"
                f"\tat com.shop.client.Upstream.call(Upstream.java:{rng.randrange(10, 99)})\n"
                "\tat java.base/java.lang.Thread.run(Thread.java:1583)")
    return ("Traceback (most recent call last):\n"
            '  File "/app/client.py", line 12, in call\n'
            "    raise UpstreamError(detail)\n"
            f"client.UpstreamError: call failed {marker} with {secret}")


def _key_line(rng: random.Random, position: str, key: str, secret: str, marker: str) -> str:
    if position == "json":
        return json.dumps({"level": "error", "msg": f"login failed {marker}", key: secret, "user": "bob"})
    if position == "logfmt":
        return f'level=error msg="login failed {marker}" {key}={json.dumps(secret)} user=bob'
    if position == "text":
        form = rng.choice(["{k}={v}", "{k}: {v}", "{k} = '{v}'", "{k}=\"{v}\""])
        shown = secret if " " not in secret or "'" in form or '"' in form else secret.replace(" ", "")
        return f"login failed {marker} " + form.format(k=key, v=shown) + " for user bob"
    if position == "url":
        value = secret.replace(" ", "%20").replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
        return f"GET https://api.example.com/v1/login?user=bob&{key}={value}&page=2 returned 401 {marker}", value
    if position == "header":
        if key.lower() == "cookie":
            return f"request rejected {marker}\nCookie: theme=dark; sid={secret.replace(' ', '')}\nAccept: */*"
        return f"request rejected {marker}\n{key}: {secret}\nAccept: */*"
    return (f"com.shop.auth.LoginException: login failed {marker} {key}={secret.replace(' ', '')}\n"
            f"\tat com.shop.auth.Login.check(Login.java:{rng.randrange(10, 99)})\n"
            "\tat java.base/java.lang.Thread.run(Thread.java:1583)")


def planted(seed: int = 14) -> list[Planted]:
    rng = random.Random(seed)
    markers: set[str] = set()

    def marker() -> str:
        while True:
            word = "mk" + _pick(rng, "bcdfghjklmnpqrstvwxz", 6)
            if word not in markers:
                markers.add(word)
                return word

    entries = []
    for name, make in FORMAT_CLASSES.items():
        for position in POSITIONS:
            secret, mark = make(rng), marker()
            line = _format_line(rng, position, secret, mark)
            if name == "private-key":  # JSON escapes its newlines: probe one line of the key's body
                secret = secret.split("\n")[2]
            entries.append(Planted(name, position, line, secret, mark))
    for name, keys in KEY_CLASSES.items():
        for index, position in enumerate(POSITIONS):
            key = keys[(index + rng.randrange(len(keys))) % len(keys)]
            secret = _pick(rng, B64, 32) if name == "high-entropy-key" else any_value(rng)
            if position in ("logfmt", "stack", "header") and " " in secret:
                secret = secret.replace(" ", "")
            mark = marker()
            line = _key_line(rng, position, key, secret, mark)
            if isinstance(line, tuple):  # the URL form carries the secret percent-encoded
                line, secret = line
            elif position == "text" and secret not in line:
                secret = secret.replace(" ", "")
            entries.append(Planted(name, position, line, secret, mark))
    return entries


# Ordinary lines whose values have secret-like shapes; redaction must leave them as they are.
ORDINARY = [
    "pulled image registry.example.com/shop/api@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "deploy of commit 3f2a1b4c5d6e7f8091a2b3c4d5e6f70812345678 (3f2a1b4) failed",
    "request_id=0f8fad5b-d9cb-469f-a165-70867728950e trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7",
    "pod checkout-7d9f8c6b5-x2x9z in namespace prod restarted 3 times in 1h30m (OOMKilled)",
    "order 1234567890123456 failed: payment declined after 2.5s",
    "order_id=4000123456789011 customer=88213 total=129.90",
    "ts=1795417200123 took 1500ms timeout=30s elapsed=2m3s retries=3 offset=9876543210123",
    "etag \"33a64df551425fcc55e4d42a148795d9f25f89d4\" mismatch for object uploads/2026/12/01/report.pdf",
    "uid 123e4567-e89b-12d3-a456-426614174000 not found; resourceVersion=4567891234567",
    "prompt_tokens=812 completion_tokens=64 max_tokens=600 token_type=Bearer auth_method=oidc",
    "token expired for user 42",
    "auth failed for user alice from 10.0.0.7",
    "payment authorization failed: context deadline exceeded",
    "session lookup failed for user 42; 3 sessions active",
    "the bearer token was rejected: basic authentication required",
    "duplicate key value violates unique constraint \"orders_pkey\"",
    "phone +1 415-555-0100 invalid; zip 94107-1234",
    "kafka partition=7 offset=1234567890123 lag=42",
    "GET /api/v1/orders/1234567890123/items?page=2&per_page=50 200 12ms",
    "password_file=/run/secrets/db-password token_url=https://auth.example.com/oauth/token secret_name=db-creds",
]
