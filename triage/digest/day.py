"""The nightly digest's "the day" (pure): from the day's episodes, this run's findings and the counts.

What an hourly run reported as new, regressed or spiking counts for the day even though the
nightly's own classification of the whole day calls it ongoing by now (the hourly run made it
known). Sparklines show a zero as a visible baseline glyph, so gaps survive HTML's collapsing of
spaces and proportional fonts, and each comes with its scale.
"""

from __future__ import annotations

import json

from triage.digest.heading import app_of, shorten, without_app
from triage.digest.model import DayItem, DayTrend, NightlyFacts
from triage.digest.times import clock, span
from triage.records import Finding, Status, Window

SPARK = "▁▂▃▄▅▆▇█"
ZERO = "·"  # a bucket with no line: visible, and never collapsed like a space
LISTED = 10


def sparkline(values: list[int]) -> str:
    top = max(values, default=0)
    if top == 0:
        return ZERO * len(values)
    return "".join(SPARK[round(v * (len(SPARK) - 1) / top)] if v else ZERO for v in values)


def scale(values: list[int], window_ns: int) -> str:
    """``1 h a mark, peak 47``: what one glyph spans and what the tallest one stands for."""
    return f"{span(window_ns // max(len(values), 1))} a mark, peak {max(values, default=0)}"


def _run_window(row: dict) -> str | None:
    if row.get("run_from_ns") is None or row.get("run_to_ns") is None:
        return None
    return f"{row.get('schedule') or 'a'} run for {clock(row['run_from_ns'])}–{clock(row['run_to_ns'])} UTC"


def day_facts(findings: list[Finding], window: Window, *, episodes: list[dict], previous_total: int,
              quiet_rows: list[dict], titles: dict[str, str]) -> NightlyFacts:
    """``episodes``: rows of ``state.day.episodes_opened`` for the day; ``titles``: AI titles of this run."""
    in_run = {f.cluster.fingerprint: f for f in findings}
    by_kind: dict[str, dict[str, DayItem]] = {str(s): {} for s in (Status.NEW, Status.REGRESSED, Status.SPIKING)}
    for row in episodes:
        fingerprint = row["fingerprint"]
        if row["kind"] not in by_kind or fingerprint in by_kind[row["kind"]]:
            continue
        finding = in_run.get(fingerprint)
        title = titles.get(fingerprint) or row.get("title")
        app = app_of(row["labels"], finding.cluster.apps if finding else None)
        by_kind[row["kind"]][fingerprint] = DayItem(
            fingerprint, app, without_app(title, app) if title else shorten(row["template"]), ai=bool(title), opened_ns=row["opened_ns"],
            schedule=row.get("schedule"), count=finding.cluster.count if finding else None,
            reported_in=_run_window(row))
    for finding in findings:  # this run's own verdicts: their episodes are written after the digest
        kind = str(finding.status)
        if kind in by_kind and finding.cluster.fingerprint not in by_kind[kind] and not finding.muted:
            by_kind[kind][finding.cluster.fingerprint] = _item(finding, titles)
    ongoing = [f for f in findings if f.status is Status.ONGOING][:LISTED]
    return NightlyFacts(
        lines_today=sum(f.cluster.count for f in findings), lines_previous_day=previous_total,
        new_today=list(by_kind["new"].values()), regressed_today=list(by_kind["regressed"].values()),
        spiking_today=list(by_kind["spiking"].values()),
        top_ongoing=[DayTrend(_item(f, titles), sparkline(f.cluster.hist), scale(f.cluster.hist, window.duration_ns))
                     for f in ongoing],
        quiet=[DayItem(row["fingerprint"], app_of(json_labels(row.get("labels"))), shorten(row["template"]),
                       count=row["count"]) for row in quiet_rows if row["fingerprint"] not in in_run][:LISTED],
    )


def _item(finding: Finding, titles: dict[str, str]) -> DayItem:
    cluster = finding.cluster
    title = titles.get(cluster.fingerprint)
    app = app_of(cluster.group_labels, cluster.apps)
    return DayItem(cluster.fingerprint, app, without_app(title, app) if title else shorten(cluster.template),
                   ai=bool(title), count=cluster.count)


def json_labels(value) -> dict:
    if isinstance(value, dict):
        return value
    try:
        return json.loads(value or "{}")
    except ValueError:
        return {}
