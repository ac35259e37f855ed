"""Loki pattern-match filters (``|>`` and ``!>``, Loki 3.0+) built from raw log lines (pure).

When a window is too big to pull, Loki counts each known template with a pattern filter; this
module builds those patterns from the raw lines of a sample and proves each one safe on it.

What Loki does with a line filter pattern (pkg/logql/log/pattern, ``ParseLineFilter`` and
``Matcher.Test``), mirrored here exactly so that what triage checks on its sample is what Loki
counts:
- A pattern is literal text and ``<_>`` wildcards. ``<name>`` (a letter or ``_``, then letters,
  digits, ``_``) is a *named* capture, which a line filter rejects; two wildcards in a row are
  rejected too. There is no escape for ``<``: raw text that looks like ``<name>`` cannot be a
  literal, so such a template gets no pattern (it is pulled instead).
- Matching walks the literals left to right, each at its FIRST occurrence after the previous one;
  it never backtracks. A wildcard never matches empty text. A pattern ending in a literal must end
  the line; one ending in ``<_>`` must leave some text for it. The leading literal is searched,
  not anchored (``|> "bar"`` matches ``foo bar``).
- The pattern must match the WHOLE raw line, JSON quotes, spaces and newlines included.

Which line a pattern matches decides only *which cluster* Loki's count goes to; the totals are
exact whatever the patterns are, because the counts (``|> p_i !> p_1 … !> p_{i-1}``) and the
residue (``!> p_1 … !> p_n``) partition the window's entries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

WILDCARD = "<_>"
_CAPTURE = re.compile(r"<[A-Za-z_][A-Za-z0-9_]*>")
# A token is a run of word-ish characters, or one separator (space runs, quotes, brackets, = : , ;).
# Tokens of one template line up position by position; a position whose token differs between the
# sample lines becomes <_>. A wildcard is always followed by a separator literal, whose first
# occurrence is then exactly where the varying token ends.
_TOKEN = re.compile(r"""[^\s"'`{}\[\]()<>,;=:|]+|\s+|.""", re.S)
MIN_LITERAL_CHARS = 6  # a pattern that is mostly wildcards would swallow other templates' lines


class PatternError(ValueError):
    """A pattern Loki's line filter would reject."""


def parse(pattern: str) -> list[str | None]:
    """Elements of a line-filter pattern: literal strings and ``None`` for ``<_>``; raises PatternError
    for what Loki rejects (a named capture, two wildcards in a row)."""
    elements: list[str | None] = []
    pos = 0
    for match in _CAPTURE.finditer(pattern):
        if match.start() > pos:
            elements.append(pattern[pos:match.start()])
        if match.group() != WILDCARD:
            raise PatternError(f"named capture {match.group()} is not allowed in a line filter")
        if elements and elements[-1] is None:
            raise PatternError("found consecutive capture")
        elements.append(None)
        pos = match.end()
    if pos < len(pattern):
        elements.append(pattern[pos:])
    return elements


def matches(elements: list[str | None], line: str) -> bool:
    """Loki's ``Matcher.Test``: first occurrence of each literal, no empty wildcard, no backtracking."""
    if not line or not elements:
        return not line and not elements
    off = 0
    for index, element in enumerate(elements):
        if element is None:
            continue
        found = line.find(element, off)
        if found == -1:
            return False
        if index != 0 and found == off:
            return False  # an empty wildcard (or a repeated literal)
        off = found + len(element)
    ends_on_wildcard = elements[-1] is None
    return ends_on_wildcard == (off != len(line))


def to_regex(elements: list[str | None]) -> re.Pattern:
    """The same test as ``matches``, as one compiled regex (atomic groups keep Loki's no-backtracking
    first-occurrence rule); ``regex.match(line)`` is true exactly when ``matches`` is."""
    if not elements:
        return re.compile(r"\Z")
    parts = []
    for index, element in enumerate(elements):
        if element is None:
            continue
        literal = re.escape(element)
        if index == 0:
            parts.append(f"(?>.*?{literal})")
        else:  # the wildcard before it: at least one character, up to the literal's first occurrence
            parts.append(f"(?!{literal})(?>.+?{literal})")
    parts.append(r".+\Z" if elements[-1] is None else r"\Z")
    return re.compile("".join(parts), re.S)


