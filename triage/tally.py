"""The read stage: one source's entries -> extract -> redact -> cluster, into a ``Tally``.

What the stages accumulate over all sources is bounded by the number of clusters. Clusters,
counts and coverage come only from sub-ranges fetched completely; which entries are counted
is decided by ``state/countplan.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from triage.cluster.miner import Miner
from triage.config import Config
from triage.errors import LokiQueryError, SourceError
from triage.extract import extract
from triage.prepare import ChunkRules, GroupSum, group_of
from triage.records import BUCKET_NS, SAMPLE_LINES, ClusterWindow, Entry, LogRecord, SourceStatus, Window, app_label
from triage.redact import redact, redact_text
from triage.source import RangeFailure, Source
from triage.startup import worker_count
from triage.state.countplan import CountPlan
from triage.state.coverplan import (CoverPlan, KeptSample, describe, join_state, plan_cover, samples_slot_ns,
                                    state_cluster, without_minutes)
from triage.state.db import StateStore
from triage.timeparse import timedelta_to_ns
from triage.workers import pages_of, summed

MAX_SAMPLE_TRIES = 64


@dataclass(slots=True)
class Tally:
    """What the stages accumulate over all sources, bounded by the number of clusters."""

    clusters: dict[str, ClusterWindow] = field(default_factory=dict)
    counts: dict[tuple[str, str, int], int] = field(default_factory=dict)
    coverage: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    settling: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    entry_ids: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    # (fingerprint, source, minute) -> first and last nanosecond counted in it
    edges: dict[tuple[str, str, int], tuple[int, int]] = field(default_factory=dict)
    # (source, fingerprint, sample slot) -> the first counted entry of the slot, kept for later runs' cards
    samples: dict[tuple[str, str, int], KeptSample] = field(default_factory=dict)
    from_state: set[str] = field(default_factory=set)  # clusters whose counts partly came from the state
    answered: list[tuple[str, CoverPlan, int]] = field(default_factory=list)  # (source, plan, entries pulled)
    lines: int = 0
    uncounted_old: int = 0
    loki_notes: list[str] = field(default_factory=list)  # how Loki counted (or could not count) a big window
    # Minutes counted by count rather than by identity (state/countplan.py): (fingerprint, source, minute) ->
    # the cluster's entries in the whole minute now, what the state had counted there before, and the keys
    # still settling whose next re-count is by count too.
    observed: dict[tuple[str, str, int], int] = field(default_factory=dict)
    levels: dict[tuple[str, str, int], int] = field(default_factory=dict)
    by_count: set[tuple[str, str, int]] = field(default_factory=set)


def apply_merges(miner: Miner, tally: Tally) -> None:
    """Clusters that merged during the run (a word position proved variable) become one, under the
    oldest fingerprint, with the miner's generalised template."""
    merged: dict[str, ClusterWindow] = {}
    for fingerprint, cluster in tally.clusters.items():
        root = miner.get(fingerprint)
        survivor = root.fingerprint if root else fingerprint
        if survivor in merged:
            merged[survivor].absorb(cluster)
        else:
            cluster.fingerprint = survivor
            merged[survivor] = cluster
        if root is not None:
            merged[survivor].template = root.text
            merged[survivor].pattern = root.pattern
            merged[survivor].variants = root.variants
    tally.clusters = merged
    counts: dict[tuple[str, str, int], int] = {}
    for (fingerprint, source, bucket), count in tally.counts.items():
        key = (miner.resolve(fingerprint), source, bucket)
        counts[key] = counts.get(key, 0) + count
    tally.counts = counts
    edges: dict[tuple[str, str, int], tuple[int, int]] = {}
    for (fingerprint, source, bucket), span in tally.edges.items():
        _widen(edges, (miner.resolve(fingerprint), source, bucket), span)
    tally.edges = edges
    samples: dict[tuple[str, str, int], KeptSample] = {}
    for (source, fingerprint, slot), sample in tally.samples.items():
        _keep_first(samples, (source, miner.resolve(fingerprint), slot), sample)
    tally.samples = samples
    _add_recounts(miner, tally)
    tally.from_state = {miner.resolve(fp) for fp in tally.from_state}
    for fingerprint in tally.from_state:  # its messages are not all of the window's: say "in N samples"
        if fingerprint in tally.clusters:
            tally.clusters[fingerprint].messages = []


