"""What the miner does with token lists (pure): where two templates differ, whether what was seen
at one place proves it variable, the template that covers both, and whether a line fits a template.

A template is a list of tokens; ``<*>`` (masking's WILDCARD) stands for one value, ``RUN`` for any
number of tokens. See miner.py for how these decisions are used.
"""

from __future__ import annotations

import re

from triage.cluster.masking import WILDCARD

# A run wildcard in a stored pattern; shown to people as "<*>" (``Template.text``).
RUN = "<**>"
# A token that names an exception or error type: Java and Kotlin (`org.hibernate.FooException:`),
# Python (`psycopg.OperationalError:`), JavaScript (`TypeError:`), .NET (`System.IO.IOException`). Two
# types are two problems even with the same message, so no position or run learned to vary takes one in.
_EXCEPTION_TYPE = re.compile(r"^[\[(]?(?:[A-Za-z_$][\w$]*\.)*[A-Z]\w*(?:Exception|Error)[\]):,;]*$")


def same(have: str, new: str) -> bool:
    return have == new or have == WILDCARD


def difference(old: list[str], new: list[str], min_constant: int) -> tuple[int, int, int] | None:
    """Where two templates differ, if in one place: one position of the same length, or one run between a
    common head and a common tail. Returns (start, end in old, end in new), or None."""
    if len(old) == len(new):
        first = -1
        for index, (a, b) in enumerate(zip(old, new)):
            if a != b and a != WILDCARD:
                if first >= 0:
                    break
                first = index
        else:
            if first < 0:
                return None
            if _EXCEPTION_TYPE.match(old[first]) or _EXCEPTION_TYPE.match(new[first]):
                return None
            constant = sum(1 for index, token in enumerate(old) if index != first and token != WILDCARD)
            return (first, first + 1, first + 1) if constant >= min_constant else None
    head = 0
    limit = min(len(old), len(new))
    while head < limit and same(old[head], new[head]):
        head += 1
    tail = 0
    while tail < limit - head and same(old[-1 - tail], new[-1 - tail]):
        tail += 1
    if head + tail >= limit:
        # The two overlap (a word of the run is also a word of the edge). A list of values at the end
        # keeps the whole head; otherwise keep the whole tail and let the run start earlier, so the
        # templates of one problem agree on where their run is.
        if all(value_or_key(token) for token in old[head:] + new[head:]):
            tail = 0
        else:
            # the whole common tail, not only what the head left: where the run starts must not depend on
            # the other template's length (a trace with 4, 5 or 6 of the same frames)
            while tail < limit and same(old[-1 - tail], new[-1 - tail]):
                tail += 1
            head = limit - tail - 1
            if tail == 0 and continuation(old, (new if len(new) > len(old) else old)[limit:]):
                head = limit  # one is the other and a continuation line more
        if head < 0:
            return None
    old_run, new_run = old[head:len(old) - tail], new[head:len(new) - tail]
    # Free text needs two fixed tokens before it and one after: "ciod: <one problem>: No such file"
    # and "ciod: <another>: No such file" are two problems that share only their edges. A run of
    # values (a list printed as words) or an optional line of a flattened record may end the message.
    may_end = (all(value_or_key(token) for token in old_run + new_run)
               or (continuation(old, old_run) and continuation(old, new_run)))
    if head < 2 or (tail == 0 and not may_end) or names_exception(old_run) or names_exception(new_run):
        return None
    constant = sum(1 for token in old[:head] + old[len(old) - tail:] if WILDCARD not in token)
    return (head, len(old) - tail, len(new) - tail) if constant >= min_constant else None


def run_extension(pattern: list[str], new: list[str], min_constant: int) -> tuple[int, int, int] | None:
    """How a template that does not fit a pattern with one run could: the run starting earlier or ending
    later. Returns (head kept, tail kept, end of the run in new), or None."""
    if pattern.count(RUN) != 1:
        return None
    run = pattern.index(RUN)
    head = 0
    while head < min(run, len(new)) and same(pattern[head], new[head]):
        head += 1
    tail = 0
    after = len(pattern) - run - 1
    while tail < min(after, len(new) - head - 1) and same(pattern[-1 - tail], new[-1 - tail]):
        tail += 1
    if head < 2 or tail < 1 or (head == run and tail == after):
        return None
    if names_exception(new[head:len(new) - tail]):
        return None  # what the wider run would take in
    constant = sum(1 for token in pattern[:head] + pattern[len(pattern) - tail:] if WILDCARD not in token)
    return (head, tail, len(new) - tail) if constant >= min_constant else None


