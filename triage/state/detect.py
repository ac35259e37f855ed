"""Detection: a deterministic verdict for each cluster of the window (pure).

- **new**: the fingerprint was not in the state when the run started.
- **regressed**: it has counts before the window, and its newest count before the window ended
  at least ``quiet_period`` before its first entry in the window.
- **spiking**: at least ``spike_min_history`` of history within the lookback before the window,
  at least ``spike_min_count`` entries in the window, and a rate (entries per hour) at least
  ``spike_factor`` times its baseline rate (its counts in the lookback / hours of history).
- **ongoing**: otherwise.

Muted is a flag beside the status: a muted cluster is counted but not reported, unless it
spikes.
"""

from __future__ import annotations

from dataclasses import dataclass

from triage.records import BUCKET_NS, ClusterWindow, History, Status, Window

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
