"""Masking: turn a message into tokens with the variable parts replaced by ``<*>`` (pure).

Specific patterns first (timestamps, UUIDs, IPs, hex, emails, pod-name hashes), then the
general rule that a token holding a digit is a value: ``size=123,`` becomes ``size=<*>,``.
"""

from __future__ import annotations

import re

WILDCARD = "<*>"
MASKING_VERSION = "m1"

_SPECIFIC = (
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


def mask_text(message: str) -> str:
    if not _DIGIT_OR_AT.search(message):
        return message  # every specific pattern needs a digit or an @
    # Pod names first: a replica-set hash can look like a hex id, which would hide the owner name.
    text = _POD_NAME.sub(rf"\1-{WILDCARD}", message)
    return _ANY_SPECIFIC.sub(WILDCARD, text)


def mask_token(token: str) -> str:
    if not _HAS_DIGIT.search(token) or token == WILDCARD:
        return token
    core = token.strip(_EDGE_PUNCT)
    if not core:
        return token
    start = token.find(core)
    head, tail = token[:start], token[start + len(core):]
    keyed = _KEY_PREFIX.match(core)
    if keyed and not _HAS_DIGIT.search(keyed.group(1)):
        return f"{head}{keyed.group(1)}{mask_token(keyed.group(2))}{tail}"
    if WILDCARD in core and not _HAS_DIGIT.search(core.replace(WILDCARD, "")):
        return token
    return f"{head}{WILDCARD}{tail}"


def tokenize(message: str) -> list[str]:
    return [mask_token(token) for token in mask_text(message).split()]
