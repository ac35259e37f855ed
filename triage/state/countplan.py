"""Which entries of a window a run counts, and what it may mark counted afterwards (pure).

Counting is exact and idempotent: an entry is counted when its timestamp lies in a part of the
window that ``coverage`` does not hold, and its sub-range was fetched completely. Two more rules:

- **Settling** (``loki.settle``): Loki accepts out-of-order writes, and agents re-send what they
  buffered after a 429, well after ``loki.delay``. The part of a window younger than the settle
  period is therefore not marked covered; the next run reads it again. Entries counted there
  are remembered by identity (hash of stream labels, timestamp and line) until their part
  settles, so a re-read counts only the late ones.
- **Settling minutes counted by Loki** (``loki_tally.py``): a metric query gives counts, not
  identities. So for such a (cluster, minute) pair the state remembers only that it was counted
  by count (``loki_minutes``), and every later re-count of the pair while it settles, by Loki or by
  pulling the whole minute, adds what the minute holds now less what ``counts`` holds for it. That
  is exact because a minute's entries only grow while it settles: Loki accepts late and
  out-of-order writes (up to ``max_chunk_age / 2``, 1 h by default, behind a stream's newest line),
  ignores an exact duplicate (same stream, timestamp and line) rather than storing it twice (Loki
  PR #1519; queriers de-duplicate replicas the same way), and deletes nothing before its
  retention (or an explicit delete request), so a later count of the same minute and selector is
  never smaller for real. A smaller one (a querier that lost an ingester's part, a pattern that
  now sends some lines to another cluster) adds nothing: what was reported is never subtracted.
  The settle cut is on a minute, so a minute counted whole settles whole. Pairs counted by
  pulling stay counted by identity, as above; a window that starts inside a minute counted by
  count sees only part of it, so its late entries there are counted only as far as they exceed
  what the whole minute had (never twice; a later run reading the whole minute counts the rest).
- **Retention**: counts and coverage older than ``state.retention`` are pruned, so a re-run of
  such a window could not know what was counted; entries older than that are shown but never
  counted, and re-running an old window never changes a total.
"""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_right
from dataclasses import dataclass, field

from triage.records import Window


def entry_id(ts_ns: int, labels: dict[str, str], line: str) -> str:
    """An entry's identity across reads: Loki's own de-duplication key (stream, timestamp, line)."""
    seed = json.dumps(sorted(labels.items()), ensure_ascii=False) + f"\x1f{ts_ns}\x1f" + line
    return hashlib.blake2b(seed.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


@dataclass
class CountPlan:
    ranges: list[Window]
    covered: list[tuple[int, int]]  # sorted, disjoint
    settling: list[tuple[int, int]]  # spans of earlier runs still settling: sorted, disjoint
    counted_ids: set[str]  # entries already counted in those spans
    settle_from_ns: int  # entries at or after this are still settling
    count_from_ns: int  # entries before this (the retention cutoff) are never counted
    remembered: dict[int, list[tuple[str, int]]] = field(default_factory=dict)  # range -> (entry id, ts)
    uncounted_old: int = 0

    def __post_init__(self) -> None:
        self._starts = [r.from_ns for r in self.ranges]
        self._covered_starts = [start for start, _ in self.covered]
        self._settling_starts = [start for start, _ in self.settling]

    def range_of(self, ts_ns: int) -> int:
        return bisect_right(self._starts, ts_ns) - 1

    def decide(self, ts: int, labels: dict[str, str], line: str) -> tuple[bool, bool, str | None]:
        """Whether an entry counts, whether it is past the retention cutoff, and the identity to
        remember when it is counted while settling. No side effects: worker processes decide, the
        job's process keeps what ``note`` is told."""
        if self.covered and _inside(self.covered, self._covered_starts, ts):
            return False, False, None
        if ts < self.count_from_ns:
            return False, True, None
        in_old_span = bool(self.settling) and _inside(self.settling, self._settling_starts, ts)
        if not in_old_span and ts < self.settle_from_ns:
            return True, False, None
        identity = entry_id(ts, labels, line)
        if in_old_span and identity in self.counted_ids:
            return False, False, None
        return True, False, identity if ts >= self.settle_from_ns else None

    def plain_span(self) -> tuple[int, int]:
        """Where every entry counts and none is remembered (``decide`` is (True, False, None)): past the
        retention cutoff, before the settle cut, with nothing covered or still settling. Empty if
        anything is covered or settling (the caller asks ``decide``)."""
        if self.covered or self.settling:
            return 0, 0
        return self.count_from_ns, self.settle_from_ns

    def note(self, range_index: int, old: int, identities: list[tuple[str, int]] | None) -> None:
        """What decisions of entries of a sub-range leave: entries too old to count, identities counted
        while settling."""
        self.uncounted_old += old
        if identities:
            self.remembered.setdefault(range_index, []).extend(identities)

    def marks(self, failed: set[int]) -> tuple[list[tuple[int, int]], list[tuple[int, int]], list[tuple[str, int]]]:
        """For the sub-ranges fetched completely: the intervals now covered for good, the spans
        still settling, and the identities counted in those spans."""
        covered, settling, ids = [], [], []
        for index, part in enumerate(self.ranges):
            if index in failed:
                continue
            cut = min(max(part.from_ns, self.settle_from_ns), part.to_ns)
            if cut > part.from_ns:
                covered.append((part.from_ns, cut))
            if cut < part.to_ns:
                settling.append((cut, part.to_ns))
            ids.extend(self.remembered.get(index, ()))
        return covered, settling, ids


def _inside(intervals: list[tuple[int, int]], starts: list[int], ts_ns: int) -> bool:
    index = bisect_right(starts, ts_ns) - 1
    return index >= 0 and intervals[index][0] <= ts_ns < intervals[index][1]
