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
from triage.records import HIST_BINS, ClusterWindow, SourceStatus, Window, bucket_of
from triage.redact import redact
from triage.source import RangeFailure, Source
from triage.state.countplan import CountPlan
from triage.state.db import StateStore
from triage.timeparse import timedelta_to_ns

APP_LABELS = ("app", "app_kubernetes_io_name", "service_name", "container", "job")


@dataclass(slots=True)
class Tally:
    """What the stages accumulate over all sources, bounded by the number of clusters."""

    clusters: dict[str, ClusterWindow] = field(default_factory=dict)
    counts: dict[tuple[str, str, int], int] = field(default_factory=dict)
    coverage: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    settling: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    entry_ids: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    lines: int = 0
    uncounted_old: int = 0
    loki_notes: list[str] = field(default_factory=list)  # how Loki counted (or could not count) a big window


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


def read_source(cfg: Config, source: Source, window: Window, state: StateStore, miner: Miner,
                 tally: Tally, now_ns: int) -> SourceStatus:
    """Read one source into the tally. Clusters, counts and coverage come only from sub-ranges
    fetched completely: what a failed sub-range delivered is dropped (a re-run reads it whole)."""
    ranges = source.plan(window)
    key = source.coverage_key
    settle_ns = getattr(source, "settle_ns", 0)
    plan = CountPlan(
        ranges=ranges, covered=state.coverage(key, window.from_ns, window.to_ns),
        # read even when loki.settle is 0 now: spans an earlier setting left must still count once
        settling=state.settle_spans(key, window.from_ns, window.to_ns),
        counted_ids=state.settled_ids(key, window.from_ns, window.to_ns),
        # a source without a settle period (a file, the demo) is final as read, even past `now`
        settle_from_ns=now_ns - settle_ns if settle_ns else window.to_ns,
        count_from_ns=now_ns - timedelta_to_ns(cfg.state.retention))
    buffers: dict[int, _RangeBuffer] = {}
    positions = cfg.group_positions()
    failures: list[RangeFailure]
    lines = 0

    def cluster(record):
        event = extract(record)
        if cfg.redact.enabled:
            event = redact(event, emails=cfg.redact.emails, ips=cfg.redact.ips)
        group, group_labels = _group(event.labels, positions)
        return miner.add(event.message, group), event, group, group_labels

    counted = None
    if getattr(source, "max_pull", None) is not None:  # a Loki source: a window too big to pull is counted by Loki
        from triage.loki_tally import count_in_loki

        counted, notes = count_in_loki(cfg, source, window, plan, cluster)
        tally.loki_notes.extend(notes)

    def flush(upto: int, failed: set[int]) -> int:
        kept = 0
        for index in [i for i in buffers if i < upto]:
            buffer = buffers.pop(index)
            if index not in failed:
                kept += buffer.merge_into(tally, key)
        return kept

    try:
        for record in counted.records if counted else source.fetch(window):
            if not window.contains(record.ts_ns):
                continue
            index = plan.range_of(record.ts_ns)
            if index not in buffers:
                lines += flush(index, {plan.range_of(f.window.from_ns) for f in source.notes.failures})
                buffers[index] = _RangeBuffer()
            match, event, group, group_labels = cluster(record)
            buffers[index].add(match, event, group, group_labels, window,
                               bucket_of(record.ts_ns) if plan.should_count(record, index) else None)
        failures = list(source.notes.failures)
    except (SourceError, LokiQueryError) as err:
        failures = [RangeFailure(r, err) for r in ranges]
        source.notes.failures = failures  # the exit code is read from the notes (_source_exit_code)
    failed = {plan.range_of(f.window.from_ns) for f in failures}
    lines += flush(len(ranges) + 1, failed)
    in_loki = counted.merge_into(tally, key, plan, failed, window) if counted else 0
    lines += in_loki
    covered, settling, ids = plan.marks(failed)
    tally.coverage.setdefault(key, []).extend(covered)
    tally.settling.setdefault(key, []).extend(settling)
    tally.entry_ids.setdefault(key, []).extend(ids)
    tally.uncounted_old += plan.uncounted_old
    tally.lines += lines
    if failures:
        first = failures[0].error
        detail = str(first)
        if len(failures) > 1 and len(failures) < len(ranges):
            detail += f" ({len(failures)} of {len(ranges)} sub-ranges failed)"
        return SourceStatus(source.name, ok=False, lines=lines, error=detail, partial=lines > 0,
                            counted_in_loki=in_loki)
    return SourceStatus(source.name, ok=True, lines=lines, counted_in_loki=in_loki)


@dataclass(slots=True)
class _RangeBuffer:
    """One sub-range's clusters and counts, held until the sub-range is known to be complete."""

    clusters: dict[str, ClusterWindow] = field(default_factory=dict)
    counts: dict[tuple[str, int], int] = field(default_factory=dict)
    lines: int = 0

    def add(self, match, event, group, group_labels, window: Window, bucket: int | None) -> None:
        cluster = self.clusters.get(match.fingerprint)
        if cluster is None:
            cluster = self.clusters[match.fingerprint] = ClusterWindow(
                match.fingerprint, match.template, group_labels, group)
        elif match.changed:
            cluster.template = match.template
        cluster.add(event, _first_label(event.labels, APP_LABELS),
                    (event.ts_ns - window.from_ns) * HIST_BINS // max(window.duration_ns, 1))
        self.lines += 1
        if bucket is not None:
            self.counts[(match.fingerprint, bucket)] = self.counts.get((match.fingerprint, bucket), 0) + 1

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
        return self.lines


def _group(labels: dict[str, str], positions: list[tuple[str, ...]]) -> tuple[tuple[str, ...], dict[str, str]]:
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


def _first_label(labels: dict[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        if labels.get(name):
            return labels[name]
    return None
