"""Redaction's pre-filter (pure): which rules can change a text, found by two native scans.

Like gitleaks' keyword pre-filter (an Aho-Corasick pass over the lower-cased fragment for the
rules' keywords, then only the rules whose keywords are there), every rule here names words
without which it cannot match: a format rule's triggers, a word that every secret key name
holds, a prose word. One Aho-Corasick pass finds them all; most log lines hold none and cost
that pass and one regex scan for a card's digits; a line that holds some runs only the rules
whose words (and what must follow them) it holds.

A gate may only ever let through more than its rule matches, never less: the tests hold the
fast path to every rule over the whole text (redact.redact_text_unfiltered). Nothing here is a
cache: every text is scanned.
"""

from __future__ import annotations

import re

import ahocorasick_rs

from triage.redact_rules import FORMATS, may_hold_card

# The gates look at the lower-cased text. Four non-ASCII letters equal ASCII ones under re's
# IGNORECASE (dotted and dotless i, long s, the Kelvin sign) that lower() keeps apart: folded, an
# IGNORECASE rule's trigger is seen wherever the rule matches ("Baſic <credential>"). Folding keeps
# the length (U+0130 is the one letter whose lower case has two characters), so a position in the
# gate text is the same position in the text.
_ODD_CASE = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})


def gate_text(text: str) -> str:
    return text.lower() if text.isascii() else text.translate(_ODD_CASE).lower()


# Key-name triggers (lower case): a pair can only be secret if its key contains one of these
# (secret_verdict's secret words, tests/test_redact_prefilter.py checks it for every name form).
KEY_TRIGGERS = ("secret", "passw", "pwd", "pass", "token", "credential", "creds", "key", "session", "sessid", "sid",
                "cookie", "auth", "signature", "sig", "jwt", "sas", "csrf", "xsrf", "salt")
# A secret-ish word in prose followed by a value that looks random: "refresh token 9f8e7d...",
# "using key 3q2+7w...", "session id 9f8e...". (word, the rest of the word as a regex): the prose
# rule and its gate are built from this one list.
PROSE_WORDS = (("secret", ""), ("passw", "(?:or)?d"), ("pwd", ""), ("token", ""), ("credential", "s?"), ("key", ""),
               ("signature", ""), ("session", "(?:[ _-]?id)?"), ("cookie", ""), ("auth", ""))
PROSE_VALUE = r"(\s+(?:is\s+|was\s+)?)([^\s\"'<>,;()\[\]{}]{16,})"


# Letters by their frequency in log text (the Kubernetes corpus), most frequent first.
_FREQUENT = "ertoascinpdulmfhgbykwvxjqz"


def trie(words: dict[str, str]) -> str:
    """One regex matching any of ``words``, each followed by its tail regex, factored by common
    prefixes: re tries one branch per distinct next character instead of every word at every
    position, several times faster than a flat alternation or a loop of substring tests. re tries
    a group's branches in order, one comparison each: the letters most frequent in log text go
    first, so a common letter finds its branch (or its end) early (a quarter less time than
    alphabetical order on the Kubernetes corpus). A word with an empty tail ends the match there
    (the shortest word where one is a prefix of another), since the gates only ask whether one is present."""
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
        chars = sorted((char for char in node if char), key=lambda char: (_FREQUENT.find(char) % 100, char))
        branches = sorted(tails) + [re.escape(char) + emit(node[char]) for char in chars]
        return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"

    return emit(root)


# After a key word: the rest of the key and a separator (an assignment), or a key so long that the
# bounded look-ahead cannot see its end (let through: the pair scan decides). Bounded, because in
# a hostile run like "tokentoken..." an unbounded [\w.-]* after each word makes the scan quadratic
# (90 s for 50 kB).
_ASSIGNMENT_TAIL = r"(?:[\w.-]{0,100}(?:\\?[\"']?[ \t]*(?:=>|[:=])|%3d)|[\w.-]{100})"
_PROSE_GATE_TAIL = r"\s+(?:is\s+|was\s+)?[^\s\"'<>,;()\[\]{}]{16}"
PROSE_GATE = re.compile(trie({word: rest + _PROSE_GATE_TAIL for word, rest in PROSE_WORDS}))
_FORMAT_GATES = {index: re.compile("|".join(word + tail for word, tail in rule.prefilter))
                 for index, rule in enumerate(FORMATS) if rule.prefilter}


def _words() -> tuple[list[str], list]:
    # Every word a rule needs (format triggers and the words of their gates, key-name triggers,
    # prose words), each with what must follow it (None: nothing), as one regex matched at its end.
    words: dict[str, set[str]] = {}
    for rule in FORMATS:
        for trigger in rule.triggers if rule.prefilter is None else ():
            words.setdefault(trigger, set()).add("")
        for word, tail in rule.prefilter or ():
            words.setdefault(word, set()).add(tail)
    for trigger in KEY_TRIGGERS:
        words.setdefault(trigger, set()).add(_ASSIGNMENT_TAIL)
    for word, rest in PROSE_WORDS:
        words.setdefault(word, set()).add(rest + _PROSE_GATE_TAIL)
    listed = sorted(words)
    return listed, [None if "" in words[word] else re.compile("(?:" + "|".join(sorted(words[word])) + ")").match
                    for word in listed]


# One Aho-Corasick pass (the Rust aho-corasick crate: a DFA with SIMD pre-filters) finds every
# occurrence of every word, overlapping ones included, at a few instructions a character: a fifth
# of what one trie regex costs, whose engine re-enters its matcher at every character that starts
# a word (half of all letters). Only where a word is found does its tail regex run, at its end.
_WORDS, _TAILS = _words()
_FINDER = ahocorasick_rs.AhoCorasick(_WORDS, matchkind=ahocorasick_rs.MatchKind.Standard)
# The format rules each word opens (the words of a rule's gate are its triggers).
_OPENS = [tuple(index for index, rule in enumerate(FORMATS) if word in rule.triggers) for word in _WORDS]


def word_hits(gate: str) -> list[tuple[int, int, int]]:
    """(word index, start, end) of every word in ``gate``."""
    return _FINDER.find_matches_as_indexes(gate, overlapping=True)


def may_change(gate: str, hits: list[tuple[int, int, int]] | None = None) -> bool:
    """False only when no rule (format, key name, prose, card) can match the text of ``gate``."""
    for index, _, end in word_hits(gate) if hits is None else hits:
        tail = _TAILS[index]
        if tail is None or tail(gate, end) is not None:
            return True
    return may_hold_card(gate)


def format_rules(gate: str, context: str, after: int = -1, hits: list[tuple[int, int, int]] | None = None) -> list[int]:
    """The indexes into FORMATS (in order, past ``after``) of the format rules whose triggers and
    gates ``gate`` holds (``hits``: its word_hits): the only ones that can match its text. A
    contextual rule is held when its words are in ``context`` (the gate text of the entry as it
    came), whatever an earlier rule has masked since (a JWT glued to "AWS_SECRET_ACCESS_KEY=" takes
    the words with it)."""
    held = {rule for index, _, _ in (word_hits(gate) if hits is None else hits) for rule in _OPENS[index]
            if rule > after and not FORMATS[rule].context}
    held.update(index for index in _CONTEXTUAL if index > after and any(w in context for w in FORMATS[index].triggers))
    return sorted(index for index in held if index not in _FORMAT_GATES or _FORMAT_GATES[index].search(gate))


_CONTEXTUAL = tuple(index for index, rule in enumerate(FORMATS) if rule.context)
KEY_WORD = re.compile(trie({trigger: "" for trigger in KEY_TRIGGERS}))