def _add_recounts(miner: Miner, tally: Tally) -> None:
    """What the minutes counted by count add: per cluster (merged ones under their survivor) and minute,
    what the whole minute holds now less what the state counted there before, never below zero (see
    ``state/countplan.py``: a minute's entries only grow while it settles)."""
    def resolved(items) -> dict[tuple[str, str, int], int]:
        out: dict[tuple[str, str, int], int] = {}
        for (fingerprint, source, bucket), n in items:
            key = (miner.resolve(fingerprint), source, bucket)
            out[key] = out.get(key, 0) + n
        return out

    levels = resolved(tally.levels.items())
    for key, n in resolved(tally.observed.items()).items():
        added = n - levels.get(key, 0)
        if added > 0:
            tally.counts[key] = tally.counts.get(key, 0) + added
    tally.by_count = {(miner.resolve(fp), source, bucket) for fp, source, bucket in tally.by_count}
    tally.observed, tally.levels = {}, {}


def read_source(cfg: Config, source: Source, window: Window, state: StateStore, miner: Miner,
                 tally: Tally, now_ns: int) -> SourceStatus:
    """Read one source into the tally. Clusters, counts and coverage come only from sub-ranges
    fetched completely: what a failed sub-range delivered is dropped (a re-run reads it whole)."""
    key = source.coverage_key
    covered = state.coverage(key, window.from_ns, window.to_ns)
    count_from_ns = now_ns - timedelta_to_ns(cfg.state.retention)
    cover, ranges = _what_to_fetch(source, window, covered, count_from_ns, state)
    settle_ns = getattr(source, "settle_ns", 0)
    requests_before = sum(getattr(source, "requests_by_status", {}).values())
    slot_ns = samples_slot_ns(cfg.loki.sample_limit)
    buffers: dict[int, _RangeBuffer] = {}
    positions = cfg.group_positions()
    redacting, emails, ips = cfg.redact.enabled, cfg.redact.emails, cfg.redact.ips

    def sample_of(line: str) -> str:
        return redact_text(line, emails=emails, ips=ips) if redacting else line

    failures: list[RangeFailure]
    lines = pulled = 0
    workers = worker_count(cfg.run.workers)

    def sampled(record: LogRecord):
        """record -> (match, event, group, group labels) for the sample Loki counting learns from
        (bounded): its events become the counted clusters' cards, so the entry's text is redacted too."""
        nonlocal pulled
        pulled += 1
        event = extract(record)
        if redacting:
            event = redact(event, emails=emails, ips=ips)
        group, group_labels = group_of(event.labels, positions)
        return miner.add(event.message, group), event, group, group_labels

    counted = None
    if getattr(source, "max_pull", None) is not None and cover is not None:
        # A Loki window too big to pull: Loki counts the known templates of what the state does not answer.
        from triage.loki_tally import count_in_loki

        cover, counted, notes = count_in_loki(cfg, source, window, cover, covered, count_from_ns, sampled)
        ranges = [r for part in cover.fetch for r in source.plan(part)]
        tally.loki_notes.extend(notes)
    settle_from_ns = now_ns - settle_ns if settle_ns else window.to_ns
    if settle_ns:  # on a minute: Loki counts whole minutes, and a minute it counted settles whole
        settle_from_ns -= settle_from_ns % BUCKET_NS
    plan = CountPlan(
        ranges=ranges, covered=covered,
        # read even when loki.settle is 0 now: spans an earlier setting left must still count once
        settling=state.settle_spans(key, window.from_ns, window.to_ns),
        counted_ids=state.settled_ids(key, window.from_ns, window.to_ns),
        # a source without a settle period (a file, the demo) is final as read, even past `now`
        settle_from_ns=settle_from_ns,
        count_from_ns=count_from_ns)
    # (cluster, minute) counted by count: settling minutes Loki counted in earlier runs, and what it counts now
    by_count = state.counted_by_count(key, window.from_ns, window.to_ns)
    if counted:
        by_count |= {(miner.resolve(fp), bucket) for fp, points in counted.minutes.items()
                     for bucket, n in points.items() if n}

    def flush(upto: int, failed: set[int]) -> int:
        kept = 0
        for index in [i for i in buffers if i < upto]:
            buffer = buffers.pop(index)
            if index not in failed:
                kept += buffer.merge_into(tally, key)
        return kept

    rules = ChunkRules(window, plan, only_ranges=not counted and cover is not None, slot_ns=slot_ns,
                       positions=tuple(positions), redacting=redacting, emails=emails, ips=ips)
    try:
        fetch_pages = getattr(source, "fetch_pages", None)  # Loki: pages of entries, no record for each
        if counted:
            pages = pages_of(counted.records)
        elif fetch_pages is not None:
            pages = fetch_pages(window, ranges if cover is not None else None)
        elif cover is not None:
            pages = pages_of(source.fetch(window, ranges))
        else:
            pages = pages_of(source.fetch(window))
        for entries, part in summed(pages, rules, workers):
            pulled += part.pulled
            if part.skipped:  # outside the sub-ranges asked for (a proxy that ignores start/end): see ChunkRules
                source.notes.skipped_outside_window += part.skipped
            groups = part.groups_of()
            matches = [miner.add_tokens(group.tokens, group.group, group.count) for group in groups]
            for group, match, texts in zip(groups, matches, _texts_in_order(groups, matches)):
                index = group.range_index
                if index not in buffers:
                    lines += flush(index, {plan.range_of(f.window.from_ns) for f in source.notes.failures})
                    buffers[index] = _RangeBuffer(slot_ns=slot_ns)
                # minutes of this cluster counted by count: all of its entries there are counted together
                recounted = set()
                if by_count:
                    resolved = miner.resolve(match.fingerprint)
                    recounted = {minute[0] for minute in group.minutes if (resolved, minute[0]) in by_count}
                buffers[index].add(match, group, texts, entries, positions, sample_of, plan, count_from_ns, recounted)
        failures = list(source.notes.failures)
    except (SourceError, LokiQueryError) as err:
        failures = [RangeFailure(r, err) for r in ranges]
        source.notes.failures = failures  # the exit code is read from the notes (_source_exit_code)
    failed = {plan.range_of(f.window.from_ns) for f in failures}
    lines += flush(len(ranges) + 1, failed)
    in_loki = counted.merge_into(tally, key, plan, failed, window) if counted else 0
    lines += in_loki
    recounted = {bucket for _, source_key, bucket in tally.observed if source_key == key}
    tally.levels.update(state.counted_in_minutes(key, recounted))
    covered, settling, ids = plan.marks(failed)
    tally.coverage.setdefault(key, []).extend(covered)
    tally.settling.setdefault(key, []).extend(settling)
    tally.entry_ids.setdefault(key, []).extend(ids)
    tally.uncounted_old += plan.uncounted_old
    if cover is not None and cover.from_state:
        lines += _take_from_state(cfg, state, key, window, cover, tally)
        tally.answered.append((source.name, cover, pulled))
    tally.lines += lines
    figures = {"pulled": pulled, "counted_in_loki": in_loki,
               "queries": sum(getattr(source, "requests_by_status", {}).values()) - requests_before}
    if failures:
        first = failures[0].error
        detail = str(first)
        if len(failures) > 1 and len(failures) < len(ranges):
            detail += f" ({len(failures)} of {len(ranges)} sub-ranges failed)"
        return SourceStatus(source.name, ok=False, lines=lines, error=detail, partial=lines > 0, **figures)
    return SourceStatus(source.name, ok=True, lines=lines, **figures)


