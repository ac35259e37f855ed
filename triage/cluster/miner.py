"""An online template miner with stable fingerprints (pure).

1. Every message is masked (``masking.py``) into tokens; messages with the same tokens in the
   same group share a *strict template*. Masking turns every value that holds a digit (and
   dates, UUIDs, IPs, hex ids, sizes with units, empty values) into ``<*>``, so most variable
   parts are gone before this step, and words are kept: "startup succeeded" and "shutdown
   succeeded" stay two problems.
2. A word position is learned to be variable when enough strict templates differ only there:
   ``min_values`` distinct words (default 3), or one word and one masked value, with at least
   ``min_constant`` (default 3) other tokens that are not wildcards. Those templates then merge
   into one cluster whose template has ``<*>`` at that position; later messages that fit a
   merged template join it directly.

A cluster's fingerprint is a hash of the grouping version, its group and its first template,
fixed when it is created. When clusters merge, the oldest one's fingerprint survives and the
others become its aliases (``aliases()``), so counts, summaries and reported flags can follow.
A miner restored from the state (``restore``) keeps every id it had.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from triage.cluster.masking import MASKING_VERSION, WILDCARD, tokenize

MINER_VERSION = "s1"
DEFAULT_MIN_VALUES = 3
DEFAULT_MIN_CONSTANT = 3


@dataclass(slots=True)
class Template:
    fingerprint: str
    group: tuple[str, ...]
    tokens: list[str]
    size: int = 0
    order: int = 0  # creation order: the oldest cluster of a merge survives
    parent: Template | None = field(default=None, repr=False)

    @property
    def text(self) -> str:
        return " ".join(self.tokens)


@dataclass(frozen=True, slots=True)
class Match:
    fingerprint: str
    template: str
    created: bool
    changed: bool


def grouping_version(group_by: Iterable[Iterable[str]], extra: str = "") -> str:
    """Hash of everything that decides which lines share a cluster."""
    spec = (f"{MINER_VERSION}|{MASKING_VERSION}|{DEFAULT_MIN_VALUES}|{DEFAULT_MIN_CONSTANT}|"
            f"{[list(p) for p in group_by]}|{extra}")
    return hashlib.sha256(spec.encode()).hexdigest()[:8]


class Miner:
    def __init__(self, version: str, min_values: int = DEFAULT_MIN_VALUES, min_constant: int = DEFAULT_MIN_CONSTANT):
        self.version = version
        self.min_values = min_values
        self.min_constant = min_constant
        self._strict: dict[tuple, Template] = {}  # (group, *tokens) -> the node first made for them
        self._by_fingerprint: dict[str, Template] = {}
        self._skeletons: dict[tuple, dict[str, Template]] = {}  # (group, len, i, other tokens) -> word -> node
        self._generalized: dict[tuple, list[Template]] = {}  # (group, len) -> roots with wildcards from merges
        self._aliases: dict[str, str] = {}  # merged-away fingerprint -> surviving fingerprint (this session)
        self._order = 0

    def __len__(self) -> int:
        return sum(1 for node in self._by_fingerprint.values() if node.parent is None)

    def templates(self) -> list[Template]:
        return [node for node in self._by_fingerprint.values() if node.parent is None]

    def get(self, fingerprint: str) -> Template | None:
        node = self._by_fingerprint.get(fingerprint)
        return _root(node) if node else None

    def resolve(self, fingerprint: str) -> str:
        node = self._by_fingerprint.get(fingerprint)
        return _root(node).fingerprint if node else fingerprint

    def aliases(self) -> dict[str, str]:
        """Fingerprints merged away while this miner ran -> the fingerprint that survives."""
        return {old: self.resolve(old) for old in self._aliases}

    def restore(self, fingerprint: str, group: tuple[str, ...], template: str) -> None:
        """Load a known cluster (from the state, oldest first) so that its id survives restarts."""
        tokens = template.split(" ") if template else []
        node = Template(fingerprint, group, tokens, order=self._next_order())
        self._by_fingerprint[fingerprint] = node
        self._strict.setdefault((group, *tokens), node)
        if WILDCARD in tokens:
            self._generalized.setdefault((group, len(tokens)), []).append(node)
        self._index(node, tokens)

    def generalized_order(self) -> dict[str, int]:
        """Each generalized root's place in the order lines are tried against (persisted by the state)."""
        return {root.fingerprint: place for bucket in self._generalized.values()
                for place, root in enumerate(bucket) if root.parent is None}

    def order_generalized(self, places: dict[str, int]) -> None:
        """After ``restore``: put generalized roots back in the order they were tried in before the
        restart (``generalized_order``), so a line that fits two of them keeps its cluster; roots
        without a known place keep their restore order, after the others."""
        for bucket in self._generalized.values():
            bucket.sort(key=lambda root: (root.fingerprint not in places, places.get(root.fingerprint, 0)))

    def add(self, message: str, group: tuple[str, ...] = ()) -> Match:
        return self.add_tokens(tokenize(message), group)

    def add_tokens(self, tokens: list[str], group: tuple[str, ...] = ()) -> Match:
        key = (group, *tokens)
        node = self._strict.get(key)
        if node is not None:
            root = _root(node)
            root.size += 1
            return Match(root.fingerprint, root.text, created=False, changed=False)
        root = self._fitting_generalized(group, tokens)
        if root is not None:
            self._strict[key] = root
            root.size += 1
            return Match(root.fingerprint, root.text, created=False, changed=False)
        node = Template(self._fingerprint(group, tokens), group, list(tokens), order=self._next_order())
        self._strict[key] = node
        self._by_fingerprint[node.fingerprint] = node
        root = self._index(node, tokens)
        root.size += 1
        return Match(root.fingerprint, root.text, created=root is node, changed=root is not node)

    # ------------------------------------------------------------------ learning variable positions

    def _index(self, node: Template, tokens: list[str]) -> Template:
        """Register the node under each single-position skeleton; merge where a position proves variable."""
        root = _root(node)
        for index, token in enumerate(tokens):
            rest = tokens[:index] + tokens[index + 1:]
            if sum(1 for other in rest if other != WILDCARD) < self.min_constant:
                continue
            values = self._skeletons.setdefault((node.group, len(tokens), index, *rest), {})
            values.setdefault(token, node)
            if len(values) >= self.min_values or (len(values) >= 2 and WILDCARD in values):
                for other in values.values():
                    root = self._merge(root, _root(other))
        return root

    def _merge(self, first: Template, second: Template) -> Template:
        if first is second:
            return first
        keep, gone = (first, second) if first.order <= second.order else (second, first)
        gone.parent = keep
        self._aliases[gone.fingerprint] = keep.fingerprint
        keep.tokens = [a if a == b else WILDCARD for a, b in zip(keep.tokens, gone.tokens)]
        keep.size += gone.size
        bucket = self._generalized.setdefault((keep.group, len(keep.tokens)), [])
        if gone in bucket:
            bucket.remove(gone)
        if keep not in bucket:
            bucket.append(keep)
        return keep

    def _fitting_generalized(self, group: tuple[str, ...], tokens: list[str]) -> Template | None:
        for root in self._generalized.get((group, len(tokens)), ()):
            if root.parent is None and all(have == new or have == WILDCARD for have, new in zip(root.tokens, tokens)):
                return root
        return None

    def _next_order(self) -> int:
        self._order += 1
        return self._order

    def _fingerprint(self, group: tuple[str, ...], tokens: list[str]) -> str:
        seed = "\x1f".join((self.version, "\x1e".join(group), " ".join(tokens)))
        fingerprint = hashlib.sha256(seed.encode("utf-8", "surrogatepass")).hexdigest()[:12]
        while fingerprint in self._by_fingerprint:  # only on a hash collision
            fingerprint = hashlib.sha256((seed + fingerprint).encode()).hexdigest()[:12]
        return fingerprint


def _root(node: Template) -> Template:
    while node.parent is not None:
        if node.parent.parent is not None:
            node.parent = node.parent.parent  # path halving
        node = node.parent
    return node
