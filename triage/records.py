"""Typed records passed between the pipeline stages.

Frozen slotted dataclasses (a NamedTuple for the one built per entry read); pydantic only at trust
boundaries (config).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from triage.timeparse import NS_PER_S


class Status(StrEnum):
    NEW = "new"
    REGRESSED = "regressed"
    SPIKING = "spiking"
    ONGOING = "ongoing"


STATUS_RANK = {Status.NEW: 0, Status.REGRESSED: 1, Status.SPIKING: 2, Status.ONGOING: 3}


class Schedule(StrEnum):
    MANUAL = "manual"
    HOURLY = "hourly"
    NIGHTLY = "nightly"


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open time range ``[from_ns, to_ns)``."""

    from_ns: int
    to_ns: int

    @property
    def duration_ns(self) -> int:
        return self.to_ns - self.from_ns

    def contains(self, ts_ns: int) -> bool:
        return self.from_ns <= ts_ns < self.to_ns

    def split(self, step_ns: int) -> list[Window]:
        """Consecutive sub-ranges of at most ``step_ns`` that cover the window exactly."""
        parts = []
        start = self.from_ns
        while start < self.to_ns:
            end = min(start + step_ns, self.to_ns)
            parts.append(Window(start, end))
            start = end
        return parts


@dataclass(frozen=True, slots=True)
class WindowPlan:
    """A run's window and what the digest must say about how it was chosen."""

    window: Window
    skipped: Window | None = None  # a gap longer than run.max_catchup that no run will read
    reread: Window | None = None  # the part of the previous run's window read again
    reread_reason: str | None = None  # "incomplete": that run was cut short; "settling": late entries


class LogRecord(NamedTuple):
    """One entry as a source delivers it. A NamedTuple, not a frozen dataclass like the records
    after it: a source builds one for every entry it reads, and a frozen dataclass's ``__init__``
    costs three times as much (1.0 vs 0.36 us)."""

    ts_ns: int
    labels: dict[str, str]
    line: str


@dataclass(frozen=True, slots=True)
class Event:
    """A record after extraction (and redaction): what the miner groups on."""

    ts_ns: int
    labels: dict[str, str]
    level: str | None
    message: str  # one line: the message field, or the signature of a stack trace
    line: str  # the whole (redacted) entry, for samples


@dataclass(frozen=True, slots=True)
class ClusterHit:
    fingerprint: str
    template: str
    group: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SourceStatus:
    name: str
    ok: bool
    lines: int
    error: str | None = None
    partial: bool = False
    pulled: int = 0  # entries fetched in this run (``lines`` also holds those the state or Loki counted)
    counted_in_loki: int = 0  # entries counted by Loki metric queries instead of being pulled
    queries: int = 0  # requests made to the source


BUCKET_NS = 60 * NS_PER_S  # counts are kept per cluster per minute


def bucket_of(ts_ns: int) -> int:
    return ts_ns - ts_ns % BUCKET_NS


SAMPLE_LINES = 3
HIST_BINS = 24
LISTED_VALUES = 10
MESSAGE_VALUES = 32  # distinct messages kept per cluster, for "what varies" (digest.varies)
MESSAGE_VALUE_CHARS = 240  # longer messages are not kept: memory stays ~8 KB a cluster
LISTED_CAP = 4 * LISTED_VALUES  # distinct namespaces/apps/pods counted per cluster