def _what_to_fetch(source: Source, window: Window, covered: list[tuple[int, int]], count_from_ns: int,
                   state: StateStore) -> tuple[CoverPlan | None, list[Window]]:
    """The sub-ranges to fetch, and the plan of what the state answers (None: the whole window is read).
    A source that fetches part of a window cheaply (Loki) skips what the state answers (state/coverplan.py);
    a file or the demo is read whole, and its covered parts are simply not counted again."""
    if not getattr(source, "skips_covered", False):
        return None, source.plan(window)
    cover = plan_cover(window, covered, count_from_ns=count_from_ns)
    cover = without_minutes(cover, state.minutes_without_edges(source.coverage_key, cover.from_state))
    return cover, [r for part in cover.fetch for r in source.plan(part)]


def answered_notes(state: StateStore, tally: Tally, now_ns: int) -> list[str]:
    """What the digest says where the state answered part of a source's window."""
    from triage.digest.times import clock, span

    notes = []
    for name, cover, pulled in tally.answered:
        text = describe(cover, runs=state.runs_overlapping(cover.from_state, now_ns), fetched=pulled,
                        clock=clock, span=span)
        if text:
            notes.append(f"{name}: {text}.")
    return notes


def _take_from_state(cfg: Config, state: StateStore, key: str, window: Window, cover: CoverPlan, tally: Tally) -> int:
    """The clusters of the minutes the state answers, joined with what was fetched; returns their entries."""
    parts = state.state_parts(key, window, cover.from_state)
    limit = cfg.loki.sample_limit
    kept = state.kept_samples(key, window, set(parts))
    for fingerprint, part in parts.items():
        tally.clusters[fingerprint] = join_state(tally.clusters.get(fingerprint),
                                                 state_cluster(part, kept.get(fingerprint, []), limit), limit)
        tally.from_state.add(fingerprint)
    return sum(part.count for part in parts.values())


