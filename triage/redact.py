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
from triage.redact_rules import (ALWAYS, BY_ENTROPY, CARD_GATE, FORMATS, SCHEMES, START, Rule, looks_random,
                                 mask_cards, secret_verdict)

RULES_VERSION = "r2"

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

# Key-name triggers (lower case): a pair can only be secret if its key contains one of these.
_KEY_TRIGGERS = ("secret", "passw", "pwd", "pass", "token", "credential", "creds", "key", "session", "sessid", "sid",
                 "cookie", "auth", "signature", "sig", "jwt", "sas", "csrf", "xsrf", "salt")
# A secret-ish word in prose followed by a value that looks random: "refresh token 9f8e7d...",
# "using key 3q2+7w...". Only random-looking values go, so "token expired" stays.
_PROSE_WORDS = ("secret", "password", "passwd", "pwd", "token", "credential", "key", "signature", "session",
                "cookie", "auth")
_PROSE_VALUE = r"(\s+(?:is\s+|was\s+)?)([^\s\"'<>,;()\[\]{}]{16,})"
_PROSE = re.compile(r"(?i)" + START + r"(secret|passw(?:or)?d|pwd|token|credentials?|key|signature|session(?:[ _-]?id)?|cookie|auth)"
                    + _PROSE_VALUE)
_JOINS = re.compile(r": | \| ")  # how extract joins the pieces of a message (msg: error, signature parts)
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
_IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")


def _trie(words: dict[str, str]) -> str:
    """One regex matching any of ``words``, each followed by its tail regex, factored by common
    prefixes: re tries one branch per distinct next character instead of every word at every
    position, several times faster than a flat alternation or a loop of substring tests. A word
    with an empty tail ends the match there, since the pre-filter only asks whether one is present."""
    root: dict = {}
    for word, tail in words.items():
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node.setdefault("", set()).add(tail)

    def emit(node: dict) -> str:
        tails = node.get("", set())
        if "" in tails:
            return ""
        branches = sorted(tails) + [re.escape(char) + emit(child) for char, child in sorted(node.items()) if char]
        return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"

    return emit(root)


# The pre-filter: one search over the lower-cased line for a format rule's trigger (or its
# prefilter regex), a key-name trigger inside a key followed by a separator (an assignment), or
# a prose word followed by a value long enough to be random. Most lines have none and skip every
# rule but the card check; a line that passes runs only the rules whose triggers it holds.
# The tails are bounded: in a hostile run like "tokentoken..." an unbounded [\w.-]* after each
# trigger makes the scan quadratic (90 s for 50 kB). No real key has 100 characters after its
# secret word.
_ASSIGNMENT_TAIL = r"[\w.-]{0,100}(?:\\?[\"']?[ \t]*(?:=>|[:=])|%3d)"
_PROSE_GATE_TAIL = r"\w{0,40}\s+(?:is\s+|was\s+)?[^\s\"'<>,;()\[\]{}]{16}"
_KEY_ASSIGNMENT = re.compile(_trie({t: _ASSIGNMENT_TAIL for t in _KEY_TRIGGERS}))
_PROSE_GATE = re.compile(_trie({w: _PROSE_GATE_TAIL for w in _PROSE_WORDS}))
_FORMAT_GATES = {rule.name: re.compile("|".join(word + tail for word, tail in rule.prefilter))
                 for rule in FORMATS if rule.prefilter}


def _prefilter() -> re.Pattern[str]:
    # One trie over every trigger, each with its tail: a single pattern whose first characters re
    # can scan for (a top-level alternation of separate patterns loses that and is twice as slow).
    words: dict[str, set[str]] = {}
    for rule in FORMATS:
        for trigger in rule.triggers if rule.prefilter is None else ():
            words.setdefault(trigger, set()).add("")
    for trigger in _KEY_TRIGGERS:
        words.setdefault(trigger, set()).add(_ASSIGNMENT_TAIL)
    for word in _PROSE_WORDS:
        words.setdefault(word, set()).add(_PROSE_GATE_TAIL)
    for rule in FORMATS:
        if rule.prefilter is not None:
            for word, tail in rule.prefilter:
                words.setdefault(word, set()).add(tail)
    return re.compile(_trie({word: "" if "" in tails else "(?:" + "|".join(sorted(tails)) + ")"
                             for word, tails in words.items()}))


_ANY_TRIGGER = _prefilter()


def _trigger_rules() -> tuple[tuple[str, tuple[int, ...]], ...]:
    # Each distinct trigger once, with the rules it opens: one substring test per trigger instead of
    # one per rule and trigger.
    by_trigger: dict[str, list[int]] = {}
    for index, rule in enumerate(FORMATS):
        for trigger in rule.triggers:
            by_trigger.setdefault(trigger, []).append(index)
    return tuple((trigger, tuple(indexes)) for trigger, indexes in by_trigger.items())


