"""What a channel message says, channel-neutral (pure): built once, rendered per channel."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from urllib.parse import quote

from triage.deliver.plan import RollUp, rollup_line
from triage.timeparse import format_ns


@dataclass(frozen=True, slots=True)
class CardSummary:
    title: str
    what_happened: str
    likely_cause: str
    next_step: str


@dataclass(frozen=True, slots=True)
class Card:
    fingerprint: str
    status: str
    title: str  # the template shortened, for cards without an AI summary
    template: str
    count: int
    first_seen_ns: int
    last_seen_ns: int
    namespaces: tuple[str, ...] = ()
    apps: tuple[str, ...] = ()
    pods: tuple[str, ...] = ()
    samples: tuple[str, ...] = ()
    summary: CardSummary | None = None
    muted: bool = False
    pending_since_ns: int | None = None  # an episode a failed earlier delivery left pending
    explore_url: str | None = None

    @property
    def first_seen_text(self) -> str:
        return format_ns(self.first_seen_ns)

    @property
    def last_seen_text(self) -> str:
        return format_ns(self.last_seen_ns)

    @property
    def pending_since_text(self) -> str:
        return format_ns(self.pending_since_ns) if self.pending_since_ns is not None else ""

    def where(self) -> list[tuple[str, tuple[str, ...]]]:
        return [("namespaces", self.namespaces[:5]), ("apps", self.apps[:5]), ("pods", self.pods[:3])]


@dataclass(frozen=True, slots=True)
class Outgoing:
    headline: str
    schedule: str
    window_text: str
    stats_line: str
    warnings: tuple[str, ...]
    cards: tuple[Card, ...]
    footer: str
    notes: tuple[str, ...] = field(default_factory=tuple)
    rollup: RollUp | None = None  # the clusters this message carries only as its roll-up line

    @property
    def more(self) -> int:
        return self.rollup.total if self.rollup else 0

    @property
    def rollup_text(self) -> str:
        return rollup_line(self.rollup) if self.rollup else ""

    def intro_lines(self) -> list[str]:
        return [f"Window {self.window_text}", self.stats_line, *(f"⚠ {w}" for w in self.warnings),
                *self.notes]


def explore_url(grafana_url: str, datasource_uid: str | None, labels: dict[str, str], template: str,
                from_ns: int, to_ns: int) -> str:
    """A Grafana Explore link for a cluster's lines: its labels and the longest constant part of its template."""
    selector = ", ".join(f'{k}="{_logql_escape(v)}"' for k, v in sorted(labels.items()) if v)
    constant = max((part.strip() for part in template.split("<*>")), key=len, default="")[:80]
    expr = "{" + selector + "}" + (f' |= "{_logql_escape(constant)}"' if constant else "")
    return _explore(grafana_url, datasource_uid, expr, from_ns, to_ns)


def explore_namespaces_url(grafana_url: str, datasource_uid: str | None, namespaces: list[str],
                           from_ns: int, to_ns: int) -> str:
    """A Grafana Explore link over the lines of several namespaces (a roll-up's)."""
    alternatives = "|".join(re.escape(ns) for ns in sorted(set(namespaces))[:20] if ns)
    expr = '{namespace=~"' + _logql_escape(alternatives or ".+") + '"}'
    return _explore(grafana_url, datasource_uid, expr, from_ns, to_ns)


def _explore(grafana_url: str, datasource_uid: str | None, expr: str, from_ns: int, to_ns: int) -> str:
    pane = {"datasource": datasource_uid or "", "queries": [{"refId": "A", "expr": expr}],
            "range": {"from": str(from_ns // 1_000_000), "to": str(to_ns // 1_000_000)}}
    panes = json.dumps({"triage": pane}, separators=(",", ":"))
    return f"{grafana_url.rstrip('/')}/explore?schemaVersion=1&orgId=1&panes={quote(panes, safe='')}"


def _logql_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
