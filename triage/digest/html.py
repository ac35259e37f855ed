"""The HTML e-mail part (pure, jinja2 with autoescape): inline CSS only, readable at 390 px."""

from __future__ import annotations

import jinja2

from triage.digest.cards import Outgoing
from triage.digest.escape import clean, clip_block

_ENV: jinja2.Environment | None = None


def render_html(outgoing: Outgoing) -> str:
    return _environment().get_template("email.html.j2").render(o=outgoing)


def _environment() -> jinja2.Environment:
    global _ENV  # a compiled-template cache, not state
    if _ENV is None:
        _ENV = jinja2.Environment(loader=jinja2.PackageLoader("triage", "templates"), autoescape=True,
                                  undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        _ENV.filters.update(clip=clip_block, n="{:,}".format)  # 386,643: counts read at a glance
        _ENV.finalize = lambda value: clean(value) if isinstance(value, str) else value
    return _ENV
