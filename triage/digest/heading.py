"""Card headings (pure): the app, then the AI title or the template cut at a token boundary.

Two services that fail with the same words ("context deadline exceeded while calling inventory")
are two problems, so the app always leads. A template is cut between tokens with an ellipsis,
never inside a placeholder: a heading never ends in ``queue capacity <…``.
"""

from __future__ import annotations

from triage.cluster.masking import WILDCARD
from triage.records import app_label

MAX_HEADING_CHARS = 90


def shorten(template: str, limit: int = MAX_HEADING_CHARS) -> str:
    """The template's first tokens that fit in ``limit`` characters, then `` …``."""
    tokens = template.split()
    text = " ".join(tokens)
    if len(text) <= limit:
        return text
    kept: list[str] = []
    length = 0
    for token in tokens:
        extra = len(token) + (1 if kept else 0)
        if length + extra > limit - 2:
            break
        kept.append(token)
        length += extra
    if not kept:  # one huge first token: cut it, but not inside a placeholder
        cut = limit - 2
        start = tokens[0].rfind(WILDCARD[0], 0, cut)
        if start != -1 and tokens[0][start:start + len(WILDCARD)] == WILDCARD and start + len(WILDCARD) > cut:
            cut = start
        kept = [tokens[0][:cut]]
    return " ".join(kept) + " …"


def app_of(labels: dict[str, str], apps: dict[str, int] | None = None) -> str | None:
    """The app a cluster belongs to: its group's app label, else its most frequent app."""
    app = app_label(labels)
    if app:
        return app
    if apps:
        return max(apps.items(), key=lambda item: (item[1], item[0]))[0]
    return labels.get("namespace")


def without_app(title: str, app: str | None) -> str:
    """The prompt asks for "<component>: <problem>"; when the component is the app, the heading says it already."""
    if app and title.lower().startswith(app.lower() + ":"):
        return title[len(app) + 1:].strip()
    return title
