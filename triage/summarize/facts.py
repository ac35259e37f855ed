"""Facts stay facts (pure): a number the model wrote that the card does not hold is removed.

A small model copies values out of samples and presents them as settings ("The context deadline
is set to 1796106252 seconds": a Unix time from the line) or invents them ("longer than the
expected 22469ms"). Counts, times and values are the digest's job, from the logs. So a number in
the model's text is kept only when it occurs in the template's constant part (``HTTP/1.1``,
``ERROR 1213``) or among the card's facts (its labels, app and namespace names, its count); a
sentence with any other number is dropped, and a field left empty falls back (the title to the
template, the others are left out).
"""

from __future__ import annotations

import re

from triage.cluster.masking import WILDCARD
from triage.summarize.schema import CardText

# A number as a word of its own (not the 2 of "http2" or "k8s"), with an optional unit: 30s, 1.5GiB, 403.
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:[.,:]\d+)*)(?:[A-Za-zµ%]+)?(?![\w])")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def numbers(text: str) -> set[str]:
    return {match.group(1).replace(",", "") for match in _NUMBER.finditer(text)}


def allowed_numbers(template: str, facts: list[str]) -> set[str]:
    """The numbers a card may mention: the template's constant parts and the card's own facts."""
    constant = " ".join(template.split(WILDCARD))
    found = numbers(constant)
    for fact in facts:
        found |= numbers(str(fact))
        found.add(str(fact))
    return found


def keep_facts(card: CardText, allowed: set[str]) -> tuple[CardText, list[str]]:
    """The card without sentences that state numbers it cannot know; and what was removed."""
    removed: list[str] = []
    fields = {}
    for name in CardText.model_fields:
        text = getattr(card, name)
        if name == "title":
            foreign = numbers(text) - allowed
            fields[name] = "" if foreign else text
            removed += sorted(foreign)
            continue
        kept = []
        for sentence in _SENTENCE.split(text):
            foreign = numbers(sentence) - allowed
            if foreign:
                removed += sorted(foreign)
            else:
                kept.append(sentence)
        fields[name] = " ".join(kept).strip()
    return CardText.model_construct(**fields), removed
