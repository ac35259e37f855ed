"""Detection: a deterministic verdict for each cluster of the window (pure).

- **new**: the state has no sighting of it before the window, and it was first seen inside the
  window (or not at all): a window read again after a partial run still calls it new.
- **regressed**: its last sighting before the window (minute counts while they are kept, daily
  sightings after that: durable facts, kept as long as the cluster) ended at least
  ``quiet_period`` before its first entry in the window.
- **spiking**: at least ``spike_min_history`` of history within the lookback before the window,
  at least ``spike_min_count`` entries in the window, and a rate (entries per hour) at least
  ``spike_factor`` times its baseline rate (its counts in the lookback / hours of history).
- **ongoing**: otherwise.

Muted is a flag beside the status: a muted cluster is counted but not reported, unless it
spikes.

An episode opens once per comeback: it is keyed to an *anchor* (``comeback_anchor``), so a
window that is read again (after a partial run, or to count late entries) finds the episode it
opened before instead of opening a second one. Spiking has a cooldown instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from triage.records import BUCKET_NS, ClusterWindow, Finding, History, Schedule, Status, Window

HOUR_NS = 3600 * 1_000_000_000


@dataclass(frozen=True, slots=True)
class DetectRules:
    quiet_period_ns: int
    spike_factor: float
    spike_min_count: int
    spike_min_history_ns: int
    spike_lookback_ns: int


def classify(cluster: ClusterWindow, history: History, window: Window, rules: DetectRules) -> Status:
    if not history.known:
        return Status.NEW
    if history.last_bucket_before_ns is None and history.first_seen_ns is not None \
            and history.first_seen_ns >= window.from_ns:
        return Status.NEW
    if history.last_bucket_before_ns is not None:
        quiet_ns = cluster.first_ns - (history.last_bucket_before_ns + BUCKET_NS)
        if quiet_ns >= rules.quiet_period_ns:
            return Status.REGRESSED
    if _spiking(cluster, history, window, rules):
        return Status.SPIKING
    return Status.ONGOING


def _spiking(cluster: ClusterWindow, history: History, window: Window, rules: DetectRules) -> bool:
    if history.first_bucket_ns is None or cluster.count < rules.spike_min_count:
        return False
    history_ns = window.from_ns - history.first_bucket_ns
    if history_ns < rules.spike_min_history_ns:
        return False
    baseline_per_hour = history.baseline_count / (history_ns / HOUR_NS)
    window_per_hour = cluster.count / (max(window.duration_ns, BUCKET_NS) / HOUR_NS)
    return window_per_hour >= rules.spike_factor * baseline_per_hour


def is_muted(history: History, now_ns: int) -> bool:
    return history.muted_until_ns is not None and history.muted_until_ns > now_ns


def comeback_anchor(status: Status, history: History) -> int | None:
    """What identifies the change an episode reports: a cluster is new once, and a regression is
    the return after the quiet period that began at its last sighting before the window."""
    if status is Status.NEW:
        return 0
    if status is Status.REGRESSED:
        return history.last_bucket_before_ns
    return None


def episodes_to_open(findings: list[Finding], *, now_ns: int, spike_cooldown_ns: int, report_muted_spikes: bool,
                     last_spike_ns: Callable[[str], int | None],
                     has_episode: Callable[[str, str, int], bool]) -> tuple[list[tuple[str, str, int | None]], set[str]]:
    """Episodes this run opens, and the fingerprints whose comeback already has its episode.

    An episode opens when a cluster becomes new, regressed or spiking (spiking at most once per
    cooldown); never twice for one comeback.
    """
    episodes: list[tuple[str, str, int | None]] = []
    already: set[str] = set()
    for finding in findings:
        fingerprint, status = finding.cluster.fingerprint, finding.status
        if status is Status.ONGOING:
            continue
        if finding.muted and not (report_muted_spikes and status is Status.SPIKING):
            continue
        if status is Status.SPIKING:
            last = last_spike_ns(fingerprint)
            if last is not None and now_ns - last < spike_cooldown_ns:
                continue
        elif finding.anchor_ns is not None and has_episode(fingerprint, str(status), finding.anchor_ns):
            already.add(fingerprint)
            continue
        episodes.append((fingerprint, str(status), finding.anchor_ns))
    return episodes, already


def reportable_findings(findings: list[Finding], schedule: Schedule, muted_spikes: bool = True) -> list[Finding]:
    """What a run reports: not muted (a muted cluster that spikes still is, unless ``muted_spikes`` is off);
    a manual run everything else, an hourly run what changed, a nightly the same as cards (its ongoing
    clusters go to the day's summary)."""
    visible = [f for f in findings if not f.muted or (muted_spikes and f.status is Status.SPIKING)]
    if schedule is Schedule.MANUAL:
        return visible
    return [f for f in visible if f.status is not Status.ONGOING]
