"""Masking: turn a message into tokens with the variable parts replaced by ``<*>`` (pure).

Specific patterns first (timestamps, UUIDs, IPs, hex, emails, pod-name hashes), then the
general rule that a token holding a digit is a value: ``size=123,`` becomes ``size=<*>,``.
"""

from __future__ import annotations

import re

WILDCARD = "<*>"
MASKING_VERSION = "m1"

_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*"
_SPECIFIC = (
    # ctime and syslog dates: "Mon Jun 20 03:40:59 2005", "Jun 20 03:40:59", "20/Jun/2005:03:40:59 +0000"
    re.compile(rf"\b(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,? +)?{_MONTH} +\d{{1,2}},? +\d{{1,2}}:\d{{2}}:\d{{2}}(?:\.\d+)?"
               rf"(?: +\d{{4}})?"),
    re.compile(rf"\b\d{{1,2}}/{_MONTH}/\d{{4}}:\d{{2}}:\d{{2}}:\d{{2}}(?: [+-]\d{{4}})?"),
    # a number with its unit is one value: "5.2 KB", "93.0 B", "120 ms"
    re.compile(r"\b\d+(?:\.\d+)? ?(?:[KMGTP]i?B|[kKMGT]b|B|bytes|ms|us|µs|ns|sec|secs|seconds|mins?|minutes|hours?|days?)\b"),
    # 2026-11-23T07:00:00.123Z, 2026-11-23 07:00:00,123, 2026/11/23 07:00:00
    re.compile(r"\d{4}[-/]\d{2}[-/]\d{2}(?:[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)?"),
    re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"),
    re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b"),
    # IPv6 (at least three groups with ::, or eight groups)
    re.compile(r"(?<![\w:])(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}(?![\w:])|"
               r"(?<![\w:])(?:[0-9a-fA-F]{1,4}:){1,6}:(?:[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4})*)?(?![\w:])"),
    re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?\b"),
    re.compile(r"\b0[xX][0-9a-fA-F]+\b"),
    # hex ids / hashes with at least one letter and one digit
    re.compile(r"\b(?=[0-9a-fA-F]*[a-fA-F])(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,}\b"),
)
# Kubernetes pod names: <deployment>-<replicaset hash>-<pod hash>, or <owner>-<5 char hash with a digit>.
_K8S_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_POD_NAME = re.compile(
    rf"\b([a-z][a-z0-9-]*?)-(?:[{_K8S_ALPHABET}]{{6,10}}-[{_K8S_ALPHABET}]{{5}}|(?=[{_K8S_ALPHABET}]*\d)[{_K8S_ALPHABET}]{{5}})\b"
)
_HAS_DIGIT = re.compile(r"\d")
_KEY_PREFIX = re.compile(r"^([\w.\-]+[=:])(.+)$")
_EDGE_PUNCT = "\"'()[]{}<>,;.!?`"


# One alternation scans the text once; where two patterns could match at one place, the
# earlier one in _SPECIFIC wins, as it would when applied one after another.
_ANY_SPECIFIC = re.compile("|".join(f"(?:{p.pattern})" for p in _SPECIFIC))
_DIGIT_OR_AT = re.compile(r"[\d@]")


# Inside masking a variable part is this private-use character, so that stripping punctuation off a
# token can never cut a "<*>" in half; tokens carry WILDCARD once masked.
_MARK = "\ue000"
_OWNER_AND_HASH = re.compile(rf"^([A-Za-z][\w.\-]*-){_MARK}$")


def mask_text(message: str) -> str:
    if not _DIGIT_OR_AT.search(message):
        return message  # every specific pattern needs a digit or an @
    # Pod names first: a replica-set hash can look like a hex id, which would hide the owner name.
    text = _POD_NAME.sub(rf"\1-{_MARK}", message)
    return _ANY_SPECIFIC.sub(_MARK, text)


def mask_token(token: str) -> str:
    if _MARK not in token and not _HAS_DIGIT.search(token):
        # An empty value ("()", "[]", '""', "key=") stands where other lines have one: mask it the same way.
        if token.endswith(("()", "[]", "{}", '""', "''")) and len(token) > 2 and token[-3] in "( [{=:":
            return token[:-1] + WILDCARD + token[-1]
        if token in ("()", "[]", "{}", '""', "''"):
            return token[0] + WILDCARD + token[1]
        if token.endswith("=") and len(token) > 1 and token[:-1].replace("_", "").replace(".", "").replace("-", "").isalnum():
            return token + WILDCARD
        return token
    core = token.strip(_EDGE_PUNCT)
    start = token.find(core)
    head, tail = token[:start], token[start + len(core):]
    owner = _OWNER_AND_HASH.match(core)
    if owner:
        return f"{head}{owner.group(1)}{WILDCARD}{tail}"
    keyed = _KEY_PREFIX.match(core)
    if keyed and _MARK not in keyed.group(1) and not _HAS_DIGIT.search(keyed.group(1)):
        return f"{head}{keyed.group(1)}{mask_token(keyed.group(2))}{tail}"
    return f"{head}{WILDCARD}{tail}"


def tokenize(message: str) -> list[str]:
    return [mask_token(token) for token in mask_text(message).split()]
