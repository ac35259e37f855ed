"""What varies inside a cluster (pure): the values behind each ``<*>``, and samples that differ in shape.

A card shows one sample; instead of more samples that differ only by an id, it says what varies:
``user: 198, 125, 328 … 312 distinct``. The values are read by matching the cluster's template
against each message (the template is the masked message, so its constant parts occur verbatim
and each ``<*>`` becomes a lazy group). ``WildcardTally`` is bounded, so the cluster stage can
feed it every line; from samples alone it says how many samples it saw.
A second sample is worth showing only when it has another shape: a multi-line entry (a stack
trace) whose masked lines differ, e.g. another exception or frame, not another SKU.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from triage.cluster.masking import WILDCARD, tokenize

MAX_WILDCARDS = 8  # more lazy groups than this could backtrack for long; such templates are skipped
MAX_DISTINCT = 1000  # distinct values counted exactly up to here, then "1000+"
SHOWN_VALUES = 3
_KEY_BEFORE = re.compile(r"([A-Za-z_][\w.\-]*)\s*[=:]\s*[\"'(\[{]?$")
_WORD_BEFORE = re.compile(r"([A-Za-z_][\w.\-]*)\W*$")


@dataclass(frozen=True, slots=True)
class Varying:
    name: str
    values: tuple[str, ...]  # the most frequent first, at most SHOWN_VALUES
    distinct: int
    capped: bool = False  # distinct reached MAX_DISTINCT
    seen: int = 0  # messages that matched

    def text(self, from_samples: bool = False) -> str:
        """``user: 198, 125, 328 … 312 distinct``; from samples alone the count says nothing, so it is left out."""
        shown = ", ".join(self.values)
        if from_samples and self.distinct <= len(self.values):
            return f"{self.name}: {shown}"
        more = " …" if self.distinct > len(self.values) else ","
        return f"{self.name}: {shown}{more} {self.distinct}{'+' if self.capped else ''} distinct"


@lru_cache(maxsize=4096)
def _pattern(template: str) -> tuple[re.Pattern | None, tuple[str, ...]]:
    pieces = template.split(WILDCARD)
    if len(pieces) < 2 or len(pieces) - 1 > MAX_WILDCARDS:
        return None, ()
    names = []
    for index, before in enumerate(pieces[:-1], start=1):
        key = _KEY_BEFORE.search(before) or _WORD_BEFORE.search(before)
        names.append(key.group(1) if key else ("first value" if index == 1 else f"value {index}"))
    regex = "(.+?)".join(r"\s+".join(re.escape(word) for word in piece.split(" ")) for piece in pieces)
    try:
        return re.compile(regex, re.DOTALL), tuple(_unique(names))
    except re.error:
        return None, ()


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    result = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        result.append(name if seen[name] == 1 and names.count(name) == 1 else f"{name} #{seen[name]}")
    return result


@dataclass(slots=True)
class WildcardTally:
    """Per ``<*>`` of one template: how often each value came, bounded by MAX_DISTINCT values."""

    template: str
    counts: list[dict[str, int]] = field(default_factory=list)
    capped: list[bool] = field(default_factory=list)
    seen: int = 0

    def add(self, message: str) -> bool:
        pattern, _ = _pattern(self.template)
        if pattern is None:
            return False
        match = pattern.fullmatch(" ".join(message.split()))
        if match is None:
            return False
        if not self.counts:
            self.counts = [{} for _ in match.groups()]
            self.capped = [False] * len(self.counts)
        self.seen += 1
        for index, value in enumerate(match.groups()):
            values = self.counts[index]
            if value in values:
                values[value] += 1
            elif len(values) < MAX_DISTINCT:
                values[value] = 1
            else:
                self.capped[index] = True
        return True

    def varying(self) -> list[Varying]:
        _, names = _pattern(self.template)
        result = []
        for name, values, capped in zip(names, self.counts, self.capped):
            if len(values) < 2:
                continue  # the same value every time: it does not vary
            ordered = sorted(values.items(), key=lambda item: -item[1])  # stable: first seen first on ties
            result.append(Varying(name, tuple(_short(v) for v, _ in ordered[:SHOWN_VALUES]), len(values), capped,
                                  self.seen))
        return result


def _short(value: str, limit: int = 40) -> str:
    value = " ".join(value.split())
    return value if len(value) <= limit else value[: limit - 1] + "…"


def from_messages(template: str, messages: list[str], capped: bool = False) -> list[Varying]:
    """What varies among ``messages``; ``capped``: they are not all the cluster's messages (a lower bound)."""
    tally = WildcardTally(template)
    for message in messages:
        tally.add(message)
    if capped:
        tally.capped = [True] * len(tally.capped)
    return tally.varying()


def shape(entry: str) -> tuple[tuple[str, ...], ...]:
    """A multi-line entry's lines with their values masked: two tracebacks that differ only by ids match."""
    return tuple(tuple(tokenize(line)) for line in entry.strip("\n").split("\n") if line.strip())


def distinct_shapes(samples: list[str], limit: int = 2) -> list[str]:
    """The first sample, plus samples of another shape (multi-line entries only), at most ``limit``."""
    if not samples:
        return []
    chosen = [samples[0]]
    shapes = {shape(samples[0])}
    for sample in samples[1:]:
        if len(chosen) >= limit:
            break
        if "\n" not in sample.strip("\n"):
            continue  # one-line entries differ in values, and the values are listed instead
        current = shape(sample)
        if current not in shapes:
            shapes.add(current)
            chosen.append(sample)
    return chosen