def continuation(template: list[str], run: list[str]) -> bool:
    """A run that starts with the template's own line prefix (a value among its first two tokens: a time
    stamp, a pid) is a continuation line of a record flattened onto one line: PostgreSQL's optional
    ``STATEMENT:`` / ``HINT:`` lines after ``<time> [<pid>] ERROR: ...``."""
    if not run:
        return True
    prefix = template[:2]
    return len(run) > len(prefix) and run[:2] == prefix and any(WILDCARD in token for token in prefix)


def names_exception(run: list[str]) -> bool:
    return any(_EXCEPTION_TYPE.match(token) for token in run)


def value_or_key(token: str) -> bool:
    """A token that holds a value, or names one ("referrer:", "retry="): a run of them is a list of
    values or optional fields (nginx's ', referrer: "..."'), not words that name another problem."""
    return WILDCARD in token or (len(token) > 1 and token[-1] in ":=" and token[:-1].replace("_", "").isalnum())


def proven_position(values: dict, min_values: int) -> bool:
    """Whether the values seen at one place of templates of one length prove it variable: ``min_values``
    words at one position, or one word against a masked value; runs made of values only, twice."""
    runs = list(values)
    if len(runs) < 2:
        return False
    if all(len(run) == 1 for run in runs):
        return len(runs) >= min_values or any(run[0] == WILDCARD for run in runs)
    return all(value_or_key(token) for run in runs for token in run)


def proven_run(values: dict, min_values: int, root: list[str]) -> bool:
    """Runs keyed (template length, *run): ``min_values`` lengths of template (two lengths are often two
    problems: "for root from" / "for invalid user bob from"), or runs made of values only or of
    continuation lines (see continuation), twice."""
    if len(values) < 2:
        return False
    if all(value_or_key(token) for key in values for token in key[1:]):
        return True
    if all(continuation(root, list(key[1:])) for key in values):
        return True
    return len({key[0] for key in values}) >= min_values


def generalize(keep: list[str], gone: list[str]) -> list[str]:
    if len(keep) == len(gone) and RUN not in keep:
        return [a if a == b else WILDCARD for a, b in zip(keep, gone)]
    if RUN in keep and fits(keep, gone):
        return keep
    head, tail = edges(keep, gone)
    return keep[:head] + [RUN] + keep[len(keep) - tail:]


def edges(pattern: list[str], tokens: list[str]) -> tuple[int, int]:
    """How many tokens a template agrees on with another from its start and from its end, stopping at a run."""
    head = 0
    limit = min(len(pattern), len(tokens))
    while head < limit and same(pattern[head], tokens[head]) and pattern[head] != RUN:
        head += 1
    tail = 0
    while tail < limit - head and same(pattern[-1 - tail], tokens[-1 - tail]) and pattern[-1 - tail] != RUN:
        tail += 1
    return head, tail


def fits(pattern: list[str], tokens: list[str]) -> bool:
    if RUN not in pattern:
        return len(pattern) == len(tokens) and all(same(a, b) for a, b in zip(pattern, tokens))
    return fits_runs(pattern, 0, tokens, 0)


def covers(pattern: list[str], other: list[str]) -> bool:
    """Whether every line that fits ``other`` fits ``pattern``: a run of ``other`` only inside a run of
    ``pattern``, a value of ``other`` only where ``pattern`` has a value or a run."""
    if RUN not in other:
        return fits(pattern, other)
    return RUN in pattern and fits_runs(pattern, 0, other, 0)


def fits_runs(pattern: list[str], p: int, tokens: list[str], t: int) -> bool:
    while p < len(pattern) and pattern[p] != RUN:
        # a run among the tokens (another pattern's) fits only a run
        if t >= len(tokens) or tokens[t] == RUN or not same(pattern[p], tokens[t]):
            return False
        p += 1
        t += 1
    if p == len(pattern):
        return t == len(tokens)
    # pattern[p] is a run: it takes as few tokens as let the rest fit, none included (an optional part)
    return any(fits_runs(pattern, p + 1, tokens, end) for end in range(t, len(tokens) + 1))


def similarity(old: list[str], new: list[str]) -> float:
    if len(old) == len(new) and RUN not in old:
        return sum(1 for a, b in zip(old, new) if a == b or a == WILDCARD) / max(len(old), 1)
    head, tail = edges(old, new)
    return (head + tail) / max(len(old), len(new), 1)