@dataclass(slots=True)
class _RangeBuffer:
    """One sub-range's clusters and counts, held until the sub-range is known to be complete."""

    clusters: dict[str, ClusterWindow] = field(default_factory=dict)
    counts: dict[tuple[str, int], int] = field(default_factory=dict)
    lines: int = 0
    tried: dict[str, set[int]] = field(default_factory=dict)  # cluster -> raw lines tried as samples
    slot_ns: int = 0  # the sample grid (coverplan.samples_slot_ns); 0 keeps no samples
    edges: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)
    samples: dict[tuple[str, int], KeptSample] = field(default_factory=dict)
    observed: dict[tuple[str, int], int] = field(default_factory=dict)  # (cluster, minute) counted by count

    def add(self, match, summed: GroupSum, texts: tuple[list[str], list[int]], entries: list[Entry],
            positions: list[tuple[str, ...]], sample_of, plan: CountPlan, count_from_ns: int,
            recounted: set[int]) -> None:
        """A chunk's entries of one group, now known to be in ``match``'s cluster (``entries``: the
        chunk, which the sum names lines of). ``texts``: the messages and candidate sample lines of
        the chunk's groups of this cluster, in the order of the entries (``_texts_in_order``), with
        the first of those groups. ``recounted``: the minutes whose whole count these entries add to
        (minutes counted by count); the entries of the other minutes are counted by identity, as the
        count plan decided."""
        messages, candidates = texts
        fingerprint = match.fingerprint
        labels = [(shown, count, app_label(shown)) for shown, count in summed.labels]
        cluster = self.clusters.get(fingerprint)
        if cluster is None:
            cluster = self.clusters[fingerprint] = ClusterWindow(
                fingerprint, match.template, group_of(labels[0][0], positions)[1], summed.group)
        elif match.changed:
            cluster.template = match.template
        if len(cluster.samples) < SAMPLE_LINES:
            # Only a line kept as a sample is redacted whole; one tried already (a repeated line) is
            # not redacted again, and after MAX_SAMPLE_TRIES distinct ones (lines that differ only in
            # a secret redact alike) the cluster keeps the samples it has.
            tried = self.tried.setdefault(fingerprint, set())
            for position in candidates:
                if len(cluster.samples) >= SAMPLE_LINES or len(tried) >= MAX_SAMPLE_TRIES:
                    break
                raw_line = entries[position][1]
                key = hash(raw_line)
                if key not in tried:
                    tried.add(key)
                    sample = sample_of(raw_line)
                    if sample and sample not in cluster.samples:
                        cluster.samples.append(sample)
        cluster.add_summed(summed.count, summed.first_ns, summed.last_ns, summed.hist, messages, labels)
        self.lines += summed.count
        for bucket, entries_in_minute, counted, first, last, old, ids in summed.minutes:
            key = (fingerprint, bucket)
            if bucket in recounted:
                if bucket >= count_from_ns:
                    self.observed[key] = self.observed.get(key, 0) + entries_in_minute
                continue
            if old or ids:
                plan.note(summed.range_index, old, ids)
            if counted:
                self.counts[key] = self.counts.get(key, 0) + counted
                _widen(self.edges, key, (first, last))
        if self.slot_ns:  # only counted entries are kept: each entry is kept by one run at most
            for slot, bucket, ts, position, message, shown in summed.kept:
                known = self.samples.get((fingerprint, slot))
                if bucket not in recounted and (known is None or ts < known.ts_ns):
                    self.samples[(fingerprint, slot)] = KeptSample(
                        fingerprint, ts, sample_of(entries[position][1]), message, shown.get("namespace"),
                        app_label(shown), shown.get("pod"))

    def merge_into(self, tally: Tally, source_key: str) -> int:
        for fingerprint, cluster in self.clusters.items():
            mine = tally.clusters.get(fingerprint)
            if mine is None:
                tally.clusters[fingerprint] = cluster
            else:
                mine.absorb(cluster)
                mine.template = cluster.template
        for (fingerprint, bucket), count in self.counts.items():
            tally.counts[(fingerprint, source_key, bucket)] = tally.counts.get((fingerprint, source_key, bucket), 0) + count
        for (fingerprint, bucket), span in self.edges.items():
            _widen(tally.edges, (fingerprint, source_key, bucket), span)
        for (fingerprint, slot), sample in self.samples.items():
            _keep_first(tally.samples, (source_key, fingerprint, slot), sample)
        for (fingerprint, bucket), count in self.observed.items():
            key = (fingerprint, source_key, bucket)
            tally.observed[key] = tally.observed.get(key, 0) + count
        return self.lines


