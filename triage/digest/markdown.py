"""The markdown digest (pure, jinja2): the file every run writes, and what ``--dry-run`` prints.

Every piece of log text lands inside a code span or a fenced block whose fence is longer than
any backtick run in it, so a log line can never become a heading, a link, an image or HTML.
Model prose is escaped for markdown only where markdown would act (``escape.md_prose``).
"""

from __future__ import annotations

import jinja2

from triage.deliver.plan import place_of, rollup_line
from triage.digest.cards import STATUS_ICON, STATUS_LABEL, build_outgoing
from triage.digest.escape import code_block, code_span, md_prose
from triage.digest.heading import shorten
from triage.digest.model import DayItem, DigestInput
from triage.digest.times import at, span


def render_digest(data: DigestInput) -> str:
    outgoing = build_outgoing(data)
    return _environment().get_template("digest.md.j2").render(d=data, o=outgoing)


def rolled_item(finding) -> str:
    """A line of the file digest's full list below the roll-up: status, fingerprint, count, template."""
    status = str(finding.status)
    muted = " (muted)" if finding.muted else ""
    return (f"{STATUS_ICON.get(status, '•')} {STATUS_LABEL.get(status, status)}{muted} · "
            f"{code_span(finding.cluster.fingerprint)} · {finding.cluster.count} × "
            f"{code_span(shorten(finding.cluster.template))}")


def day_item(item: DayItem) -> str:
    """``checkout``: 🤖 payment authorization failed ``fp``, or ``checkout``: ``the template …`` ``fp``."""
    app = f"{code_span(item.app)}: " if item.app else ""
    title = f"🤖 {md_prose(item.title)}" if item.ai else code_span(item.title)
    return f"{app}{title} {code_span(item.fingerprint)}"


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
        env.filters.update(n="{:,}".format, code=code_span, block=code_block, prose=md_prose, item=day_item, at=at,
                           codes=lambda values: ", ".join(code_span(v) for v in values),
                           rollup=lambda rollup: rollup_line(rollup, quote=code_span), rolled=rolled_item,
                           place=lambda finding: code_span(place_of(finding)), duration=span)
        _ENV = env
    return _ENV
