"""Redact: mask secrets and personal data in an Event before anything else sees it (pure).

Runs before clustering, on the message, the whole entry (samples come from it) and the labels,
so no secret reaches a template, a sample, the state, a prompt, a digest, a report or a span.
What it masks is part of the grouping version (RULES_VERSION). The rules are in redact_rules.py.
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import lru_cache

from triage.records import Event
from triage.redact_gates import (KEY_WORD, PROSE_GATE, PROSE_VALUE, PROSE_WORDS, format_rules, gate_text,
                                 may_change, word_hits)
from triage.redact_rules import (ALWAYS, BY_ENTROPY, FORMATS, SCHEMES, START, looks_random, mask_cards, may_hold_card,
                                 secret_verdict)

RULES_VERSION = "r3"  # r3: prose "session id <token>", IGNORECASE letters (Baſic), keys past 100 characters, PassWord, label names

# An assignment: a key, a separator and a value, in the forms logs use:
#   k=v  k: v  k = 'v'  "k": "v"  'k': 'v'  \"k\":\"v\" (JSON inside a JSON string)  K=V (env)
#   ?k=v&  (query strings)  Header-Name: value  k => v (Ruby/Perl)
# The value is a quoted string (with its escapes) or a bare run up to a delimiter; a value
# under an Authorization-style scheme word keeps the credential that follows the scheme.
# A bare value: up to a delimiter, never ending in a separator (in "token=password: x" the value
# of token is "password", and ": x" is a value chained to it).
_BARE = r"(?:(?!%26)[^\s\"'&,;<>{}\[\]()\\])*(?:(?!%26)[^\s\"'&,;<>{}\[\]()\\:=])"
_VALUE = (
    r"\\\"(?:[^\"\\]|\\[^\"])*\\\"|\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'"
    r"|(?:(?i:bearer|basic|token|digest|negotiate|apikey)[ \t]+)?" + _BARE)
_PAIR = re.compile(
    # A key may follow "--" (a flag) or a lone dot, but not "x-" or "x." (it would be the tail of
    # a longer key: spring.datasource.password is one key); in a URL-encoded query (a redirect_uri) it
    # follows a %XX escape (%26 is &) and its separator is %3D (=); inside a JSON string it
    # may follow an escaped newline or tab (\nPASSWORD=...), never the n of one.
    r"(?:(?<![\w\\])(?<!\w\.)(?<![\w.]-)|(?<=%[0-9A-Fa-f]{2})|(?<=\\[ntr]))(?P<key>\w[\w.-]*)"
    r"(?P<sep>\\?[\"']?[ \t]*(?:=>|[:=])[ \t]*|%3[Dd])"
    r"(?!\\?[\"']?(?i:" + SCHEMES + r")[ \t]+<redacted>)"  # already masked, the scheme kept on purpose
    # The value is only looked at, not consumed: after a key that is not a secret the scan goes on
    # right after the separator, so "failed: api_key: x" and msg="password=x" still find their key.
    r"(?=(?P<val>" + _VALUE + "))")
_CHAINED = re.compile(r"[ \t]*(?:=>|[:=])[ \t]*(?P<val>" + _VALUE + ")")

_PROSE = re.compile(r"(?i)" + START + "(" + "|".join(word + rest for word, rest in PROSE_WORDS) + ")" + PROSE_VALUE)
_JOINS = re.compile(r": | \| ")  # how extract joins the pieces of a message (msg: error, signature parts)
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
_IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
# Where a pair's key can end: the run of key characters holding a key word, and what may follow it.
_KEY_RUN = re.compile(r"[\w.-]*")
_SEPARATOR = re.compile(r"\\?[\"']?[ \t]*(?:=>|[:=])|%3[Dd]")


def may_hold_secret(text: str) -> bool:
    """The cheap pre-filter: False only when no rule can match ``text``. Never a cache: every
    line is scanned."""
    return may_change(gate_text(text))


_SCHEME_WORD = re.compile(r"(?i)(?:" + SCHEMES + r")[ \t]+")


def _quoted_placeholder(value: str) -> str:
    """The placeholder for a masked value, keeping its quotes and an auth scheme (Bearer, Basic)."""
    for quote in ('\\"', '"', "'"):
        if value.startswith(quote) and value.endswith(quote) and len(value) >= 2 * len(quote):
            scheme = _SCHEME_WORD.match(value, len(quote))
            return f"{quote}{scheme.group(0) if scheme else ''}<redacted>{quote}"
    scheme = _SCHEME_WORD.match(value)
    return f"{scheme.group(0) if scheme else ''}<redacted>"


def _redact_pairs(text: str, gate: str | None = None) -> str:
    """Mask the value of every pair whose key names a secret. Given ``gate`` (gate_text of
    ``text``), the scan jumps from key word to key word (_next_key) instead of stopping at every
    pair of the line ("client: ...", "server: ...", "upstream: ..."): only a key holding a key
    word can be secret, so the pairs it passes over are the ones the full scan looks at and
    leaves; the result is the same (tests/test_redact_prefilter.py)."""
    # In "a%3Dtoken=..." the full scan reads "a" and the separator %3D, so its next key is
    # "token"; a jump back from the key word would start the key at "3D" instead. Such URL-encoded
    # text (a redirect_uri) gets the full scan.
    jump = gate is not None and "%3d" not in gate and len(gate) == len(text)
    out: list[str] = []
    done = pos = 0  # text before done is in out; the scan goes on from pos
    while True:
        if jump:
            pos = _next_key(text, gate, pos)
            if pos < 0:
                break
        match = _PAIR.search(text, pos)
        if match is None:
            break
        value = match.group("val")
        verdict = secret_verdict(match.group("key"))
        if verdict is ALWAYS or (verdict is BY_ENTROPY and looks_random(value)):
            out.append(text[done:match.end()])
            out.append(_quoted_placeholder(value))
            done = match.end() + len(value)
            chained = _CHAINED.match(text, done)
            while chained is not None:  # the masked value was itself a key: its value goes too
                out.append(text[done:chained.start("val")] + _quoted_placeholder(chained.group("val")))
                done = chained.end()
                chained = _CHAINED.match(text, done)
            pos = done  # never look inside a masked value again
        else:
            pos = match.end()
    if not out:
        return text
    out.append(text[done:])
    return "".join(out)


def _next_key(text: str, gate: str, pos: int) -> int:
    """Where the full pair scan, at ``pos``, would next look at a key holding a key word: the
    start of the run of key characters (word characters, dot, dash) around the next key word
    whose run a separator follows, or -1. Every pair before it has a key without a key word
    (never secret), and the full scan never stops inside a run, so starting there is where it
    would be."""
    while True:
        word = KEY_WORD.search(gate, pos)
        if word is None:
            return -1
        end = _KEY_RUN.match(text, word.end()).end()
        if _SEPARATOR.match(text, end) is None:  # not a key: no pair can start in this run
            pos = end
            continue
        start = word.start()
        while start > pos and (text[start - 1].isalnum() or text[start - 1] in "_.-"):  # \w: alnum or _
            start -= 1
        return start


def _prose(match: re.Match[str]) -> str:
    return f"{match.group(1)}{match.group(2)}<redacted>" if looks_random(match.group(3)) else match.group(0)


def redact_text(text: str, *, emails: bool = True, ips: bool = False) -> str:
    if "\\/" in text:  # JSON written with escaped slashes (PHP, some Go and Java encoders): URLs as URLs
        text = text.replace("\\/", "/")
    gate = gate_text(text)
    hits = word_hits(gate)
    if may_change(gate, hits):
        text = _apply_rules(text, gate, hits)
    if emails and "@" in text:
        text = _EMAIL.sub("<email>", text)
    if ips:
        text = _IPV4.sub("<ip>", text)
    return text


def _apply_rules(text: str, gate: str, hits: list[tuple[int, int, int]]) -> str:
    """The rules a text's gates let through, in the order of redact_text_unfiltered. Each stage's
    gates look at the text that stage sees: once a rule has changed it, they are taken again."""
    context = gate  # a contextual rule's words: in the entry as it came
    original = text
    pending, next_rule = format_rules(gate, context, hits=hits), 0
    # Formats first (a private key block under a secret key goes whole), then assignments.
    while next_rule < len(pending):
        index = pending[next_rule]
        next_rule += 1
        rule = FORMATS[index]
        redacted = rule.pattern.sub(rule.replacement, text)
        if redacted is not text:
            text, gate = redacted, gate_text(redacted)
            pending, next_rule = format_rules(gate, context, after=index), 0
    redacted = _redact_pairs(text, gate)
    if redacted is not text:
        text, gate = redacted, gate_text(redacted)
    if PROSE_GATE.search(gate) is not None:
        redacted = _PROSE.sub(_prose, text)
        if redacted != text:
            text, gate = redacted, gate_text(redacted)
    if may_hold_card(gate):
        text = mask_cards(text)
    return original if text == original else text


def redact_text_unfiltered(text: str, *, emails: bool = True, ips: bool = False) -> str:
    """What ``redact_text`` must return, by definition: every rule over the whole text, in order,
    with no pre-filter, no skipped rule and no cache (a contextual rule still needs its words in
    the entry). Slow; the tests hold the fast path to it on every class of secret and on random text."""
    if "\\/" in text:
        text = text.replace("\\/", "/")
    context = gate_text(text)
    for rule in FORMATS:
        if not rule.context or any(word in context for word in rule.triggers):
            text = rule.pattern.sub(rule.replacement, text)
    text = _PROSE.sub(_prose, _redact_pairs(text))
    text = mask_cards(text)
    if emails:
        text = _EMAIL.sub("<email>", text)
    if ips:
        text = _IPV4.sub("<ip>", text)
    return text


@lru_cache(maxsize=4096)
def _redact_labels(labels: tuple[tuple[str, str], ...], emails: bool, ips: bool) -> dict[str, str] | None:
    """The labels with their values redacted, or None when nothing changed. Label sets repeat on
    nearly every line (namespace, app, pod): the pure function is memoized on the whole set, and
    a set always gets the same answer, so the cache cannot let a secret through."""
    redacted = {key: _redact_label(key, value, emails, ips) for key, value in labels}
    return None if all(redacted[key] is value for key, value in labels) else redacted


def _redact_label(key: str, value: str, emails: bool, ips: bool) -> str:
    # A label is a key=value pair too (a promtail stage or an OTel resource attribute can make a field
    # such as `password` a label): its name decides as a key's would.
    verdict = secret_verdict(key)
    if value and (verdict is ALWAYS or (verdict is BY_ENTROPY and looks_random(value))):
        return "<redacted>"
    return redact_text(value, emails=emails, ips=ips)


def redact_for_grouping(event: Event, *, emails: bool = True, ips: bool = False) -> Event:
    """The message and the labels redacted, and no entry text (``line`` is empty): what grouping
    and the counts need. The read stage keeps a few entries a cluster as samples and redacts only
    those (``redact_text``), so the long raw text of most entries (stack traces, JSON bodies) is
    never scanned: only the message is, which holds less, and a line the stage drops cannot leak."""
    message = redact_text(event.message, emails=emails, ips=ips)
    labels = redacted_labels(event.labels, emails=emails, ips=ips)
    return Event(event.ts_ns, labels, event.level, message, "")  # the constructor: replace() costs 1.5x more


def redacted_labels(labels: dict[str, str], *, emails: bool = True, ips: bool = False) -> dict[str, str]:
    """The labels with their values redacted: ``labels`` itself when no value changed."""
    return _redact_labels(tuple(labels.items()), emails, ips) or labels


def redact(event: Event, *, emails: bool = True, ips: bool = False) -> Event:
    line = redact_text(event.line, emails=emails, ips=ips)
    if event.message == event.line:
        message = line
    elif line is event.line and all(piece in event.line for piece in _JOINS.split(event.message)):
        # The message is made of verbatim pieces of an entry in which no rule matched (a JSON or
        # logfmt message field, "msg: error", the parts of a stack signature joined by " | ", a
        # prefix cut at the length limit). Every rule is a local pattern, and extract cuts a piece
        # only after a quote, `=`, a line start or at the end, where a token's boundary is the same
        # in the piece as in the entry: no rule can match inside a piece either. A match across a
        # join ("invalid token" + ": " + "abc") would mask what the entry shows as a sample anyway.
        # This saves a second scan for most lines; anything else is scanned on its own.
        message = event.message
    else:
        message = redact_text(event.message, emails=emails, ips=ips)
    labels = redacted_labels(event.labels, emails=emails, ips=ips)
    if line is event.line and message is event.message and labels is event.labels:
        return event
    return replace(event, message=message, line=line, labels=labels)
