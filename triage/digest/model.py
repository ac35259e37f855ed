"""What a digest is made from (pure records)."""

from __future__ import annotations

from dataclasses import dataclass, field

from triage.records import Finding, SourceStatus, Window, WindowPlan


@dataclass(frozen=True, slots=True)
class DigestInput:
    run_id: str
    schedule: str
    window: Window
    generated_ns: int
    sources: list[SourceStatus]
    lines: int
    cards: list[Finding]
    more: int  # reportable clusters left out by digest.max_cards
    clusters_total: int
    by_status: dict[str, int]
    muted: int
    state_path: str
    dry_run: bool = False
    notes: list[str] = field(default_factory=list)
    summaries: dict = field(default_factory=dict)  # fingerprint -> summarize.stage.Summary
    llm_stats: object | None = None
    llm_model: str | None = None
    prompt_version: str | None = None
    prime: bool = False
    trace_id: str | None = None
    footer_warnings: list = field(default_factory=list)
    explore: dict = field(default_factory=dict)  # fingerprint -> Grafana Explore URL
    pending_since: dict = field(default_factory=dict)  # fingerprint -> ns an undelivered episode opened
    nightly: NightlyFacts | None = None
    window_plan: WindowPlan | None = None  # a skipped gap, a re-read part of the previous window
    rollup: object | None = None  # deliver.plan.RollUp: the reportable clusters beyond the cards (delivery decides)
    rolled: list = field(default_factory=list)  # their Findings, listed one line each (the file digest)


@dataclass(frozen=True, slots=True)
class NightlyFacts:
    lines_today: int
    lines_previous_day: int
    new_today: list  # DayItems: what the day's runs (hourly ones too) reported as new
    regressed_today: list
    top_ongoing: list  # DayTrends: the busiest ongoing clusters with a sparkline over the day
    quiet: list  # DayItems: seen the day before, not today
    spiking_today: list = field(default_factory=list)  # DayItems


@dataclass(frozen=True, slots=True)
class DayItem:
    fingerprint: str
    app: str | None
    title: str  # the AI title cached for it, else the template shortened
    ai: bool = False
    opened_ns: int | None = None  # when the episode opened (new / regressed / spiking)
    schedule: str | None = None  # the run that reported it
    reported_in: str | None = None  # that run's window: "03:00–04:00 UTC"
    count: int | None = None


@dataclass(frozen=True, slots=True)
class DayTrend:
    item: DayItem
    spark: str
    scale: str  # "peak 12/h, 1 h a mark"