@dataclass(slots=True)
class ClusterWindow:
    """What one window says about one cluster. Mutable accumulator, bounded in size."""

    fingerprint: str
    template: str
    group_labels: dict[str, str]
    group: tuple[str, ...] = ()
    count: int = 0
    first_ns: int = 0
    last_ns: int = 0
    samples: list[str] = field(default_factory=list)
    namespaces: dict[str, int] = field(default_factory=dict)
    apps: dict[str, int] = field(default_factory=dict)
    pods: dict[str, int] = field(default_factory=dict)
    hist: list[int] = field(default_factory=lambda: [0] * HIST_BINS)  # counts across the window, for sparklines
    pattern: str = ""  # the miner's form of the template, restored after a restart
    variants: int = 0  # templates the cardinality guard merged into this one (said on the card)
    # The first MESSAGE_VALUES distinct (redacted) messages: while it is not full it holds every one, so the
    # values behind each <*> are exact ("user: 198, 125, 328 … 12 distinct"); once full, a lower bound.
    messages: list[str] = field(default_factory=list)
    counted_in_loki: int = 0  # of ``count``, the entries Loki counted by metric queries (triage/loki_tally.py)

    def add(self, event: Event, app_label: str | None, hist_bin: int = 0, sample: str | None = None) -> None:
        """``sample``: the entry's redacted text when the caller redacts it apart (``event.line`` otherwise).
        Called for every entry a run reads: the value counts are written out, not a helper call each."""
        ts = event.ts_ns
        self.hist[min(max(hist_bin, 0), HIST_BINS - 1)] += 1
        if self.count == 0 or ts < self.first_ns:
            self.first_ns = ts
        if ts > self.last_ns:
            self.last_ns = ts
        self.count += 1
        line = event.line if sample is None else sample
        if line and len(self.samples) < SAMPLE_LINES and line not in self.samples:
            self.samples.append(line)
        message = event.message
        if len(self.messages) < MESSAGE_VALUES and len(message) <= MESSAGE_VALUE_CHARS and message not in self.messages:
            self.messages.append(message)
        labels = event.labels
        # Counts for a bounded number of distinct values; the rest only add to "+N more".
        for values, value in ((self.namespaces, labels.get("namespace")), (self.apps, app_label),
                              (self.pods, labels.get("pod"))):
            if value:
                if value in values:
                    values[value] += 1
                elif len(values) < LISTED_CAP:
                    values[value] = 1

    def add_summed(self, count: int, first_ns: int, last_ns: int, hist: list[int], messages: list[str],
                   labels: list[tuple[dict[str, str], int, str | None]]) -> None:
        """Add entries summed elsewhere (``prepare.GroupSum``): what ``add`` does for each of them.
        ``labels``: each label set with its entries and its app label, in the order first seen."""
        if self.count == 0 or first_ns < self.first_ns:
            self.first_ns = first_ns
        if last_ns > self.last_ns:
            self.last_ns = last_ns
        self.count += count
        self.hist = [a + b for a, b in zip(self.hist, hist)]
        mine = self.messages
        for message in messages:
            if len(mine) >= MESSAGE_VALUES:
                break
            if message not in mine:
                mine.append(message)
        for shown, entries, app in labels:
            for values, value in ((self.namespaces, shown.get("namespace")), (self.apps, app),
                                  (self.pods, shown.get("pod"))):
                if value:
                    if value in values:
                        values[value] += entries
                    elif len(values) < LISTED_CAP:
                        values[value] = entries

    def absorb(self, other: ClusterWindow) -> None:
        """Take in a cluster that was merged into this one."""
        if other.count == 0:
            return
        if self.count == 0 or other.first_ns < self.first_ns:
            self.first_ns = other.first_ns
        self.last_ns = max(self.last_ns, other.last_ns)
        self.count += other.count
        self.counted_in_loki += other.counted_in_loki
        self.hist = [a + b for a, b in zip(self.hist, other.hist)]
        for line in other.samples:
            if len(self.samples) < SAMPLE_LINES and line not in self.samples:
                self.samples.append(line)
        for message in other.messages:
            if len(self.messages) < MESSAGE_VALUES and message not in self.messages:
                self.messages.append(message)
        for mine, theirs in ((self.namespaces, other.namespaces), (self.apps, other.apps), (self.pods, other.pods)):
            for value, count in theirs.items():
                if value in mine or len(mine) < LISTED_CAP:
                    mine[value] = mine.get(value, 0) + count


@dataclass(frozen=True, slots=True)
class History:
    """What the state knew about a cluster before this window (for detection)."""

    known: bool
    first_seen_ns: int | None = None
    last_seen_ns: int | None = None
    last_bucket_before_ns: int | None = None  # last sighting before the window (durable; see state/counting.py)
    first_bucket_ns: int | None = None  # oldest counted minute within the baseline lookback
    baseline_count: int = 0  # counts in the lookback before the window
    muted_until_ns: int | None = None
    mute_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    """A cluster of this window with its deterministic verdict."""

    cluster: ClusterWindow
    status: Status
    muted: bool
    first_seen_ns: int
    last_seen_ns: int
    reported: bool = False
    anchor_ns: int | None = None  # which comeback a new/regressed verdict is (detect.comeback_anchor)
