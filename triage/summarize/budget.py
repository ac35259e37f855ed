"""Which clusters get a model-written card, in which order (pure)."""

from __future__ import annotations

from triage.records import STATUS_RANK, Finding


def rank(findings: list[Finding]) -> list[Finding]:
    """new > regressed > spiking > ongoing, then by count, then by fingerprint (stable)."""
    return sorted(findings, key=lambda f: (STATUS_RANK[f.status], -f.cluster.count, f.cluster.fingerprint))
