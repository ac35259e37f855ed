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


# An entry as the read stage sums it (prepare.py) and worker processes receive it: a plain tuple,
# which pickles in C (a NamedTuple calls Python code for each one). The Loki source builds these
# from a page directly, without a LogRecord for each entry.
Entry = tuple[int, str, dict[str, str]]  # timestamp, line, labels


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
_ONE_IN_FIRST_BIN = [1] + [0] * (HIST_BINS - 1)
APP_LABELS = ("app", "app_kubernetes_io_name", "service_name", "container", "job")


def app_label(labels: dict[str, str]) -> str | None:
    """The app a label set names: the first of APP_LABELS it has."""
    for name in APP_LABELS:
        if labels.get(name):
            return labels[name]
    return None


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

    def add(self, event: Event, app_label: str | None) -> None:
        """One entry taken whole (the sample Loki counting learns from, ``triage eval``): its text is a
        sample, its count goes to the first sparkline bin."""
        if event.line and len(self.samples) < SAMPLE_LINES and event.line not in self.samples:
            self.samples.append(event.line)
        message = event.message
        self.add_summed(1, event.ts_ns, event.ts_ns, _ONE_IN_FIRST_BIN,
                        [message] if len(message) <= MESSAGE_VALUE_CHARS else [], [(event.labels, 1, app_label)])

    def add_summed(self, count: int, first_ns: int, last_ns: int, hist: list[int], messages: list[str],
                   labels: list[tuple[dict[str, str], int, str | None]]) -> None:
        """Add entries summed elsewhere (``prepare.GroupSum``). ``messages``: their first distinct ones
        no longer than MESSAGE_VALUE_CHARS; ``labels``: each label set with its entries and its app
        label, in the order first seen."""
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
            _add_listed(self.namespaces, shown.get("namespace"), entries)
            _add_listed(self.apps, app, entries)
            _add_listed(self.pods, shown.get("pod"), entries)

    def absorb(self, other: ClusterWindow) -> None:
        """Take in a cluster that was merged into this one."""
        if other.count == 0:
            return
        self.add_summed(other.count, other.first_ns, other.last_ns, other.hist, other.messages, [])
        self.counted_in_loki += other.counted_in_loki
        for line in other.samples:
            if len(self.samples) < SAMPLE_LINES and line not in self.samples:
                self.samples.append(line)
        for mine, theirs in ((self.namespaces, other.namespaces), (self.apps, other.apps), (self.pods, other.pods)):
            for value, count in theirs.items():
                _add_listed(mine, value, count)


def _add_listed(values: dict[str, int], value: str | None, count: int) -> None:
    """Counts for a bounded number of distinct values (namespaces, apps, pods); the rest only add to
    "+N more"."""
    if value and (value in values or len(values) < LISTED_CAP):
        values[value] = values.get(value, 0) + count


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
