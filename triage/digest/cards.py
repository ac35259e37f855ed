"""What a digest says, channel-neutral (pure): built once, rendered per channel.

Every channel (markdown file, HTML and text/plain e-mail, Slack) renders the same ``Outgoing``:
a list of cards plus an optional roll-up (``deliver.plan.RollUp``: what the card cap and the
channel's size left out, with exact counts; which cards go out is the delivery's decision, and
``rollup_line`` there is the one place the roll-up's words are made). Texts here are unescaped:
each renderer escapes for its own target. Times are human (``times.py``); exact nanoseconds stay in the report JSON.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from triage.digest import times
from triage.digest.heading import app_of, shorten, without_app
from triage.digest.model import DigestInput, NightlyFacts
from triage.digest.varies import distinct_shapes, from_messages
from triage.deliver.plan import RollUp, rollup_line
from triage.extract import extract
from triage.records import MESSAGE_VALUES, LogRecord

STATUS_LABEL = {"new": "NEW", "regressed": "REGRESSED", "spiking": "SPIKING", "ongoing": "ongoing"}
STATUS_ICON = {"new": "🆕", "regressed": "↩️", "spiking": "📈", "ongoing": "•"}
DISCLAIMER = ("🤖 marks AI-written text{model}: check it against the sample. Every count, time, label "
              "and sample comes from the logs.")


@dataclass(frozen=True, slots=True)
class CardSummary:
    title: str
    what_happened: str
    likely_cause: str
    next_step: str

    def fields(self) -> list[tuple[str, str]]:
        """The non-empty AI fields (a field whose sentences all stated unknown numbers is empty)."""
        return [(name, text) for name, text in (("What happened", self.what_happened),
                                                ("Likely cause", self.likely_cause),
                                                ("Next step", self.next_step)) if text]


@dataclass(frozen=True, slots=True)
class Card:
    fingerprint: str
    status: str
    title: str  # the template shortened at a token boundary, for cards without an AI title
    template: str
    count: int
    first_seen_ns: int
    last_seen_ns: int
    namespaces: tuple[str, ...] = ()
    apps: tuple[str, ...] = ()
    pods: tuple[str, ...] = ()
    samples: tuple[str, ...] = ()  # the first sample, plus one of another shape when there is one
    summary: CardSummary | None = None
    muted: bool = False
    pending_since_ns: int | None = None  # an episode a failed earlier delivery left pending
    explore_url: str | None = None
    app: str | None = None
    counted_in_loki: int = 0  # of count: entries Loki counted instead of sending them
    severity: str | None = None  # the level most samples carry
    when: str = ""  # "started 06:40:12 UTC (12 min ago), still happening"
    varying: tuple[str, ...] = ()  # "user: 198, 125, 328 … 312 distinct"
    varying_note: str = ""  # where the values come from: "in 3 samples"
    pending_since_text: str = ""
    fallback_note: str | None = None  # why there is no AI text
    variants: int = 0  # templates the grouping's cardinality guard merged into this one

    @property
    def variants_text(self) -> str:
        """``3 variants merged (cardinality guard)``: the template may stand for more than it says."""
        if not self.variants:
            return ""
        return f"{self.variants} variant{'s' if self.variants != 1 else ''} merged (cardinality guard)"

    @property
    def heading(self) -> str:
        """``checkout: payment authorization failed``: the app, then the AI title or the template."""
        text = self.summary.title if self.summary and self.summary.title else self.title
        return f"{self.app}: {text}" if self.app else text

    @property
    def ai_title(self) -> bool:
        return bool(self.summary and self.summary.title)

    @property
    def status_label(self) -> str:
        return STATUS_LABEL.get(self.status, self.status)

    @property
    def status_icon(self) -> str:
        return STATUS_ICON.get(self.status, "•")

    def where(self) -> list[tuple[str, tuple[str, ...]]]:
        return [(name, values) for name, values in (("namespaces", self.namespaces[:5]), ("apps", self.apps[:5]),
                                                    ("pods", self.pods[:3])) if values]


@dataclass(frozen=True, slots=True)
class Outgoing:
    headline: str  # subject line and notification text: leads with the top card
    schedule: str
    window_text: str
    stats_line: str
    warnings: tuple[str, ...]
    cards: tuple[Card, ...]
    footer: str
    notes: tuple[str, ...] = field(default_factory=tuple)
    rollup: RollUp | None = None  # the clusters this message carries only as its roll-up line
    disclaimer: str | None = None  # once per digest, when any card has AI text
    day: NightlyFacts | None = None
    day_delta: str = ""
    quiet_text: str | None = None  # what a digest without cards says
    title: str = "triage digest"

    @property
    def more(self) -> int:
        return self.rollup.total if self.rollup else 0

    @property
    def rollup_text(self) -> str:
        """The roll-up line as plain text (the HTML and text/plain parts; Slack and markdown quote names)."""
        return rollup_line(self.rollup) if self.rollup else ""

    def intro_lines(self) -> list[str]:
        return [f"Window {self.window_text}", self.stats_line, *(f"⚠ {w}" for w in self.warnings), *self.notes]


def build_outgoing(data: DigestInput) -> Outgoing:
    """The channel-neutral digest for every channel, from the same data as the report.

    ``data.cards`` and ``data.rollup`` are the delivery's plan for this message; the headline and
    the counts say what the whole message carries, cards and roll-up together."""
    now_ns = data.generated_ns
    cards = tuple(_card(data, finding, now_ns) for finding in data.cards)
    rollup = data.rollup
    counted = Counter(str(f.status) for f in data.cards)
    for status, n in rollup.by_status if rollup else ():
        counted[status] += n
    changes = ", ".join(f"{counted[s]} {s}" for s in ("new", "regressed", "spiking") if counted[s])
    window = times.window(data.window.from_ns, data.window.to_ns, now_ns)
    stats = f"{data.lines:,} lines · {data.clusters_total} clusters" + (f" · {changes}" if changes else "")
    if data.muted:
        stats += f" · {data.muted} muted"
    warnings = tuple(f"source {s.name} failed{' (partial results)' if s.partial else ''}: {s.error}"
                     for s in data.sources if not s.ok)
    footer = f"run {data.run_id}" + (f" · trace {data.trace_id}" if data.trace_id else "") + \
        f" · generated {times.at(now_ns)} · state {data.state_path}"
    disclaimer = None
    if any(c.summary for c in cards):
        model = f" (model {data.llm_model}, prompt {data.prompt_version})" if data.llm_model else ""
        disclaimer = DISCLAIMER.format(model=model)
    title = f"triage digest · {data.schedule}" + (" · dry run (nothing saved or sent)" if data.dry_run else "") + \
        (" · prime run (nothing sent)" if data.prime else "")
    day = data.nightly
    return Outgoing(
        headline=headline(data.schedule, cards, changes, day, rollup.total if rollup else 0), schedule=data.schedule,
        window_text=window, stats_line=stats, warnings=warnings, cards=cards, footer=footer, notes=tuple(data.notes),
        rollup=rollup, disclaimer=disclaimer, day=day,
        day_delta=_delta(day.lines_today, day.lines_previous_day) if day else "",
        quiet_text=None if cards or rollup else _quiet_text(data), title=title,
    )


def headline(schedule: str, cards: tuple[Card, ...], changes: str, day: NightlyFacts | None = None,
             rolled: int = 0) -> str:
    """``triage hourly: 2 new — checkout: payment authorization failed (+1 more)``; ``rolled``: the
    clusters the message carries in its roll-up, counted in the "+N more"."""
    if cards:
        top = cards[0]
        others = len(cards) - 1 + rolled
        more = f" (+{others} more)" if others else ""
        return f"triage {schedule}: {changes or f'{len(cards) + rolled} clusters'} — {top.heading}{more}"
    if rolled:  # a message whose cards did not fit: its roll-up is all it carries
        return f"triage {schedule}: {changes or f'{rolled} clusters'} (in the roll-up)"
    if day is not None:
        reported = [(len(items), kind) for items, kind in ((day.new_today, "new"), (day.regressed_today, "regressed"),
                                                           (day.spiking_today, "spiking")) if items]
        if reported:
            first = (day.new_today or day.regressed_today or day.spiking_today)[0]
            lead = f"{first.app}: {first.title}" if first.app else first.title
            return (f"triage nightly: {', '.join(f'{n} {k}' for n, k in reported)} today — {lead} · "
                    f"{day.lines_today:,} lines")
        return f"triage nightly: nothing new, regressed or spiking today · {day.lines_today:,} lines"
    return f"triage {schedule}: no change"


def _card(data: DigestInput, finding, now_ns: int) -> Card:
    cluster = finding.cluster
    summary = data.summaries.get(cluster.fingerprint)
    text = summary.text if summary and summary.text else None
    messages, levels = [], []
    for sample in cluster.samples:
        event = extract(LogRecord(0, {}, sample))
        messages.append(event.message)
        if event.level:
            levels.append(event.level)
    # every distinct message of the window while there were fewer than MESSAGE_VALUES, else the first ones
    known = cluster.messages or messages
    full = len(cluster.messages) >= MESSAGE_VALUES
    found = from_messages(cluster.template, known, capped=full)
    varying = tuple(v.text(from_samples=not cluster.messages) for v in found)
    pending = data.pending_since.get(cluster.fingerprint)
    app = app_of(cluster.group_labels, cluster.apps)
    return Card(
        fingerprint=cluster.fingerprint, status=str(finding.status), title=shorten(cluster.template),
        template=cluster.template, count=cluster.count, first_seen_ns=finding.first_seen_ns,
        last_seen_ns=finding.last_seen_ns, namespaces=_top(cluster.namespaces), apps=_top(cluster.apps),
        pods=_top(cluster.pods), samples=tuple(distinct_shapes(list(cluster.samples))), muted=finding.muted,
        summary=CardSummary(without_app(text.title, app), text.what_happened, text.likely_cause, text.next_step)
        if text else None,
        pending_since_ns=pending, explore_url=data.explore.get(cluster.fingerprint),
        app=app, counted_in_loki=cluster.counted_in_loki,
        severity=Counter(levels).most_common(1)[0][0] if levels else None,
        when=times.lifetime(finding.first_seen_ns, finding.last_seen_ns, data.window.to_ns, now_ns,
                            cluster.first_ns or None),
        varying=varying, varying_note=(f"in {found[0].seen} samples" if not cluster.messages else
                                 f"in the first {len(known)} distinct messages" if full else "") if found else "", pending_since_text=times.when(pending, now_ns) if pending is not None else "",
        fallback_note=_fallback_note(summary) if not text else None, variants=cluster.variants,
    )


def _fallback_note(summary) -> str:
    if summary is None or summary.source == "disabled":
        return "no AI summary in this run"
    if summary.source == "budget":
        return "left out by the LLM budget"
    if summary.source == "fallback":
        return f"the AI summary failed: {(summary.reason or 'unknown')[:160]}"
    return "the AI text stated numbers the logs do not hold"


def _quiet_text(data: DigestInput) -> str:
    if any(not s.ok for s in data.sources):
        return "No clusters to report from what could be read. This is not an all-clear: a source failed (see above)."
    if data.schedule == "hourly":
        return "No change: nothing new, regressed or spiking in this window."
    if data.schedule == "nightly":
        day = data.nightly
        if day and (day.new_today or day.regressed_today or day.spiking_today):
            return "No card left to send: what changed today was reported by the hourly runs (see the day above)."
        return "Nothing new, regressed or spiking today."
    return "No error lines in this window."


def _delta(today: int, before: int) -> str:
    if before == 0:
        return "no lines the day before"
    change = (today - before) * 100 / before
    return f"{'+' if change >= 0 else ''}{change:.0f}% against {before} the day before"


def _top(values: dict[str, int]) -> tuple[str, ...]:
    return tuple(name for name, _ in sorted(values.items(), key=lambda item: (-item[1], item[0])))
