"""Which parts of a window a run fetches, and which the state answers (pure).

The nightly run's 24 h were already counted by the hourly runs: ``coverage`` holds those
intervals, ``counts`` holds their entries per cluster and minute, with the first and last
nanosecond counted in each minute (``covered18_state_answers``). A minute the state answers
must give exactly what fetching it would give, so it qualifies only when

- it lies wholly inside the window and inside one covered interval (a minute cut by the window's
  or the coverage's edge holds entries on both sides);
- it is not older than the retention cutoff (its counts may already be pruned);
- no edge of the digest's histogram (``HIST_BINS`` bins over the window) falls inside it, or its
  entries would have to be split between two bins;
- its counts carry their first/last nanosecond (rows written before the migration do not:
  ``without_minutes``).

Everything else is fetched as before, so the facts are the same as a full re-fetch's: counts,
first/last seen (exact to the nanosecond), statuses and histograms. What only lines can tell
(samples, what varies, pods) comes from the bounded sample every run keeps of the entries it
counts (``samples_slot_ns``), shown up to ``loki.sample_limit`` per cluster (``spread``). Why
kept samples rather than small Loki queries at the nightly: a query per cluster per slice of the
day costs hundreds of requests for hundreds of clusters, needs a line filter that selects exactly
one cluster's lines (Loki has none: the miner decides), and a file has no such query at all;
kept samples are already redacted, cost no request and serve every source.

Only sources that can fetch a part of a window cheaply (Loki) use this; a file has to be read
whole anyway, so a file or demo source is read whole and counted idempotently as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from triage.records import BUCKET_NS, HIST_BINS, ClusterWindow, Event, Window

DAY_NS = 86400 * 10**9


@dataclass(frozen=True, slots=True)
class KeptSample:
    """One redacted entry a run kept for a cluster (``samples`` table)."""

    fingerprint: str
    ts_ns: int
    line: str
    message: str
    namespace: str | None
    app: str | None
    pod: str | None


@dataclass(slots=True)
class StatePart:
    """One cluster's facts over the minutes the state answers."""

    fingerprint: str
    template: str
    labels: dict[str, str]
    group: tuple[str, ...]
    count: int = 0
    first_ns: int = 0
    last_ns: int = 0
    hist: list[int] = field(default_factory=lambda: [0] * HIST_BINS)
    pattern: str = ""  # the miner's form of the template, as the state keeps it


@dataclass(frozen=True, slots=True)
class CoverPlan:
    window: Window
    fetch: tuple[Window, ...]  # the parts to fetch, sorted and disjoint
    from_state: tuple[Window, ...]  # minute-aligned parts whose facts come from the state

    @property
    def state_ns(self) -> int:
        return sum(part.duration_ns for part in self.from_state)

    @property
    def fetch_ns(self) -> int:
        return sum(part.duration_ns for part in self.fetch)


def plan_cover(window: Window, covered: list[tuple[int, int]], *, count_from_ns: int,
               bins: int = HIST_BINS, bucket_ns: int = BUCKET_NS) -> CoverPlan:
    """Split ``window`` into what the state answers and what must be fetched.

    ``covered``: the source's coverage intervals overlapping the window (sorted, disjoint);
    ``count_from_ns``: the retention cutoff (counts before it may be pruned)."""
    low = max(window.from_ns, count_from_ns)
    edges = _bin_edges(window, bins)
    answered: list[Window] = []
    for start, end in covered:
        first = _ceil(max(start, low), bucket_ns)
        last = _floor(min(end, window.to_ns), bucket_ns)
        cuts = sorted({_floor(edge, bucket_ns) for edge in edges if first < edge < last and edge % bucket_ns})
        for cut in cuts:  # the minute holding a bin edge is fetched
            if cut > first:
                answered.append(Window(first, cut))
            first = max(first, cut + bucket_ns)
        if last > first:
            answered.append(Window(first, last))
    return CoverPlan(window, tuple(_complement(window, answered)), tuple(answered))


def without_minutes(plan: CoverPlan, minutes: list[int], bucket_ns: int = BUCKET_NS) -> CoverPlan:
    """The plan with these minutes (their starts) fetched instead: minutes whose counts were written
    before the state kept first/last nanoseconds, which the state can answer only to the minute."""
    if not minutes:
        return plan
    answered: list[Window] = []
    cuts = sorted(set(minutes))
    for part in plan.from_state:
        start = part.from_ns
        for minute in (m for m in cuts if part.from_ns <= m < part.to_ns):
            if minute > start:
                answered.append(Window(start, minute))
            start = minute + bucket_ns
        if start < part.to_ns:
            answered.append(Window(start, part.to_ns))
    return CoverPlan(plan.window, tuple(_complement(plan.window, answered)), tuple(answered))