_TRIGGER_RULES = _trigger_rules()


def _rules_for(lowered: str) -> tuple[list[Rule], bool, bool, bool]:
    """(format rules that can match, whether an assignment can be secret, whether prose can,
    whether a card number can be there)."""
    cards = CARD_GATE.search(lowered) is not None  # a separate scan: as a branch of the trie it costs more
    if _ANY_TRIGGER.search(lowered) is None:
        return [], False, False, cards
    held = {index for trigger, indexes in _TRIGGER_RULES if trigger in lowered for index in indexes}
    rules: list[Rule] = []
    for index in sorted(held):  # in FORMATS order: a private key block goes before what is inside it
        rule = FORMATS[index]
        gate = _FORMAT_GATES.get(rule.name)
        if gate is None or gate.search(lowered) is not None:
            rules.append(rule)
    return rules, _KEY_ASSIGNMENT.search(lowered) is not None, _PROSE_GATE.search(lowered) is not None, cards


def may_hold_secret(text: str) -> bool:
    """The cheap pre-filter: False only when no rule can match ``text``. Never a cache: every
    line is scanned."""
    return _ANY_TRIGGER.search(text.lower()) is not None or CARD_GATE.search(text) is not None


_SCHEME_WORD = re.compile(r"(?i)(?:" + SCHEMES + r")[ \t]+")


def _quoted_placeholder(value: str) -> str:
    """The placeholder for a masked value, keeping its quotes and an auth scheme (Bearer, Basic)."""
    for quote in ('\\"', '"', "'"):
        if value.startswith(quote) and value.endswith(quote) and len(value) >= 2 * len(quote):
            scheme = _SCHEME_WORD.match(value, len(quote))
            return f"{quote}{scheme.group(0) if scheme else ''}<redacted>{quote}"
    scheme = _SCHEME_WORD.match(value)
    return f"{scheme.group(0) if scheme else ''}<redacted>"


def _redact_pairs(text: str) -> str:
    out: list[str] = []
    done = 0  # text before this is in out
    match = _PAIR.search(text)
    while match is not None:
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
            match = _PAIR.search(text, done)  # never look inside a masked value again
        else:
            match = _PAIR.search(text, match.end())
    if not out:
        return text
    out.append(text[done:])
    return "".join(out)


def _prose(match: re.Match[str]) -> str:
    return f"{match.group(1)}{match.group(2)}<redacted>" if looks_random(match.group(3)) else match.group(0)


def redact_text(text: str, *, emails: bool = True, ips: bool = False) -> str:
    if "\\/" in text:  # JSON written with escaped slashes (PHP, some Go and Java encoders): URLs as URLs
        text = text.replace("\\/", "/")
    rules, pairs, prose, cards = _rules_for(text.lower())
    # Formats first (a private key block under a secret key goes whole), then assignments.
    for rule in rules:
        text = rule.pattern.sub(rule.replacement, text)
    if pairs:
        text = _redact_pairs(text)
    if prose:
        text = _PROSE.sub(_prose, text)
    if cards:
        text = mask_cards(text)
    if emails and "@" in text:
        text = _EMAIL.sub("<email>", text)
    if ips:
        text = _IPV4.sub("<ip>", text)
    return text


def redact_text_unfiltered(text: str, *, emails: bool = True, ips: bool = False) -> str:
    """What ``redact_text`` must return, by definition: every rule over the whole text, in order,
    with no pre-filter, no skipped rule and no cache (a contextual rule still needs its words in
    the entry). Slow; the tests hold the fast path to it on every class of secret and on random text."""
    if "\\/" in text:
        text = text.replace("\\/", "/")
    context = text.lower()
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
    redacted = {key: redact_text(value, emails=emails, ips=ips) for key, value in labels}
    return None if all(redacted[key] is value for key, value in labels) else redacted


def redact_for_grouping(event: Event, *, emails: bool = True, ips: bool = False) -> Event:
    """The message and the labels redacted, and no entry text (``line`` is empty): what grouping
    and the counts need. The read stage keeps a few entries a cluster as samples and redacts only
    those (``redact_text``), so the long raw text of most entries (stack traces, JSON bodies) is
    never scanned: only the message is, which holds less, and a line the stage drops cannot leak."""
    message = redact_text(event.message, emails=emails, ips=ips)
    labels = _redact_labels(tuple(event.labels.items()), emails, ips) or event.labels
    return replace(event, message=message, line="", labels=labels)


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
    labels = _redact_labels(tuple(event.labels.items()), emails, ips) or event.labels
    if line is event.line and message is event.message and labels is event.labels:
        return event
    return replace(event, message=message, line=line, labels=labels)
