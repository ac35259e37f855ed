"""Text made safe for each target at render time (pure): markdown, HTML, Slack mrkdwn, plain text.

Model prose arrives sanitised (``summarize.schema.sanitize``: no links, mentions, tags or control
characters) but otherwise verbatim: underscores, parentheses and values are kept, because an
identifier like ``SSL_do_handshake`` or a fact like ``(rss=1019Mi limit=1Gi)`` is the point of the
sentence. Each renderer escapes only what its own target would act on, and plain text escapes
nothing, so no reader ever sees an escape backslash. Log text goes into code spans and blocks.
"""

from __future__ import annotations

import re

from markupsafe import escape as _html_escape

MAX_SAMPLE_CHARS = 1200
MAX_SAMPLE_LINES = 15
# Control and bidi characters could disguise what a line says (terminal escapes, RTL overrides).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")
_MENTION_WORD = re.compile(r"@(channel|here|everyone)\b", re.I)


def clean(text: str) -> str:
    """Drop control and bidi characters that could disguise what a line says."""
    return _CONTROL.sub("�", str(text))


def one_line(text: str) -> str:
    return " ".join(clean(text).split())


# ---------------------------------------------------------------------------- markdown (CommonMark + GFM)

# What markdown acts on inside a paragraph: backslash escapes, code, emphasis (``*`` anywhere,
# ``_`` only at a word edge: CommonMark never opens emphasis inside a word), links and images
# (``[``), raw HTML and autolinks (``<``), entities (``&``) and GFM strikethrough (``~``).
# Parentheses, ``#`` and ``|`` mid-line do nothing and are left alone.
_MD_ACTIVE = re.compile(r"[\\`*\[\]~]|(?<!\w)_|_(?!\w)")


def md_prose(text: str) -> str:
    """Model prose for markdown: the characters that would act are escaped, nothing else."""
    text = one_line(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_ACTIVE.sub(lambda m: "\\" + m.group(0), text)


def code_span(text: str) -> str:
    text = one_line(text) if text is not None else ""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def clip_block(text: str, max_lines: int = MAX_SAMPLE_LINES, max_chars: int = MAX_SAMPLE_CHARS) -> str:
    """A sample as shown in every channel: at most ``max_lines`` lines and ``max_chars`` characters."""
    lines = clean(str(text)).split("\n")
    body = "\n".join(lines[:max_lines])
    if len(body) > max_chars:
        return body[:max_chars] + " …"
    if len(lines) > max_lines:
        body += f"\n… ({len(lines) - max_lines} more lines)"
    return body


def code_block(text: str, lang: str = "text") -> str:
    body = clip_block(text)
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{body}\n{fence}"


# ---------------------------------------------------------------------------- HTML


def html(text: str) -> str:
    return str(_html_escape(clean(text)))


# ---------------------------------------------------------------------------- Slack mrkdwn

# Slack has no backslash escape: ``& < >`` become entities (so ``<!channel>``, ``<@U1>`` and
# ``<http://…|…>`` cannot form) and a formatting character that could pair up (``*bold*``,
# ``_italic_`` at word edges, ``~strike~``, ``` `code` ```) gets a zero-width space after it, which
# breaks the pairing and leaves the text as it reads.
_SLACK_ACTIVE = re.compile(r"[*~`]|(?<!\w)_|_(?!\w)")


def slack_escape(text: str) -> str:
    text = clean(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MENTION_WORD.sub(lambda m: "@\u200b" + m.group(1), text)


_SLACK_TOKEN_START = re.compile(r"<(?=[!@#]|\w+://|mailto:)", re.I)


def slack_plain(text: str) -> str:
    """For ``plain_text`` objects (the header): no entities there, so a ``<`` that could open ``<!channel>``,
    ``<@U1>`` or a link gets a zero-width space after it, and ``@here``-style words are broken."""
    text = _SLACK_TOKEN_START.sub("<\u200b", one_line(text))
    return _MENTION_WORD.sub(lambda m: "@\u200b" + m.group(1), text)


def slack_prose(text: str) -> str:
    return _SLACK_ACTIVE.sub(lambda m: m.group(0) + "\u200b", slack_escape(one_line(text)))


def slack_code(text: str, limit: int = 300) -> str:
    text = slack_escape(one_line(text)).replace("`", "ʹ")
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"`{text}`" if text else "` `"


def slack_block(text: str, limit: int = 1200) -> str:
    text = slack_escape(clip_block(text, max_chars=limit)).replace("```", "ʹʹʹ")
    return f"```{text}```"
