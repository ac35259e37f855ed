"""An online template miner with stable fingerprints (pure).

1. Every message is masked (``masking.py``) into tokens; messages with the same tokens in the
   same group share a *strict template*. Masking turns every value (by the shape of its token)
   into ``<*>``, so most variable parts are gone before this step, and words are kept:
   "startup succeeded" and "shutdown succeeded" stay two problems.
2. A word position is learned to be variable when enough strict templates of one group and one
   length differ only there: ``min_values`` distinct words (default 3), or one word and one
   masked value, with at least ``min_constant`` (default 3) other tokens that are not wildcards.
3. A run of tokens is learned to be variable the same way when templates agree on at least one
   token before it and one after it (``min_constant`` constant tokens in all) and differ in a
   run of another length: free text that nobody quoted (``rejected query select a from b from
   user 7``), lists printed as words (``delete blk_1 blk_2 blk_3``), optional fields (nginx's
   ``, referrer: "..."``). One wildcard stands for the run; it matches any number of tokens.
4. A cardinality guard: a group that keeps minting templates (more than ``soft_limit`` roots)
   merges a new template into its most similar root when they share at least half of their
   tokens, and past ``hard_limit`` into the most similar root whatever it is, so no input makes
   one group grow without bound (``Template.variants`` counts what was merged so).

A cluster's fingerprint is a hash of the grouping version, its group and its first template,
fixed when it is created. When clusters merge, the oldest one's fingerprint survives and the
others become its aliases (``aliases()``), so counts, summaries and reported flags can follow.
A line that fits two generalized templates goes to the most specific one (fewest wildcards,
then the smallest fingerprint), which does not depend on the order they were made or restored
in, so a restart never moves a line to another cluster.

Memory grows with the clusters: one key per strict template, and tokens only for the roots.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field

from triage.cluster.masking import (MASKING_VERSION, WILDCARD, mark_hex_ids, template_text, template_tokens, tokenize,
                                    tokenize_marked)
from triage.cluster.patterns import (RUN, covers, difference, fits, generalize, proven_position, proven_run,
                                     run_extension, similarity)
from triage.shape import digit_shape

MINER_VERSION = "s3"
DEFAULT_MIN_VALUES = 3
DEFAULT_MIN_CONSTANT = 3
DEFAULT_SOFT_LIMIT = 200
DEFAULT_HARD_LIMIT = 500
SHAPE_CACHE_LIMIT = 8192  # 54% of the corpus's lines hit at this size, 57% at 50,000 (15 MiB more)


@dataclass(slots=True, eq=False)
class Template:
    fingerprint: str
    group: tuple[str, ...]
    tokens: list[str]
    size: int = 0
    order: int = 0  # creation order: the oldest cluster of a merge survives
    variants: int = 0  # templates merged in by the cardinality guard
    parent: Template | None = field(default=None, repr=False)
    wildcards: int = 0
    _text: tuple[list[str], str] | None = field(default=None, repr=False)  # (tokens, their text)
    _seen: Match | None = field(default=None, repr=False)  # what a line that finds this root gets back

    @property
    def text(self) -> str:
        """The template as people read it: one ``<*>`` for a value or a run of values. Asked for on
        every line that matches, so it is kept until the tokens are replaced (never changed in place)."""
        cached = self._text
        if cached is not None and cached[0] is self.tokens:
            return cached[1]
        text = template_text([WILDCARD if token == RUN else token for token in self.tokens])
        self._text = (self.tokens, text)
        return text

    def seen(self) -> Match:
        """The match of a line that neither made nor changed this root: asked for on nearly every line,
        so it is made once while the text stays (making a Match costs about a microsecond)."""
        text = self.text
        seen = self._seen
        if seen is None or seen.template is not text:
            seen = self._seen = Match(self.fingerprint, text, created=False, changed=False)
        return seen

    @property
    def pattern(self) -> str:
        """The template as the miner restores it (run wildcards kept apart)."""
        return template_text(self.tokens)


@dataclass(frozen=True, slots=True)
class Match:
    fingerprint: str
    template: str
    created: bool
    changed: bool


def grouping_version(group_by: Iterable[Iterable[str]], extra: str = "") -> str:
    """Hash of everything that decides which lines share a cluster."""
    spec = (f"{MINER_VERSION}|{MASKING_VERSION}|{DEFAULT_MIN_VALUES}|{DEFAULT_MIN_CONSTANT}|"
            f"{DEFAULT_SOFT_LIMIT}|{DEFAULT_HARD_LIMIT}|{[list(p) for p in group_by]}|{extra}")
    return hashlib.sha256(spec.encode()).hexdigest()[:8]


class ShapeTokens:
    """``tokenize`` with a cache by shape. Messages that differ only in their digits always get the
    same tokens (masking decides by shape, never by digit values; tests/test_properties.py checks
    it): their tokens are kept by the hash of the message with its digits zeroed, and masking runs
    once per shape. Request and order ids, ports and timings repeat a shape, and so do hex ids (UUIDs,
    trace ids, digests), which are keyed marked (``mark_hex_ids``); other ids with letters do not,
    and pay in full. The tokens are interned: the words of one log repeat, and the miner's
    strict keys must not hold a copy of every message's text."""

    def __init__(self, limit: int = SHAPE_CACHE_LIMIT):
        self._shapes: dict[int, list[str]] = {}
        self._limit = limit

    def __call__(self, message: str) -> list[str]:
        marked = mark_hex_ids(message)  # its tokens depend on where its hex ids are, not on their letters
        shape = hash(digit_shape(marked))
        tokens = self._shapes.get(shape)
        if tokens is None:
            tokens = [sys.intern(token) for token in tokenize_marked(marked)]
            if len(self._shapes) >= self._limit:
                self._shapes.clear()  # bounded by count, not by message length: the keys are hashes
            self._shapes[shape] = tokens
        return tokens


