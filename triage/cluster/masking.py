"""Masking: turn a message into tokens with the variable parts replaced by ``<*>`` (pure).

The general rule: a token that holds a digit (or an ``@``) is a value, and only its key and its
edge punctuation survive: ``size=123,`` becomes ``size=<*>,``, ``(10.0.0.1:80)`` becomes
``(<*>)``. Before splitting, values that span spaces become one (dates such as
``Mon Jun 20 03:40:59 2005``, numbers with units such as ``5.2 KB``). Kubernetes pod names keep
their owner (``checkout-<*>``), and an empty value (``()``, ``key=``) is masked like a full one.
Per-token checks instead of one big regex over the line keep this cheap.
"""

from __future__ import annotations

import re

WILDCARD = "<*>"
MASKING_VERSION = "m2"

_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*"
_SPANNING = re.compile("|".join(f"(?:{pattern})" for pattern in (
    # ctime and syslog dates: "Mon Jun 20 03:40:59 2005", "Jun 20 03:40:59"
    rf"\b(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,? +)?{_MONTH} +\d{{1,2}},? +\d{{1,2}}:\d{{2}}:\d{{2}}(?:\.\d+)?(?: +\d{{4}})?",
    # "2026-11-23 07:00:00,123", "2026/11/23 07:00:00 +0100"
    r"\b\d{4}[-/]\d{2}[-/]\d{2} \d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?: ?(?:Z|[+-]\d{2}:?\d{2}))?",
    # "[20/Jun/2005:03:40:59 +0000]"
    rf"\b\d{{1,2}}/{_MONTH}/\d{{4}}:\d{{2}}:\d{{2}}:\d{{2}}(?: [+-]\d{{4}})?",
    # a number with its unit is one value: "5.2 KB", "93.0 B", "120 ms"
    r"\b\d+(?:\.\d+)? (?:[KMGTP]i?B|[kKMGT]b|B|bytes|ms|us|µs|ns|s|sec|secs|seconds|mins?|minutes|hours?|days?)\b",
)))
# Kubernetes pod names: <owner>-<replicaset hash>-<pod hash>, or <owner>-<5 char hash with a digit>.
_K8S = "bcdfghjklmnpqrstvwxz2456789"
_POD_NAME = re.compile(rf"^([A-Za-z][\w./:-]*?)-(?:[{_K8S}]{{6,10}}-[{_K8S}]{{5}}|(?=[{_K8S}]*\d)[{_K8S}]{{5}})$")
_HAS_DIGIT = re.compile(r"\d")
_KEY_PREFIX = re.compile(r"^([A-Za-z_][\w.\-]*[=:])(.+)$")
_EDGE_PUNCT = "\"'()[]{}<>,;.!?`"
_EMPTY_PAIRS = ("()", "[]", "{}", '""', "''")
# Inside masking a spanning value is this private-use character, so that stripping punctuation off a
# token can never cut a "<*>" in half; tokens carry WILDCARD once masked.
_MARK = "\ue000"


def mask_text(message: str) -> str:
    if not _HAS_DIGIT.search(message):
        return message  # every spanning value holds a digit
    return _SPANNING.sub(_MARK, message)


def mask_token(token: str) -> str:
    if token.isalpha():
        return token  # the common case: a plain word
    if _MARK not in token and "@" not in token and not _HAS_DIGIT.search(token):
        # An empty value ("()", "[]", '""', "key=") stands where other lines have one: mask it the same way.
        if token.endswith(_EMPTY_PAIRS) and (len(token) == 2 or token[-3] in "( [{=:"):
            return token[:-1] + WILDCARD + token[-1]
        if len(token) > 1 and token[-1] == "=" and token[:-1].replace("_", "").replace(".", "").replace("-", "").isalnum():
            return token + WILDCARD
        return token
    core = token.strip(_EDGE_PUNCT)
    start = token.find(core)
    head, tail = token[:start], token[start + len(core):]
    if "-" in core:
        owner = _POD_NAME.match(core)
        if owner:
            return f"{head}{owner.group(1)}-{WILDCARD}{tail}"
    keyed = _KEY_PREFIX.match(core)
    if keyed and _MARK not in keyed.group(1) and not _HAS_DIGIT.search(keyed.group(1)):
        return f"{head}{keyed.group(1)}{mask_token(keyed.group(2))}{tail}"
    return f"{head}{WILDCARD}{tail}"


def tokenize(message: str) -> list[str]:
    return [mask_token(token) for token in mask_text(message).split()]
