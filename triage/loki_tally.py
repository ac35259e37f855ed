"""Counting a window inside Loki when it holds more than ``loki.max_pull`` entries (issue 18).

A cluster that logs a million error lines an hour outgrows any one job's pull, and Loki itself is a
distributed engine that can count. So, for the whole minutes of a window the state does not answer
(its *interiors*: one or several sub-windows around what earlier runs covered):
1. one ``count_over_time`` range query says how many entries each minute of the window holds; when
   what the run would pull is at most ``loki.max_pull``: pull as always;
2. otherwise a bounded sample (per stream, from slices spread over the window) goes through the
   ordinary extract -> redact -> cluster path, which learns the templates;
3. each template's raw sample lines give a Loki pattern (``cluster/lokipattern.py``), kept only if it
   matches all of its cluster's sample lines and no other's;
4. Loki counts pattern i per minute and per ``group_by`` labels with
   ``|> p_i !> p_1 … !> p_{i-1}``: a line matching two patterns counts once, for the first;
5. only the residue ``!> p_1 … !> p_n`` (plus the partial minutes around the interiors) is pulled,
   and clusters as usual.
Minutes still settling (``loki.settle``) are counted too: a later run counts them again, and what a
re-count adds is the difference per cluster and minute (``tally.apply_merges``; state/countplan.py says
why that is exact).
Counts and residue partition the interiors, so every total is exact. Per-minute counts are exact too
(one range point per state bucket), and so are first/last seen (one limit-1 query each in the first
and last counted minute); the sparkline puts each minute in the bin of its middle.
Any error on the way (a Loki before 3.0 rejects ``|>``, a limit, a proxy refusing a long URL) means
pulling the window as today, with a warning in the digest; never a wrong count.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from triage.cluster import lokipattern
from triage.errors import LokiQueryError, SourceError
from triage.prepare import group_of
from triage.records import BUCKET_NS, HIST_BINS, ClusterWindow, Event, LogRecord, Window, app_label
from triage.source import RangeFailure
from triage.source.loki_count import CountUnavailable, LokiCounter
from triage.state.countplan import CountPlan
from triage.state.coverplan import CoverPlan, plan_cover

log = logging.getLogger(__name__)

MAX_PATTERN_CHARS = 24_000  # LogQL of the longest query's patterns: its URL stays well under Go's 1 MiB
SAMPLE_MAX = 20_000  # sample entries per window, at most (and at most a fifth of loki.max_pull)
RAW_LINES_PER_CLUSTER = 200  # sample lines a pattern is built and checked from
EVENTS_PER_CLUSTER = 20  # sample events a counted cluster keeps for its card
UNSAMPLED_PROBE = 20  # entries fetched to name the cluster of a pattern's hits in a group it was not learnt in

Cluster = Callable[[LogRecord], tuple]  # record -> (match, event, group, group_labels), as tally does it


@dataclass(slots=True)
class _Learnt:
    group: tuple[str, ...]
    group_labels: dict[str, str]
    template: str
    lines: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    def take(self, record: LogRecord, event: Event) -> None:
        if len(self.lines) < RAW_LINES_PER_CLUSTER:
            self.lines.append(record.line)
        if len(self.events) < EVENTS_PER_CLUSTER:
            self.events.append(event)


@dataclass(slots=True)
class LokiCounted:
    records: Iterator[LogRecord]  # what is still pulled: the residue and the partial edge minutes
    interiors: list[Window]
    learnt: dict[str, _Learnt]
    minutes: dict[str, dict[int, int]]  # fingerprint -> minute bucket -> entries counted by Loki
    patterns: int
    total: int  # entries of the interior, as Loki counted them first
    seen: dict[str, tuple[int, int]] = field(default_factory=dict)  # fingerprint -> exact first, last seen

    def merge_into(self, tally, source_key: str, plan: CountPlan, failed: set[int], window: Window) -> int:
        """Add Loki's counts of the sub-ranges that did not fail; returns the entries added."""
        added = 0
        for fingerprint, points in self.minutes.items():
            kept = {b: n for b, n in points.items() if plan.range_of(b) not in failed and n}
            if not kept:
                continue
            learnt = self.learnt[fingerprint]
            cluster = ClusterWindow(fingerprint, learnt.template, dict(learnt.group_labels), learnt.group)
            for event in learnt.events:
                cluster.add(event, app_label(event.labels))
            count = sum(kept.values())
            first, last = min(kept), max(kept)
            if len(kept) == len([n for n in points.values() if n]) and fingerprint in self.seen:
                cluster.first_ns, cluster.last_ns = self.seen[fingerprint]
            else:  # a failed sub-range took some minutes away: first/last seen to the minute
                cluster.first_ns, cluster.last_ns = first, last + BUCKET_NS - 1
            cluster.count = cluster.counted_in_loki = count
            cluster.hist = [0] * HIST_BINS
            for bucket, n in kept.items():
                middle = bucket + BUCKET_NS // 2 - window.from_ns
                cluster.hist[min(max(middle * HIST_BINS // max(window.duration_ns, 1), 0), HIST_BINS - 1)] += n
            # the cards' namespace and app: every counted entry is in the group's own
            namespace = learnt.group_labels.get("namespace")
            if namespace:
                cluster.namespaces = {namespace: count}
            app = app_label(learnt.group_labels)
            if app:
                cluster.apps = {app: count}
            mine = tally.clusters.get(fingerprint)
            if mine is None:
                tally.clusters[fingerprint] = cluster
            else:
                mine.absorb(cluster)
            for bucket, n in kept.items():
                # a whole minute of one cluster as Loki counts it now: what it adds is the difference to
                # what the state counted there already (a minute an earlier run left settling)
                key = (fingerprint, source_key, bucket)
                tally.observed[key] = tally.observed.get(key, 0) + n
                if bucket + BUCKET_NS > plan.settle_from_ns:
                    tally.by_count.add(key)  # still settling: the next run re-counts it by count, not identity
            added += count
        return added


def interiors_of(parts: tuple[Window, ...], count_from_ns: int) -> list[Window]:
    """The whole minutes of the parts to fetch (what the state does not answer) newer than the retention
    cutoff: the sub-windows Loki may count. Settling minutes are in: a re-count adds the difference."""
    interiors = []
    for part in parts:
        start = max(_ceil_minute(part.from_ns), _ceil_minute(count_from_ns))
        end = part.to_ns - part.to_ns % BUCKET_NS
        if end - start >= BUCKET_NS:
            interiors.append(Window(start, end))
    return interiors


def count_in_loki(cfg, source, window: Window, cover: CoverPlan, covered: list[tuple[int, int]],
                  count_from_ns: int, cluster: Cluster) -> tuple[CoverPlan, LokiCounted | None, list[str]]:
    """What to fetch, Loki's counts (None: pull as before) and digest notes. ``cover`` is the plan that
    keeps the digest's histogram exact (it also fetches covered minutes that hold a bin edge); when that
    would pull more than ``loki.max_pull``, the state answers every whole covered minute instead (the
    sparkline is then right to the minute) and Loki counts the rest."""
    if not cover.fetch:
        return cover, None, []
    first, last = cover.fetch[0].from_ns, cover.fetch[-1].to_ns
    hull = Window(first - first % BUCKET_NS, _ceil_minute(last))  # what the plan fetches, in whole minutes
    try:
        counter = LokiCounter(source)
        totals = counter.minute_totals(hull)
    except (LokiQueryError, SourceError) as err:
        # a malformed query or an unreachable Loki: the pull that follows says so in Loki's own words
        log.info("%s: not asking Loki to count this window: %s", source.name, err)
        return cover, None, []
    except CountUnavailable as err:
        # A parse error is the selector itself (the pull then fails and says so, exit 2) or a Loki older
        # than 2.3, which has no `offset` and pulls every entry: say so, the run may read more than it should.
        log.warning("%s: Loki could not count the window: %s", source.name, err)
        # Loki's own words: this query has no pattern filter, so _reason's reading of a parse error as
        # "no |>" would be wrong here
        return cover, None, [f"⚠ {source.name}: Loki could not say how many entries the window holds "
                             f"({err}); every entry was pulled."]
    if _entries(totals, cover.fetch) <= cfg.loki.max_pull:
        return cover, None, []
    coarse = plan_cover(window, covered, count_from_ns=count_from_ns, bins=1)
    interiors = interiors_of(coarse.fetch, count_from_ns)
    held = _entries(totals, coarse.fetch)
    if held <= cfg.loki.max_pull or not interiors:
        return coarse, None, []
    total = _entries(totals, tuple(interiors))
    ranges = [r for part in coarse.fetch for r in source.plan(part)]
    try:
        counted = _count(cfg, source, counter, coarse.fetch, interiors, total, cluster, ranges)
    except CountUnavailable as err:
        reason = _reason(str(err))
        log.warning("%s: %d entries, more than loki.max_pull, but Loki cannot count them: %s", source.name, held, err)
        return coarse, None, [f"⚠ {source.name}: the window holds {held:,} entries, more than loki.max_pull "
                              f"({cfg.loki.max_pull:,}), but Loki could not count them ({reason}); every entry "
                              "was pulled instead, so the counts are exact but the run read them all."]
    return coarse, counted, [f"{source.name}: {held:,} entries, more than loki.max_pull ({cfg.loki.max_pull:,}): "
                             f"Loki counted {counted.patterns} templates itself; the rest was pulled."]


def _entries(totals: dict[int, int], parts: tuple[Window, ...] | list[Window]) -> int:
    """Entries of every minute that ``parts`` touch (a partial minute counts whole: an upper bound)."""
    minutes = {m for part in parts for m in range(part.from_ns - part.from_ns % BUCKET_NS, part.to_ns, BUCKET_NS)}
    return sum(totals.get(m, 0) for m in minutes)


def _count(cfg, source, counter: LokiCounter, parts: tuple[Window, ...], interiors: list[Window], total: int,
           cluster: Cluster, ranges: list[Window]) -> LokiCounted:
    positions = cfg.group_positions()
    learnt: dict[str, _Learnt] = {}

    def learn(record: LogRecord) -> str:
        match, event, group, group_labels = cluster(record)
        entry = learnt.get(match.fingerprint)
        if entry is None:
            entry = learnt[match.fingerprint] = _Learnt(group, dict(group_labels), match.template)
        else:
            entry.template = match.template
        entry.take(record, event)
        return match.fingerprint

    counter.probe_patterns(interiors[-1])
    for record in counter.sample(interiors, min(SAMPLE_MAX, max(cfg.loki.max_pull // 5, 100))):
        if any(interior.contains(record.ts_ns) for interior in interiors):
            learn(record)
    safe = lokipattern.choose({fp: (e.group, e.lines) for fp, e in learnt.items()}, max_chars=MAX_PATTERN_CHARS)
    if not safe:
        raise CountUnavailable("no template of the sample has a pattern that is safe on it")
    quoted = [lokipattern.quote(p.pattern) for p in safe]
    queries = [f"{source.query} |> {q}" + "".join(f" !> {earlier}" for earlier in quoted[:i])
               for i, q in enumerate(quoted)]
    by = tuple(dict.fromkeys(name for position in positions for name in position))
    jobs = [(i, query, interior) for i, query in enumerate(queries) for interior in interiors]
    results = counter.parallel(lambda job: counter.minute_counts(job[1], by, job[2]), jobs)
    per_query: list[dict[tuple, tuple[dict, dict[int, int]]]] = [{} for _ in queries]
    for (i, _, _), series in zip(jobs, results):
        for labels, points in series:
            per_query[i].setdefault(tuple(sorted(labels.items())), (labels, {}))[1].update(points)
    minutes: dict[str, dict[int, int]] = {}
    edges: list[tuple[str, str, int, int]] = []  # (fingerprint, series query, first minute, last minute)
    for pattern, query, series in zip(safe, queries, per_query):
        for labels, points in series.values():
            group, _ = group_of(labels, positions)
            exact = _series_query(counter, query, labels, by)
            fingerprint = pattern.clusters.get(group) or _name_unsampled(counter, learn, exact, labels, points)
            into = minutes.setdefault(fingerprint, {})
            for bucket, n in points.items():
                into[bucket] = into.get(bucket, 0) + n
            if points:
                edges.append((fingerprint, exact, min(points), max(points)))
    seen = _first_last(counter, edges)
    residue = source.query + "".join(f" !> {q}" for q in quoted)
    pulls, inside = [], iter(interiors)
    interior = next(inside, None)
    for part in parts:  # time order: the part's edges with the query, its interiors' residue
        start = part.from_ns
        while interior is not None and interior.from_ns < part.to_ns:
            if interior.from_ns > start:
                pulls.append((source.query, Window(start, interior.from_ns)))
            pulls.append((residue, interior))
            start = interior.to_ns
            interior = next(inside, None)
        if part.to_ns > start:
            pulls.append((source.query, Window(start, part.to_ns)))
    records = _pull(counter, pulls, source, ranges)
    return LokiCounted(records, interiors, learnt, minutes, len(safe), total, seen)


def _series_query(counter: LokiCounter, query: str, labels: dict[str, str], by: tuple[str, ...]) -> str:
    """``query`` (the query and a pattern chain) for exactly one series of a ``sum by (by)`` result."""
    exact = counter.stream_selector({name: labels.get(name, "") for name in by}, base=counter.selector)
    chain = query[len(counter.source.query):] if query.startswith(counter.source.query) else ""
    return f"{exact} {counter.pipeline}".strip() + chain


def _first_last(counter: LokiCounter, edges: list[tuple[str, str, int, int]]) -> dict[str, tuple[int, int]]:
    """Exact first and last seen of each counted cluster: the oldest entry of its first counted minute and
    the newest of its last, one request each (limit 1, forward and backward), per series."""
    def ends(edge: tuple[str, str, int, int]) -> tuple[str, int | None, int | None]:
        fingerprint, query, first, last = edge
        oldest = counter.entries(query, Window(first, first + BUCKET_NS), 1)
        newest = counter.entries(query, Window(last, last + BUCKET_NS), 1, backward=True)
        return fingerprint, oldest[0].ts_ns if oldest else None, newest[-1].ts_ns if newest else None

    seen: dict[str, tuple[int, int]] = {}
    for fingerprint, oldest, newest in counter.parallel(ends, edges):
        if oldest is None or newest is None:
            raise CountUnavailable("Loki counted entries in a minute it then returned none of")
        was = seen.get(fingerprint)
        seen[fingerprint] = (min(oldest, was[0]), max(newest, was[1])) if was else (oldest, newest)
    return seen


def _name_unsampled(counter: LokiCounter, learn, exact: str, labels: dict[str, str], points: dict[int, int]) -> str:
    """A pattern also matched lines of a group it was not learnt in: fetch a few of them (from the first
    minute it counted) and let the miner name their cluster. If they do not all land in one cluster,
    Loki's count cannot be attributed."""
    first = min((b for b, n in points.items() if n), default=min(points, default=0))
    found = {learn(r) for r in counter.entries(exact, Window(first, first + BUCKET_NS), UNSAMPLED_PROBE)}
    if len(found) != 1:
        raise CountUnavailable(f"a pattern matched {len(found)} templates in {labels}")
    return found.pop()


def _pull(counter: LokiCounter, parts: list[tuple[str, Window]], source, ranges: list[Window]) -> Iterator[LogRecord]:
    """Fetch each part in time order; a failed part fails the window's sub-ranges (``ranges``) it overlaps,
    so tally drops what they delivered (and Loki's counts of them) like any failed sub-range."""
    source.notes.failures = []
    for query, part in parts:
        sub = counter.sibling(query)
        reported = 0
        for record in sub.fetch(part):
            yield record
            if len(sub.notes.failures) > reported:
                reported = _report(sub.notes.failures, reported, ranges, source)
        _report(sub.notes.failures, reported, ranges, source)
        source.notes.skipped_outside_window += sub.notes.skipped_outside_window


def _report(failures: list[RangeFailure], reported: int, ranges: list[Window], source) -> int:
    for failure in failures[reported:]:
        for part in ranges:
            if part.from_ns < failure.window.to_ns and part.to_ns > failure.window.from_ns:
                if not any(f.window == part for f in source.notes.failures):
                    source.notes.failures.append(RangeFailure(part, failure.error))
    return len(failures)


def _reason(error: str) -> str:
    if "unexpected >" in error or "unexpected IDENTIFIER" in error:
        return "this Loki has no pattern filters |> (they came with Loki 3.0)"
    if "414" in error or "431" in error:
        return "a query with the templates' patterns was refused as too long"
    return error


def _ceil_minute(ns: int) -> int:
    return ns if ns % BUCKET_NS == 0 else ns + BUCKET_NS - ns % BUCKET_NS
