"""The run report (``--report-json``): a stable, documented JSON shape (schema_version 1)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from triage import __version__
from triage.fileio import write_atomic
from triage.records import Finding, SourceStatus, Window, WindowPlan
from triage.timeparse import format_ns

SCHEMA_VERSION = 1


@dataclass(slots=True)
class ClusterEntry:
    finding: Finding
    reported_to: list[str] = field(default_factory=list)
    summary: dict | None = None
    rolled_up: list[str] = field(default_factory=list)  # channels that got it only in their roll-up line


@dataclass(slots=True)
class RunReport:
    run_id: str
    schedule: str
    dry_run: bool = False
    prime: bool = False
    window: Window | None = None
    window_plan: WindowPlan | None = None
    sources: list[SourceStatus] = field(default_factory=list)
    lines: int = 0
    clusters: list[ClusterEntry] = field(default_factory=list)
    deliveries: list[dict] = field(default_factory=list)
    digest_path: str | None = None
    digest_text: str | None = None
    exit_code: int = 0
    error: str | None = None
    trace_id: str | None = None
    llm: dict = field(default_factory=lambda: {
        "requests": 0, "cached": 0, "fallbacks": 0, "over_budget": 0, "prompt_tokens": 0, "completion_tokens": 0,
    })

    def to_json(self) -> dict:
        return {
            "schema_version": SCHEMA_VERSION,
            "triage_version": __version__,
            "run_id": self.run_id,
            "schedule": self.schedule,
            "prime": self.prime,
            "dry_run": self.dry_run,
            "trace_id": self.trace_id,
            "window": _window_json(self.window, self.window_plan),
            "sources": [
                {"name": s.name, "ok": s.ok, "lines": s.lines, "error": s.error, "pulled": s.pulled,
                 "counted_in_loki": s.counted_in_loki, "queries": s.queries} for s in self.sources
            ],
            "lines": self.lines,
            "clusters": [_cluster_json(entry) for entry in self.clusters],
            "llm": dict(self.llm),
            "deliveries": list(self.deliveries),
            "digest_path": self.digest_path,
            "exit_code": self.exit_code,
            "error": self.error,
        }


def _window_json(window: Window | None, plan: WindowPlan | None) -> dict | None:
    """``from``/``to``; ``skipped`` (a gap beyond run.max_catchup left unread) and ``reread`` (the
    part of the previous run's window read again, and why) are additions, null when they do not apply."""
    if window is None:
        return None
    skipped = plan.skipped if plan else None
    reread = plan.reread if plan else None
    return {
        "from": format_ns(window.from_ns), "to": format_ns(window.to_ns),
        "skipped": {"from": format_ns(skipped.from_ns), "to": format_ns(skipped.to_ns)} if skipped else None,
        "reread": ({"from": format_ns(reread.from_ns), "to": format_ns(reread.to_ns), "reason": plan.reread_reason}
                   if reread else None),
    }


def _cluster_json(entry: ClusterEntry) -> dict:
    finding = entry.finding
    cluster = finding.cluster
    return {
        "fingerprint": cluster.fingerprint,
        "status": str(finding.status),
        "muted": finding.muted,
        "count": cluster.count,
        "counted_in_loki": cluster.counted_in_loki,  # of count: entries Loki counted (an addition to INTERFACE.md)
        "template": cluster.template,
        "labels": dict(cluster.group_labels),
        "first_seen": format_ns(finding.first_seen_ns),
        "last_seen": format_ns(finding.last_seen_ns),
        "reported": bool(entry.reported_to),
        "reported_to": list(entry.reported_to),
        "rolled_up": list(entry.rolled_up),
        "summary": entry.summary,
    }


def write_report(report: RunReport, path: Path) -> None:
    write_atomic(path, json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n")
