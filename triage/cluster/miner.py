"""An online template miner in the spirit of Drain, with stable fingerprints (pure).

Messages are masked and split into tokens, then bucketed by (group, token count, first
token). Within a bucket the most similar template wins when its similarity reaches
``similarity``; the template then generalises (differing positions become ``<*>``) and keeps
its fingerprint. Otherwise a new cluster is created, whose fingerprint is a hash of the
grouping version, the group and its first template: the same first line in the same group
always gets the same id, and a miner restored from the state keeps every id it had.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from triage.cluster.masking import MASKING_VERSION, WILDCARD, tokenize

MINER_VERSION = "d1"
DEFAULT_SIMILARITY = 0.6
_EXACT_CACHE_LIMIT = 200_000


@dataclass(slots=True)
class Template:
    fingerprint: str
    group: tuple[str, ...]
    tokens: list[str]
    size: int = 0

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
    spec = f"{MINER_VERSION}|{MASKING_VERSION}|{DEFAULT_SIMILARITY}|{[list(p) for p in group_by]}|{extra}"
    return hashlib.sha256(spec.encode()).hexdigest()[:8]


class Miner:
    def __init__(self, version: str, similarity: float = DEFAULT_SIMILARITY):
        self.version = version
        self.similarity = similarity
        self._buckets: dict[tuple, list[Template]] = {}
        self._by_fingerprint: dict[str, Template] = {}
        self._exact: dict[tuple, Template] = {}

    def __len__(self) -> int:
        return len(self._by_fingerprint)

    def templates(self) -> list[Template]:
        return list(self._by_fingerprint.values())

    def get(self, fingerprint: str) -> Template | None:
        return self._by_fingerprint.get(fingerprint)

    def restore(self, fingerprint: str, group: tuple[str, ...], template: str) -> None:
        """Load a known cluster (from the state) so that its id survives restarts."""
        node = Template(fingerprint, group, template.split(" ") if template else [])
        self._by_fingerprint[fingerprint] = node
        self._buckets.setdefault(_bucket_key(group, node.tokens), []).append(node)
        self._exact[(group, *node.tokens)] = node

    def add(self, message: str, group: tuple[str, ...] = ()) -> Match:
        tokens = tokenize(message)
        exact_key = (group, *tokens)
        node = self._exact.get(exact_key)
        if node is not None:
            node.size += 1
            return Match(node.fingerprint, node.text, created=False, changed=False)
        bucket = self._buckets.setdefault(_bucket_key(group, tokens), [])
        node = self._best(bucket, tokens)
        created = changed = False
        if node is None:
            node = Template(self._fingerprint(group, tokens), group, list(tokens))
            bucket.append(node)
            self._by_fingerprint[node.fingerprint] = node
            created = True
        else:
            for index, (have, new) in enumerate(zip(node.tokens, tokens)):
                if have != new and have != WILDCARD:
                    node.tokens[index] = WILDCARD
                    changed = True
        node.size += 1
        if len(self._exact) >= _EXACT_CACHE_LIMIT:
            self._exact.clear()
        self._exact[exact_key] = node
        return Match(node.fingerprint, node.text, created=created, changed=changed)

    def _best(self, bucket: list[Template], tokens: list[str]) -> Template | None:
        best, best_score = None, (-1.0, -1)
        if not tokens:
            return bucket[0] if bucket else None
        for node in bucket:
            same = wildcards = 0
            for have, new in zip(node.tokens, tokens):
                if have == new:  # a masked value under a wildcard counts as the same token
                    same += 1
                elif have == WILDCARD:
                    wildcards += 1
            score = (same / len(tokens), wildcards)
            if score > best_score:
                best, best_score = node, score
        if best is not None and best_score[0] >= self.similarity:
            return best
        return None

    def _fingerprint(self, group: tuple[str, ...], tokens: list[str]) -> str:
        seed = "\x1f".join((self.version, "\x1e".join(group), " ".join(tokens)))
        fingerprint = hashlib.sha256(seed.encode("utf-8", "surrogatepass")).hexdigest()[:12]
        while fingerprint in self._by_fingerprint:  # only on a hash collision
            fingerprint = hashlib.sha256((seed + fingerprint).encode()).hexdigest()[:12]
        return fingerprint


def _bucket_key(group: tuple[str, ...], tokens: list[str]) -> tuple:
    first = tokens[0] if tokens else ""
    return (group, len(tokens), first)