def bucket_bin(window: Window, bucket_start_ns: int, bins: int = HIST_BINS) -> int:
    """The histogram bin of every entry in a minute the state answers (the same rule as
    ``ClusterWindow.add``'s callers: ``(ts - from) * bins // duration``)."""
    return (bucket_start_ns - window.from_ns) * bins // max(window.duration_ns, 1)


def samples_slot_ns(sample_limit: int) -> int:
    """The grid the kept samples are stored on: at most one sample per cluster per slot, whatever the
    runs' windows were. Four times finer than ``sample_limit`` a day, so a problem that lasted two
    hours still has a few to choose from (``spread``)."""
    return max(DAY_NS // (4 * max(sample_limit, 1)), BUCKET_NS)


def spread(samples: list[KeptSample], limit: int) -> list[KeptSample]:
    """Up to ``limit`` of a cluster's kept samples (oldest first), spread over the time it was seen:
    the first of each ``1/limit`` of its span, then the rest in order until ``limit``."""
    if len(samples) <= limit:
        return samples
    first, last = samples[0].ts_ns, samples[-1].ts_ns
    chosen: dict[int, KeptSample] = {}
    for sample in samples:
        chosen.setdefault((sample.ts_ns - first) * limit // (last - first + 1), sample)
    picked = set(map(id, chosen.values()))
    rest = [s for s in samples if id(s) not in picked][:limit - len(chosen)]
    return sorted([*chosen.values(), *rest], key=lambda s: s.ts_ns)


def describe(plan: CoverPlan, *, runs: int, fetched: int, clock, span) -> str | None:
    """What the digest says about where the counts came from, or None when the state answered nothing.
    ``clock``/``span`` format times (``digest.times``); passed in to keep this module free of digest code."""
    if not plan.from_state:
        return None
    first, last = plan.from_state[0].from_ns, plan.from_state[-1].to_ns
    by = f"{runs} earlier run{'s' if runs != 1 else ''}" if runs else "earlier runs"
    return (f"counts for {span(plan.state_ns)} of the window ({clock(first)}–{clock(last)} UTC) come from the "
            f"state, counted by {by}; {span(plan.fetch_ns)} fetched ({fetched} entries); the cards' samples "
            "are the ones those runs kept")


def _bin_edges(window: Window, bins: int) -> list[int]:
    """Where the bin of ``(ts - from) * bins // duration`` changes: the first ts of bins 1..bins-1."""
    duration = max(window.duration_ns, 1)
    return [window.from_ns + -(-k * duration // bins) for k in range(1, bins)]


def _complement(window: Window, parts: list[Window]) -> list[Window]:
    rest, start = [], window.from_ns
    for part in parts:
        if part.from_ns > start:
            rest.append(Window(start, part.from_ns))
        start = max(start, part.to_ns)
    if start < window.to_ns:
        rest.append(Window(start, window.to_ns))
    return rest


def _floor(value: int, step: int) -> int:
    return value - value % step


def _ceil(value: int, step: int) -> int:
    return -(-value // step) * step


def state_cluster(part: StatePart, samples: list[KeptSample], sample_limit: int) -> ClusterWindow:
    """A cluster's window facts from the state: count, first/last and histogram exact from the counts;
    samples, where it ran (namespaces, apps, pods) and what varies from its kept samples. ``messages``
    stays empty: the card then says its values come from samples, never that they are all."""
    described = ClusterWindow(part.fingerprint, part.template, part.labels, part.group)
    samples = spread(samples, sample_limit)
    for sample in samples:
        labels = {k: v for k, v in (("namespace", sample.namespace), ("pod", sample.pod)) if v}
        described.add(Event(sample.ts_ns, labels, None, sample.message, sample.line), sample.app)
    return ClusterWindow(
        part.fingerprint, part.template, part.labels, part.group, count=part.count, first_ns=part.first_ns,
        last_ns=part.last_ns, samples=_distinct([s.line for s in samples])[:sample_limit],
        namespaces=described.namespaces, apps=described.apps, pods=described.pods, hist=list(part.hist),
        pattern=part.pattern)


def join_state(fetched: ClusterWindow | None, from_state: ClusterWindow, sample_limit: int) -> ClusterWindow:
    """One cluster read partly from the source and partly from the state: the numbers add up exactly
    (the parts are disjoint); the state's samples, spread over the window, come first."""
    if fetched is None:
        return from_state
    samples = _distinct([*from_state.samples, *fetched.samples])[:sample_limit]
    fetched.absorb(from_state)
    fetched.samples = samples
    return fetched


def _distinct(lines: list[str]) -> list[str]:
    return list(dict.fromkeys(lines))