class Miner:
    def __init__(self, version: str, min_values: int = DEFAULT_MIN_VALUES, min_constant: int = DEFAULT_MIN_CONSTANT,
                 soft_limit: int = DEFAULT_SOFT_LIMIT, hard_limit: int = DEFAULT_HARD_LIMIT,
                 shape_cache: bool = True):
        self.version = version
        self._tokens_of = ShapeTokens() if shape_cache else tokenize
        self.min_values = min_values
        self.min_constant = min_constant
        self.soft_limit = soft_limit
        self.hard_limit = hard_limit
        self._strict: dict[tuple, Template] = {}  # (group, *tokens) -> the node first made for them
        self._by_fingerprint: dict[str, Template] = {}
        self._roots: dict[tuple[str, ...], dict[str, Template]] = {}  # group -> roots, oldest first
        # Roots by what a template they could merge with or fit must share: its first two tokens (a
        # variable position past them, a run, a fit), or its length and last token (a variable
        # position among the first two). A wildcard is indexed as "*". So a new template is compared
        # with the few roots it could relate to, not with the whole group.
        self._near: dict[tuple, dict[str, Template]] = {}
        # Evidence that a position or a run varies: (root fingerprint, where) -> {value: node}
        self._evidence: dict[tuple, dict[tuple[str, ...], Template]] = {}
        self._aliases: dict[str, str] = {}  # merged-away fingerprint -> surviving fingerprint (this session)
        self._order = 0

    def __len__(self) -> int:
        return sum(len(roots) for roots in self._roots.values())

    def templates(self) -> list[Template]:
        return [node for roots in self._roots.values() for node in roots.values()]

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
        """Load a known cluster (from the state, oldest first) so that its id survives restarts.
        ``template`` is the stored pattern (``Template.pattern``) or, from older states, the text."""
        tokens = [sys.intern(token) for token in template_tokens(template)]
        node = Template(fingerprint, group, tokens, order=self._next_order(), wildcards=_wildcards(tokens))
        self._by_fingerprint[fingerprint] = node
        self._strict.setdefault((group, *tokens), node)
        self._admit(node, restored=True)

    def _admit(self, node: Template, restored: bool = False) -> Template:
        """A new template joins its group: learned against the roots, merged or kept as a root of its own.
        A restored one only adds its evidence (so that what earlier runs saw counts): clusters that were
        apart before the restart stay apart until a new line proves otherwise."""
        root = self._learn(node, merge=not restored)
        if root is node:
            self._roots.setdefault(node.group, {})[node.fingerprint] = node
            self._index(node)
        return root

    def add(self, message: str, group: tuple[str, ...] = ()) -> Match:
        return self.add_tokens(self._tokens_of(message), group)

    def add_tokens(self, tokens: list[str], group: tuple[str, ...] = (), count: int = 1) -> Match:
        """Add ``count`` messages with these tokens (``tokenize``'s, or ``ShapeTokens``'s from another
        process). Sizes are only summed, never compared, so adding them at once is adding them one by one."""
        key = (group, *tokens)
        node = self._strict.get(key)
        if node is not None:
            root = _root(node)
            root.size += count
            return root.seen()
        # Keys keep interned tokens: the words of one log repeat, and the strict keys must not hold a
        # copy of every message's text (tokens from a worker process arrive as new strings).
        tokens = [sys.intern(token) for token in tokens]
        key = (group, *tokens)
        root = self._fitting_general(group, tokens)
        if root is not None:
            self._strict[key] = root
            root.size += count
            return root.seen()
        node = Template(self._fingerprint(group, tokens), group, tokens, order=self._next_order(),
                        wildcards=_wildcards(tokens))
        self._strict[key] = node
        self._by_fingerprint[node.fingerprint] = node
        root = self._admit(node)
        root.size += count
        return Match(root.fingerprint, root.text, created=root is node, changed=root is not node)

    # ------------------------------------------------------------------ the index of roots

    def _keys(self, group: tuple[str, ...], tokens: list[str]) -> list[tuple]:
        """Where a root is indexed: its head (first two tokens) and its length with its last token."""
        if RUN in tokens[:2]:
            head = ("*", "*") if tokens[0] == RUN else (_star(tokens[0]), "*")
        else:
            head = (_star(tokens[0]) if tokens else "", _star(tokens[1]) if len(tokens) > 1 else "")
        keys = [("h", group, *head)]
        if RUN not in tokens:
            keys.append(("t", group, len(tokens), _star(tokens[-1]) if tokens else ""))
        return keys

    def _index(self, node: Template) -> None:
        for key in self._keys(node.group, node.tokens):
            self._near.setdefault(key, {})[node.fingerprint] = node

    def _unindex(self, node: Template) -> None:
        for key in self._keys(node.group, node.tokens):
            bucket = self._near.get(key)
            if bucket is not None:
                bucket.pop(node.fingerprint, None)

    def _candidates(self, group: tuple[str, ...], tokens: list[str]) -> list[Template]:
        """The roots a template could fit or merge with, oldest first."""
        first = tokens[0] if tokens else ""
        second = tokens[1] if len(tokens) > 1 else ""
        last = tokens[-1] if tokens else ""
        keys = {("h", group, a, b) for a in (first, "*") for b in (second, "*")}
        keys |= {("t", group, len(tokens), b) for b in (last, "*")}
        found: dict[str, Template] = {}
        for key in keys:
            for fingerprint, root in self._near.get(key, {}).items():
                if root.parent is None:
                    found[fingerprint] = root
        return sorted(found.values(), key=lambda root: root.order)

    # ------------------------------------------------------------------ matching generalized roots

    def _fitting_general(self, group: tuple[str, ...], tokens: list[str]) -> Template | None:
        best = None
        for root in self._candidates(group, tokens):
            if root.wildcards and fits(root.tokens, tokens):
                if best is None or _specificity(root) < _specificity(best):
                    best = root
        return best

    # ------------------------------------------------------------------ learning what varies

    def _learn(self, node: Template, merge: bool = True) -> Template:
        """Compare a new template with the roots it could relate to; merge where a position or a run proves
        variable."""
        tokens = node.tokens
        candidates = self._candidates(node.group, tokens)
        for other in candidates:
            if other.parent is not None:
                continue
            if RUN in other.tokens:
                where = run_extension(other.tokens, tokens, self.min_constant)
                if where is None:
                    continue
                # A template that leaves a learned run's edge earlier: twice proves the run starts there.
                values = self._evidence.setdefault((other.fingerprint, "extends", *where[:2]), {})
                values.setdefault(tuple(tokens[where[0]:where[2]]), node)
                if merge and len(values) >= self.min_values - 1:
                    return self._merge_all(other, values)
                continue
            where = difference(other.tokens, tokens, self.min_constant)
            if where is None:
                continue
            start, other_end, end = where
            if len(tokens) == len(other.tokens):
                values = self._evidence.setdefault((other.fingerprint, start, len(other.tokens) - other_end), {})
                values.setdefault(tuple(other.tokens[start:other_end]), other)
                values.setdefault(tuple(tokens[start:end]), node)
                proven = proven_position(values, self.min_values)
            else:
                # A run of another length: its evidence is kept by where it starts and counted by the
                # lengths of the templates. Where a run repeats what surrounds it (a trace with 4, 5 or 6
                # of the same frames) its tokens against this root depend on the other template, so a
                # count of distinct runs would see two where three lengths came in.
                values = self._evidence.setdefault((other.fingerprint, start, "run"), {})
                values.setdefault((len(other.tokens), *other.tokens[start:other_end]), other)
                values.setdefault((len(tokens), *tokens[start:end]), node)
                proven = proven_run(values, self.min_values, other.tokens)
            if merge and proven:
                return self._merge_all(other, values)
        if merge and len(self._roots.get(node.group, ())) >= self.soft_limit:
            return self._guard(node, candidates)
        return node

    def _merge_all(self, root: Template, values: dict[tuple[str, ...], Template]) -> Template:
        for member in list(values.values()):
            root = self._merge(root, _root(member))
        # Roots the generalized template now covers whole are the same problem: every line of theirs
        # would fit it (a list written out in full beside the learned run that stands for it; a run
        # learned at another place of the same problem, which ingress-nginx's optional fields and
        # varying request give, depending on the order the lines came in).
        for other in list(self._roots.get(root.group, {}).values()):
            if other is not root and other.parent is None and covers(root.tokens, other.tokens):
                root = self._merge(root, other)
        return root

    def _guard(self, node: Template, candidates: list[Template]) -> Template:
        """A group past ``soft_limit`` roots: a new template joins the most similar root it shares at least
        half its tokens with; past ``hard_limit``, the most similar one whatever it shares."""
        best, best_score = None, -1.0
        for other in candidates:
            if other.parent is None:
                score = similarity(other.tokens, node.tokens)
                if score > best_score:
                    best, best_score = other, score
        roots = self._roots.get(node.group, {})
        if best_score >= 0.5:
            best.variants += 1
            return self._merge(best, node)
        if len(roots) < self.hard_limit:
            return node
        if best is None:
            best = next(iter(roots.values()))  # nothing in common with any root: the oldest takes it
        # Joined as it is: generalizing would turn that root into a catch-all for the whole group.
        best.variants += 1
        node.parent = best
        node.tokens, node._text = [], None
        self._aliases[node.fingerprint] = best.fingerprint
        return best

    def _merge(self, first: Template, second: Template) -> Template:
        if first is second:
            return first
        keep, gone = (first, second) if first.order <= second.order else (second, first)
        gone.parent = keep
        self._aliases[gone.fingerprint] = keep.fingerprint
        self._unindex(keep)
        self._unindex(gone)
        keep.tokens = generalize(keep.tokens, gone.tokens)
        keep.wildcards = _wildcards(keep.tokens)
        keep.size += gone.size
        keep.variants += gone.variants
        gone.tokens, gone._text = [], None  # only roots keep their tokens: memory grows with clusters
        self._roots.get(keep.group, {}).pop(gone.fingerprint, None)
        if keep.fingerprint in self._roots.get(keep.group, {}):
            self._index(keep)
        return keep

    def _next_order(self) -> int:
        self._order += 1
        return self._order

    def _fingerprint(self, group: tuple[str, ...], tokens: list[str]) -> str:
        seed = "\x1f".join((self.version, "\x1e".join(group), " ".join(tokens)))
        fingerprint = hashlib.sha256(seed.encode("utf-8", "surrogatepass")).hexdigest()[:12]
        while fingerprint in self._by_fingerprint:  # only on a hash collision
            fingerprint = hashlib.sha256((seed + fingerprint).encode()).hexdigest()[:12]
        return fingerprint


def _specificity(root: Template) -> tuple[int, int, str]:
    """Which of two fitting roots a line goes to: the one without a run, then fewer wildcards, then the
    smaller fingerprint (no order of creation or restore is involved)."""
    return (RUN in root.tokens, root.wildcards, root.fingerprint)


def _star(token: str) -> str:
    return "*" if token == WILDCARD or token == RUN else token


def _root(node: Template) -> Template:
    while node.parent is not None:
        if node.parent.parent is not None:
            node.parent = node.parent.parent  # path halving
        node = node.parent
    return node


def _wildcards(tokens: list[str]) -> int:
    return sum(1 for token in tokens if token == WILDCARD or token == RUN)