def quote(text: str) -> str:
    """A LogQL string literal for ``text``: a raw backtick string when it can be one (no escapes at
    all, so JSON quotes and backslashes go through as they are), else a double-quoted Go string."""
    if "`" not in text and "\r" not in text:
        return f"`{text}`"
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif char == "\r":
            out.append("\\r")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def build(lines: list[str]) -> str | None:
    """A pattern matching every one of ``lines`` (raw lines of one template), literal where they agree,
    ``<_>`` where they differ; None when the lines do not line up or too little would stay literal."""
    if not lines or any(not line for line in lines):
        return None
    tokenized = [_TOKEN.findall(line) for line in lines]
    width = len(tokenized[0])
    if any(len(tokens) != width for tokens in tokenized):
        parts = _prefix_suffix(tokenized)
    else:
        parts = [tokens_at[0] if len(set(tokens_at)) == 1 else None for tokens_at in zip(*tokenized)]
    if parts is None:
        return None
    merged: list[str | None] = []
    for part in parts:
        if part is None:
            if not merged or merged[-1] is not None:
                merged.append(None)
        elif merged and merged[-1] is not None:
            merged[-1] += part
        else:
            merged.append(part)
    literal = "".join(p for p in merged if p is not None)
    if len(literal.strip()) < MIN_LITERAL_CHARS or any(_CAPTURE.search(p) for p in merged if p is not None):
        return None
    pattern = "".join(WILDCARD if p is None else p for p in merged)
    try:
        pattern.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a JSON body: not valid UTF-8 for Loki's lexer
        return None
    elements = parse(pattern)
    if not all(matches(elements, line) for line in lines):
        return None
    return pattern


def _prefix_suffix(tokenized: list[list[str]]) -> list[str | None] | None:
    """Lines of different token counts: the common leading and trailing tokens, one wildcard between."""
    shortest = min(len(tokens) for tokens in tokenized)
    head = 0
    while head < shortest and len({tokens[head] for tokens in tokenized}) == 1:
        head += 1
    tail = 0
    while tail < shortest - head and len({tokens[-1 - tail] for tokens in tokenized}) == 1:
        tail += 1
    if any(len(tokens) - head - tail <= 0 for tokens in tokenized):
        return None  # a line with nothing where the wildcard goes: Loki's <_> never matches empty text
    first = tokenized[0]
    return [*first[:head], None, *first[len(first) - tail:]]


@dataclass(frozen=True, slots=True)
class SafePattern:
    """A pattern proven on the sample: it matches every sample line of its clusters and no other
    sample line; ``clusters`` maps a group (the ``group_by`` values) to that group's cluster."""

    pattern: str
    clusters: dict[tuple[str, ...], str]
    sample_lines: int


def choose(samples: dict[str, tuple[tuple[str, ...], list[str]]], *, max_chars: int) -> list[SafePattern]:
    """The safe patterns for a sample, most sampled first, within ``max_chars`` of LogQL for the
    longest query (``!> p_1 … !> p_n``). ``samples``: fingerprint -> (group, its raw sample lines).

    A pattern is kept only if every cluster it touches on the sample is matched whole (all of its
    sample lines), at most one cluster per group (the same template in two groups is one pattern,
    whose count Loki splits by group), and no cluster already taken by a kept pattern: kept
    patterns are pairwise disjoint on the sample."""
    lines = {fp: sorted(set(fp_lines)) for fp, (_, fp_lines) in samples.items()}
    candidates: dict[str, int] = {}
    for fingerprint, fp_lines in lines.items():
        pattern = build(fp_lines)
        if pattern is not None:
            candidates[pattern] = candidates.get(pattern, 0) + len(samples[fingerprint][1])
    claimed: set[str] = set()
    chosen: list[SafePattern] = []
    for pattern, _ in sorted(candidates.items(), key=lambda item: (-item[1], item[0])):
        elements = parse(pattern)
        regex = to_regex(elements)
        longest = max((e for e in elements if e), key=len)  # a substring test first: most lines fail it
        hit = {fp: sum(1 for line in fp_lines if longest in line and regex.match(line)) for fp, fp_lines in lines.items()}
        hit = {fp: n for fp, n in hit.items() if n}
        groups: dict[tuple[str, ...], str] = {}
        safe = bool(hit)
        for fingerprint, n in hit.items():
            group = samples[fingerprint][0]
            if n != len(lines[fingerprint]) or fingerprint in claimed or group in groups:
                safe = False
                break
            groups[group] = fingerprint
        if safe:
            claimed.update(hit)
            chosen.append(SafePattern(pattern, groups, sum(len(samples[fp][1]) for fp in hit)))
    kept, used = [], 0
    for safe_pattern in chosen:
        cost = len(quote(safe_pattern.pattern)) + 4
        if used + cost > max_chars:
            continue
        kept.append(safe_pattern)
        used += cost
    return kept
