"""Slack Block Kit for a digest (pure): cards, the day, within Slack's limits, nothing that can ping or link.

Limits kept: 3000 characters per section text, 150 per header. Text from logs sits in code spans
and blocks (``escape.slack_code``/``slack_block``: ``& < >`` escaped, no mention can form, no
backtick can close the span); model prose goes through ``escape.slack_prose``, which also keeps
``*``, ``_`` and ``~`` from pairing into formatting. Sparklines are in code spans so their marks align.
"""

from __future__ import annotations

from triage.deliver.plan import rollup_line
from triage.digest.cards import Card, Outgoing
from triage.digest.escape import slack_block, slack_code, slack_escape, slack_plain, slack_prose

MAX_SECTION = 3000
MAX_HEADER = 150

# The names the Slack channel and its tests use.
escape = slack_escape
code = slack_code
code_block = slack_block


def section(text: str) -> dict:
    if len(text) > MAX_SECTION:
        text = text[: MAX_SECTION - 2] + "…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _clip(text: str, limit: int | None) -> str:
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


def _heading(card: Card) -> str:
    app = f"{slack_code(card.app, 80)}: " if card.app else ""
    title = f"🤖 *{slack_prose(_clip(card.summary.title, 150))}*" if card.ai_title else slack_code(card.title, 140)
    return app + title


def card_blocks(card: Card, *, template_chars: int = 600, sample_chars: int = 1400,
                prose_chars: int | None = None) -> list[dict]:
    """A divider, the card's facts and AI text, and its samples; the channel passes its size budget."""
    badge = f"{card.status_icon} *{card.status_label}*" + (" (muted)" if card.muted else "") + \
        (f" · {slack_escape(card.severity)}" if card.severity else "")
    lines = [f"{badge} · {_heading(card)}"]
    if card.pending_since_ns is not None:
        lines.append(f"pending since {slack_escape(card.pending_since_text)} (an earlier delivery failed)")
    by_loki = f" ({card.counted_in_loki:,} counted by Loki)" if card.counted_in_loki else ""
    lines.append(f"*{card.count:,}* in this window{by_loki} · {slack_escape(card.when)}")
    where = " · ".join(f"{name} {', '.join(slack_code(v, 80) for v in values)}" for name, values in card.where())
    if where:
        lines.append(where)
    facts = f"fingerprint {slack_code(card.fingerprint)}"
    if card.explore_url:
        facts += f" · <{card.explore_url}|Open in Grafana Explore>"  # built by us, never from log text
    lines.append(facts)
    if card.variants:
        lines.append(slack_escape(card.variants_text))
    if card.summary:
        lines += [f"🤖 *{name}:* {slack_prose(_clip(text, prose_chars))}" for name, text in card.summary.fields()]
    else:
        lines.append(f"Template (raw; {slack_escape(card.fallback_note or '')}): "
                     f"{slack_code(card.template, template_chars)}")
    if card.varying:
        note = f" ({slack_escape(card.varying_note)})" if card.varying_note else ""
        lines.append(f"*What varies*{note}: " + " · ".join(slack_code(v, 200) for v in card.varying))
    blocks = [{"type": "divider"}, section("\n".join(lines))]
    body = "\n".join(("*Sample*" if index == 0 else "*Another shape*") + "\n" + slack_block(sample, sample_chars)
                     for index, sample in enumerate(card.samples))
    if body:
        blocks.append(section(body))
    return blocks


def _item(item) -> str:
    app = f"{slack_code(item.app, 80)}: " if item.app else ""
    title = f"🤖 {slack_prose(item.title)}" if item.ai else slack_code(item.title, 120)
    return f"{app}{title} {slack_code(item.fingerprint)}"


def day_blocks(o: Outgoing) -> list[dict]:
    day = o.day
    if day is None:
        return []
    lines = [f"*The day* · lines: *{day.lines_today:,}* ({slack_escape(o.day_delta)})"]
    for label, items in (("New today", day.new_today), ("Regressed today", day.regressed_today),
                         ("Spiking today", day.spiking_today)):
        lines.append(f"{label}: *{len(items)}*")
        lines += [f"• {_item(i)}" + (f" · {slack_escape(i.reported_in)}" if i.reported_in else "") for i in items[:10]]
    blocks = [{"type": "divider"}, section("\n".join(lines))]
    if day.top_ongoing:
        trend = ["*Top ongoing* (each mark is a slice of the day, `·` = no lines)"]
        trend += [f"{slack_code(t.spark)} {slack_escape(t.scale)} · {t.item.count} × {_item(t.item)}"
                  for t in day.top_ongoing]
        blocks.append(section("\n".join(trend)))
    if day.quiet:
        quiet = ["*Went quiet* (seen the day before, not today)"]
        quiet += [f"• {q.count} × {_item(q)}" for q in day.quiet]
        blocks.append(section("\n".join(quiet)))
    return blocks


def intro_blocks(o: Outgoing) -> list[dict]:
    header = {"type": "header", "text": {"type": "plain_text", "text": slack_plain(o.headline)[:MAX_HEADER],
                                         "emoji": True}}
    lines = [slack_escape(line) for line in o.intro_lines()]
    if o.disclaimer:
        lines.append(f"_{slack_prose(o.disclaimer)}_")
    blocks = [header, section("\n".join(lines)), *day_blocks(o)]
    if o.quiet_text:
        blocks.append(section(slack_escape(o.quiet_text)))
    return blocks


def rollup_text(o: Outgoing) -> str | None:
    """The roll-up line: names from the data in code spans, and a Grafana link built by us."""
    rollup = o.rollup
    if rollup is None:
        return None
    text = "… " + rollup_line(rollup, quote=lambda value: slack_code(value, 200))
    if rollup.grafana_url:
        text += f" · <{rollup.grafana_url}|Open them in Grafana Explore>"  # built by us, never from log text
    return text
