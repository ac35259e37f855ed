"""Prepare: a chunk of entries -> what grouping and counting need, summed up (pure).

For every entry: extract, redact for grouping, tokens (cached by shape), its group, and whether it
is counted (``state/countplan.py``). Entries with the same tokens, group and sub-range are then
summed into one ``GroupSum``: how many, when, per minute, a few of their lines and messages. A
night of error logs is a few dozen such groups a thousand entries, so what is left to the job's
process, which must see everything in order (the miner, the clusters, the counts), is one step a
group rather than one an entry. The chunks are summed in worker processes in a big run
(``triage/workers.py``) and inline otherwise, by the same code, so the result never depends on
where a chunk was summed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from triage.cluster.miner import ShapeTokens
from triage.extract import level_and_message
from triage.records import BUCKET_NS, HIST_BINS, MESSAGE_VALUE_CHARS, MESSAGE_VALUES, SAMPLE_LINES, Entry, Window
from triage.redact import redact_text, redacted_labels
from triage.state.countplan import CountPlan

# Distinct raw lines a group offers a chunk as samples: the job redacts them only while its cluster
# has fewer than SAMPLE_LINES, and two lines that differ only in a secret redact alike.
SAMPLE_CANDIDATES = 2 * SAMPLE_LINES


# Messages whose redaction and tokens are kept, by their exact text (at most this long, this many):
# the message of most structured entries is a constant string (a JSON msg, a logfmt msg and err), half
# the entries of the demo's night and a quarter of the adversarial corpus's repeat one exactly.
MEMO_MESSAGES = 4096
MEMO_MESSAGE_CHARS = 256


class Preparer:
    """One entry's message and tokens (extract + redact-for-grouping + masking), with a cache of tokens
    by shape. Not its level: the digest reads a cluster's level from its samples, and a line with no
    level label or field would pay for a scan of its text.

    What redaction and masking make of a message is kept by its exact text: a memo of pure functions
    of that text, never of its shape, so it returns what redact_text returns for it, secret or not."""

    def __init__(self, redacting: bool, emails: bool, ips: bool):
        self.options = (redacting, emails, ips)
        self._tokens = ShapeTokens()
        self._by_message: dict[str, tuple[str, list[str]]] = {}

    def __call__(self, line: str, labels: dict[str, str]) -> tuple[str, list[str]]:
        _, message = level_and_message(line, labels, with_level=False)
        known = self._by_message.get(message)
        if known is None:
            redacting, emails, ips = self.options
            redacted = redact_text(message, emails=emails, ips=ips) if redacting else message
            known = (redacted, self._tokens(redacted))
            if len(message) <= MEMO_MESSAGE_CHARS:
                if len(self._by_message) >= MEMO_MESSAGES:
                    self._by_message.clear()
                self._by_message[message] = known
        return known


@dataclass(frozen=True, slots=True)
class ChunkRules:
    """What summing a chunk needs to know of the run: sent once to each worker process."""

    window: Window
    plan: CountPlan  # which entries count; its side effects (old entries, ids to remember) are the job's
    only_ranges: bool  # entries outside plan.ranges are skipped (a proxy that ignores start/end)
    slot_ns: int  # the kept-sample grid (coverplan.samples_slot_ns); 0 keeps none
    positions: tuple[tuple[str, ...], ...]  # the group_by label positions
    redacting: bool
    emails: bool
    ips: bool


# A group's entries in one minute, all of them and those the count plan counts: (bucket, entries,
# counted, first and last ns of the counted ones, entries past the retention cutoff (shown, never
# counted), the (entry id, ts) counted while settling or None). Plain tuples, unpacked where used.
MinuteSum = tuple[int, int, int, int, int, int, list[tuple[str, int]] | None]
# The first counted entry of a group in a sample slot, a kept sample if the job counts its minute:
# (slot, bucket, ts, index in the chunk (the job has the line), message, labels).
KeptSum = tuple[int, int, int, int, str, dict[str, str]]


class GroupSum(NamedTuple):
    """The entries of a chunk with the same tokens and group in one sub-range."""

    range_index: int
    group: tuple[str, ...]
    tokens: list[str]
    count: int
    first_ns: int
    last_ns: int
    hist: list[int]
    messages: list[tuple[int, str]]  # the first MESSAGE_VALUES distinct, by index in the chunk
    lines: list[int]  # the first SAMPLE_CANDIDATES distinct raw lines, by index in the chunk
    labels: list[tuple[dict[str, str], int]]  # each label set (redacted) with its entries, in order
    minutes: list[MinuteSum]
    kept: list[KeptSum]


class ChunkSum(NamedTuple):
    # What a worker sends back is plain tuples (``wire``): pickling a NamedTuple or a dataclass calls
    # Python code for every object, a plain tuple does not (4 us an object, and there are hundreds).
    groups: list[tuple]  # GroupSum fields, in the order of their first entry; ``groups_of`` names them
    pulled: int  # entries read (inside the ranges asked for)
    skipped: int  # entries outside the ranges asked for

    def groups_of(self) -> list[GroupSum]:
        return [GroupSum._make(group) for group in self.groups]


class _Summing:
    """A group while its chunk is summed (mutable; becomes a GroupSum tuple)."""

    __slots__ = ("range_index", "group", "tokens", "count", "first_ns", "last_ns", "hist", "messages",
                 "seen_messages", "lines", "seen_lines", "labels", "minutes", "kept")

    def __init__(self, range_index: int, group: tuple[str, ...], tokens: list[str], ts: int):
        self.range_index, self.group, self.tokens = range_index, group, tokens
        self.count, self.first_ns, self.last_ns = 0, ts, ts
        self.hist = [0] * HIST_BINS
        self.messages: list[tuple[int, str]] = []
        self.seen_messages: set[str] = set()
        self.lines: list[int] = []
        self.seen_lines: set[str] = set()
        self.labels: dict[int, list] = {}  # id -> [labels, entries]
        self.minutes: dict[int, list] = {}  # bucket -> [entries, counted, first, last, old, ids]
        self.kept: dict[int, tuple] = {}  # slot -> (bucket, ts, index, message, labels)

    def wire(self) -> tuple:
        return (self.range_index, self.group, self.tokens, self.count, self.first_ns, self.last_ns, self.hist,
                self.messages, self.lines, [tuple(pair) for pair in self.labels.values()],
                [(bucket, *minute) for bucket, minute in self.minutes.items()],
                [(slot, *kept) for slot, kept in self.kept.items()])


class Summer:
    """Sums chunks up under one run's rules; keeps its caches (tokens by shape, redacted labels and
    groups by label set) from chunk to chunk."""

    def __init__(self, rules: ChunkRules):
        self.rules = rules
        self._prepare = Preparer(rules.redacting, rules.emails, rules.ips)
        # by the identity of an entry's labels dict (the entries of a stream share one): the dict, its
        # redacted form (the same dict unless a value changed) and its group; the cache holds the dict,
        # so its id is not reused by another while kept
        self._labels: dict[int, tuple[dict[str, str], dict[str, str], tuple[str, ...]]] = {}

    def _shown(self, labels: dict[str, str]) -> tuple[dict[str, str], dict[str, str], tuple[str, ...]]:
        rules = self.rules
        if len(self._labels) >= 4096:
            self._labels.clear()
        shown = redacted_labels(labels, emails=rules.emails, ips=rules.ips) if rules.redacting else labels
        known = self._labels[id(labels)] = (labels, shown, group_of(shown, rules.positions)[0])
        return known

    def __call__(self, entries: list[Entry]) -> ChunkSum:
        rules = self.rules
        plan, ranges, slot_ns = rules.plan, rules.plan.ranges, rules.slot_ns
        from_ns, to_ns = rules.window.from_ns, rules.window.to_ns
        duration = (to_ns - from_ns) or 1
        prepare, by_labels, decide, range_of = self._prepare, self._labels, plan.decide, plan.range_of
        plain_from, plain_to = plan.plain_span()
        groups: dict[tuple, _Summing] = {}
        pulled = skipped = 0
        for position, (ts, line, labels) in enumerate(entries):
            index = range_of(ts)
            if rules.only_ranges and (index < 0 or not ranges[index].from_ns <= ts < ranges[index].to_ns):
                skipped += 1
                continue
            pulled += 1  # every entry read counts as pulled, inside the window or not
            if not from_ns <= ts < to_ns:
                continue
            message, tokens = prepare(line, labels)
            known = by_labels.get(id(labels))
            if known is None or known[0] is not labels:
                known = self._shown(labels)
            _, shown, group = known
            # by the tokens, not by the shape cache's list: the groups of a chunk never depend on what
            # the cache of the process that sums it holds
            key = (index, group, tuple(tokens))
            summing = groups.get(key)
            if summing is None:
                summing = groups[key] = _Summing(index, group, tokens, ts)
            summing.count += 1
            if ts < summing.first_ns:
                summing.first_ns = ts
            elif ts > summing.last_ns:
                summing.last_ns = ts
            summing.hist[(ts - from_ns) * HIST_BINS // duration] += 1
            if (len(summing.messages) < MESSAGE_VALUES and len(message) <= MESSAGE_VALUE_CHARS
                    and message not in summing.seen_messages):
                summing.seen_messages.add(message)
                summing.messages.append((position, message))
            if len(summing.lines) < SAMPLE_CANDIDATES and line not in summing.seen_lines:
                summing.seen_lines.add(line)
                summing.lines.append(position)
            label_set = summing.labels.get(id(shown))
            if label_set is None:
                summing.labels[id(shown)] = [shown, 1]
            else:
                label_set[1] += 1
            bucket = ts - ts % BUCKET_NS
            minute = summing.minutes.get(bucket)
            if minute is None:
                minute = summing.minutes[bucket] = [0, 0, ts, ts, 0, None]
            minute[0] += 1
            if plain_from <= ts < plain_to:  # the usual entry: counted, nothing to remember
                counted, old, identity = True, False, None
            else:
                counted, old, identity = decide(ts, labels, line)
            if counted:
                if minute[1] == 0:
                    minute[2] = minute[3] = ts
                elif ts < minute[2]:
                    minute[2] = ts
                elif ts > minute[3]:
                    minute[3] = ts
                minute[1] += 1
                if identity is not None:
                    if minute[5] is None:
                        minute[5] = []
                    minute[5].append((identity, ts))
                if slot_ns:
                    slot = ts - ts % slot_ns
                    if slot not in summing.kept:
                        summing.kept[slot] = (bucket, ts, position, message, shown)
            elif old:
                minute[4] += 1
        return ChunkSum([summing.wire() for summing in groups.values()], pulled, skipped)


def group_of(labels: dict[str, str], positions: Sequence[tuple[str, ...]]) -> tuple[tuple[str, ...], dict[str, str]]:
    """The group an entry's labels put it in, and the labels that name it."""
    values = []
    named = {}
    for position in positions:
        for name in position:
            value = labels.get(name)
            if value:
                values.append(value)
                named[name] = value
                break
        else:
            values.append("")
    return tuple(values), named