def _texts_in_order(groups: list[GroupSum], matches: list) -> list[tuple[list[str], list[int]]]:
    """For each group of a chunk: the messages and candidate sample lines of all the chunk's groups
    of its cluster and sub-range, merged in the order of the entries, if it is the first such group
    (nothing for the others). A cluster holds several strict templates (values the masking keeps
    apart until the miner merges them): its first distinct messages and samples are the first of
    the cluster's entries, as when entries were taken one by one, not all of its first template's."""
    first: dict[tuple[int, str], int] = {}
    messages: list[list[tuple[int, str]]] = []
    candidates: list[list[int]] = []
    for number, (group, match) in enumerate(zip(groups, matches)):
        at = first.setdefault((group.range_index, match.fingerprint), number)
        if at == number:
            messages.append(list(group.messages))
            candidates.append(list(group.lines))
        else:
            messages.append([])
            candidates.append([])
            messages[at].extend(group.messages)
            candidates[at].extend(group.lines)
    return [([message for _, message in sorted(pairs)], sorted(lines)) for pairs, lines in zip(messages, candidates)]


def _widen(edges: dict, key, span: tuple[int, int]) -> None:
    known = edges.get(key)
    edges[key] = span if known is None else (min(known[0], span[0]), max(known[1], span[1]))


def _keep_first(samples: dict, key, sample: KeptSample) -> None:
    known = samples.get(key)
    if known is None or sample.ts_ns < known.ts_ns:
        samples[key] = sample
