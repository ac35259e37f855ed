"""The text/plain part of the e-mail (pure): no markdown syntax, no escapes, one logical line per fact.

Read in a terminal mail client or a phone's plain view: no fences, no ``**``, no backslashes.
Lines are not hard-wrapped: a phone shows about 40 monospace columns and re-wraps a 72-column
line into a ragged pair, so each fact is one line the client flows itself. Samples keep their own
lines (indented, clipped like every channel).
"""

from __future__ import annotations

from triage.digest.cards import Card, Outgoing
from triage.digest.escape import clean, clip_block, one_line

RULE = "-" * 24


def render_text(o: Outgoing) -> str:
    out: list[str] = [o.headline, "", *_wrap(f"Window: {o.window_text}"), *_wrap(o.stats_line)]
    out += [line for w in o.warnings for line in _wrap(f"WARNING: {w}")]
    if o.disclaimer:
        out += ["", *_wrap(o.disclaimer)]
    if o.day:
        out += ["", "THE DAY", *day_lines(o)]
    for note in o.notes:
        out += ["", *_wrap(f"Note: {note}")]
    if o.quiet_text:
        out += ["", *_wrap(o.quiet_text)]
    for card in o.cards:
        out += ["", RULE, *card_lines(card)]
    if o.rollup:
        out += ["", RULE, *_wrap(f"… {o.rollup_text}")]
        if o.rollup.grafana_url:
            out += ["Open them in Grafana Explore:", o.rollup.grafana_url]
    out += ["", RULE, *_wrap(o.footer)]
    return "\n".join(out) + "\n"


def card_lines(card: Card) -> list[str]:
    head = f"[{card.status_label}{' · muted' if card.muted else ''}{f' · {card.severity}' if card.severity else ''}]"
    title = f"🤖 {card.summary.title}" if card.ai_title else card.title
    lines = _wrap(f"{head} {card.app + ': ' if card.app else ''}{title}")
    if card.pending_since_ns is not None:
        lines += _wrap(f"Pending since {card.pending_since_text} (an earlier delivery failed)")
    by_loki = f" ({card.counted_in_loki:,} counted by Loki)" if card.counted_in_loki else ""
    lines += _wrap(f"{card.count:,} in this window{by_loki} · {card.when}")
    for name, values in card.where():
        lines += _wrap(f"{name.capitalize()}: {', '.join(values)}")
    lines.append(f"Fingerprint: {card.fingerprint}")
    if card.variants:
        lines += _wrap(card.variants_text)
    if card.summary:
        for name, text in card.summary.fields():
            lines += _wrap(f"🤖 {name}: {text}")
    else:
        lines += _wrap(f"Template ({card.fallback_note}): {card.template}")
    if card.varying:
        lines.append(f"What varies{f' ({card.varying_note})' if card.varying_note else ''}:")
        lines += [line for varying in card.varying for line in _wrap(f"  {varying}")]
    if card.explore_url:
        lines += ["Grafana Explore:", card.explore_url]
    for index, sample in enumerate(card.samples):
        lines += ["", "Sample:" if index == 0 else "Another shape:"]
        lines += ["    " + line for line in clip_block(sample).split("\n")]
    return lines


def day_lines(o: Outgoing) -> list[str]:
    day = o.day
    lines = [f"Lines: {day.lines_today:,} ({o.day_delta})"]
    for label, items in (("New today", day.new_today), ("Regressed today", day.regressed_today),
                         ("Spiking today", day.spiking_today)):
        lines.append(f"{label}: {len(items)}")
        lines += [line for item in items[:10]
                  for line in _wrap(f"  - {_item(item)}{f' · {item.reported_in}' if item.reported_in else ''}")]
    if day.top_ongoing:
        lines.append("Top ongoing (each mark is a slice of the day, · = no lines):")
        lines += [line for t in day.top_ongoing
                  for line in _wrap(f"  {t.spark}  {t.scale} · {t.item.count} × {_item(t.item)}")]
    if day.quiet:
        lines.append("Went quiet (seen the day before, not today):")
        lines += [line for q in day.quiet for line in _wrap(f"  - {q.count} × {_item(q)}")]
    return lines


def _item(item) -> str:
    return f"{item.app + ': ' if item.app else ''}{'🤖 ' if item.ai else ''}{item.title} [{item.fingerprint}]"


def _wrap(text: str) -> list[str]:
    """One logical line: control characters neutralised, no line breaks of its own."""
    return [one_line(clean(text))]
