"""Redact: mask secrets and personal data in an Event before anything else sees it (pure).

Runs before clustering, so no secret reaches a template, the state, a prompt, a digest, a
report or a span. What it masks is part of the grouping version.
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import lru_cache

from triage.records import Event

_RULES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("private-key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.S),
     "<private-key>"),
    ("url-credentials", re.compile(r"(?<=://)([^/\s:@]+):([^/\s@]+)@"), r"\1:<redacted>@"),
    ("authorization", re.compile(r"(?i)\b(authorization|proxy-authorization)(\"?\s*[:=]\s*\"?)(bearer|basic|token)?\s*[^\s\",;]+"),
     r"\1\2\3 <redacted>"),
    ("bearer", re.compile(r"(?i)\bbearer\s+[A-Za-z0-9\-._~+/]+=*"), "Bearer <redacted>"),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+"), "<jwt>"),
    ("aws-access-key", re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"), "<aws-key>"),
    ("github-token", re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})\b"), "<github-token>"),
    ("slack-token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b"), "<slack-token>"),
    ("slack-webhook", re.compile(r"https://hooks\.slack\.com/services/[A-Za-z0-9/]+"), "https://hooks.slack.com/<redacted>"),
    ("secret-pair", re.compile(
        r"(?i)\b([\w.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|"
        r"client[_-]?secret|session[_-]?id|cookie|credentials?))(\"?\s*[:=]\s*)(\"[^\"]*\"|'[^']*'|[^\s,;&\"'}]+)"),
     r"\1\2<redacted>"),
)
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
_IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")

# One cheap scan decides whether any rule can apply: most lines hold no secret, and running
# every rule on every line costs more than the rest of the pipeline together. Substring tests on
# the lower-cased text are far faster than one case-insensitive pattern with classes.
_TRIGGERS = (
    "private key", "@", "authorization:", "authorization=", 'authorization":', "authorization :", "bearer", "basic ",
    "eyj", "akia", "asia", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "xox", "hooks.slack", "passw",
    "pwd", "secret", "token", "api_key", "api-key", "apikey", "access_key", "access-key", "private_key",
    "private-key", "session_id", "session-id", "sessionid", "cookie", "credential",
)


_ANY_TRIGGER = re.compile("|".join(re.escape(trigger) for trigger in _TRIGGERS))


def _may_hold_secret(text: str) -> bool:
    return _ANY_TRIGGER.search(text.lower()) is not None


RULES_VERSION = "r1"


def redact_text(text: str, *, emails: bool = True, ips: bool = False) -> str:
    if _may_hold_secret(text):
        for _, pattern, replacement in _RULES:
            text = pattern.sub(replacement, text)
    if emails and "@" in text:
        text = _EMAIL.sub("<email>", text)
    if ips:
        text = _IPV4.sub("<ip>", text)
    return text


@lru_cache(maxsize=4096)
def _redact_label(value: str, emails: bool, ips: bool) -> str:
    # Label values repeat on nearly every line (namespace, app, pod): memoize the pure function.
    return redact_text(value, emails=emails, ips=ips)


def redact(event: Event, *, emails: bool = True, ips: bool = False) -> Event:
    line = redact_text(event.line, emails=emails, ips=ips)
    message = line if event.message == event.line else redact_text(event.message, emails=emails, ips=ips)
    labels = {key: _redact_label(value, emails, ips) for key, value in event.labels.items()}
    if line is event.line and message is event.message and labels == event.labels:
        return event
    return replace(event, message=message, line=line, labels=labels)
