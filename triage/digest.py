"""Digest: findings -> markdown (pure, jinja2).

Every piece of log text lands inside a code span or a fenced block whose fence is longer than
any backtick run in it, so a log line can never become a heading, a link, an image or HTML.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import jinja2

from triage.records import Finding, SourceStatus, Status, Window, WindowPlan
from triage.timeparse import format_duration_ns, format_ns

STATUS_BADGE = {
    Status.NEW: "🆕 NEW",
    Status.REGRESSED: "↩️ REGRESSED",
    Status.SPIKING: "📈 SPIKING",
    Status.ONGOING: "• ongoing",
}
MAX_SAMPLE_CHARS = 1200
MAX_SAMPLE_LINES = 15
MAX_TITLE_CHARS = 110
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


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
    rollup: object | None = None  # deliver.plan.RollUp: the reportable clusters beyond the cards
    rolled: list = field(default_factory=list)  # their Findings, listed one line each (the file digest)


@dataclass(frozen=True, slots=True)
class NightlyFacts:
    lines_today: int
    lines_previous_day: int
    new_today: list  # Findings
    regressed_today: list
    top_ongoing: list  # (Finding, sparkline)
    quiet: list  # dicts: fingerprint, template, count (the day before)


def render_digest(data: DigestInput) -> str:
    return _environment().get_template("digest.md.j2").render(
        d=data,
        window_text=f"{format_ns(data.window.from_ns)} → {format_ns(data.window.to_ns)}",
        window_length=format_duration_ns(data.window.duration_ns),
        failed=[s for s in data.sources if not s.ok],
        badge=STATUS_BADGE,
    )


_ENV: jinja2.Environment | None = None


def _environment() -> jinja2.Environment:
    global _ENV  # a compiled-template cache, not state: rendering is still pure
    if _ENV is None:
        env = jinja2.Environment(
            loader=jinja2.PackageLoader("triage", "templates"),
            autoescape=False,  # markdown, not HTML: escaping is done by the filters below
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        env.filters.update(code=code_span, block=code_block, ts=format_ns, title=card_title, top=top_values,
                           prose=prose, delta=_delta, rollup=_rollup, place=_place)
        env.filters["duration"] = format_duration_ns
        _ENV = env
    return _ENV


SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: list[int]) -> str:
    top = max(values, default=0)
    if top == 0:
        return SPARK[0] * len(values)
    return "".join(SPARK[min(len(SPARK) - 1, round(v * (len(SPARK) - 1) / top))] if v else " " for v in values)


def clean(text: str) -> str:
    """Drop control and bidi characters that could disguise what a line says."""
    return _CONTROL.sub("�", text)


def code_span(text: str) -> str:
    text = clean(str(text)).replace("\n", " ").replace("\r", " ")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def code_block(text: str, lang: str = "text") -> str:
    lines = clean(str(text)).split("\n")
    clipped = lines[:MAX_SAMPLE_LINES]
    body = "\n".join(clipped)
    if len(body) > MAX_SAMPLE_CHARS:
        body = body[:MAX_SAMPLE_CHARS] + " …"
    elif len(lines) > MAX_SAMPLE_LINES:
        body += f"\n… ({len(lines) - MAX_SAMPLE_LINES} more lines)"
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{body}\n{fence}"


def card_title(template: str) -> str:
    text = " ".join(template.split())
    return text if len(text) <= MAX_TITLE_CHARS else text[: MAX_TITLE_CHARS - 1] + "…"


def _rollup(rollup) -> str:
    from triage.deliver.plan import rollup_line

    return rollup_line(rollup, quote=code_span)


def _place(finding) -> str:
    from triage.deliver.plan import place_of

    return code_span(place_of(finding))


def _delta(today: int, before: int) -> str:
    if before == 0:
        return "no lines the day before"
    change = (today - before) * 100 / before
    return f"{'+' if change >= 0 else ''}{change:.0f}% against {before} the day before"


def prose(text: str) -> str:
    """Model-written text, already sanitised (summarize.schema): escape what markdown would act on."""
    text = clean(str(text)).replace("\n", " ")
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([\\`*_{}\[\]()#+!|~])", r"\\\1", text)


def top_values(values: dict[str, int], limit: int = 5) -> str:
    ordered = sorted(values.items(), key=lambda item: (-item[1], item[0]))
    shown = ", ".join(code_span(name) for name, _ in ordered[:limit])
    rest = len(values) - limit
    return f"{shown} (+{rest} more)" if rest > 0 else shown
