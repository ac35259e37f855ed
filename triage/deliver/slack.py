"""Slack incoming webhook: Block Kit within Slack's limits, split in order, nothing from data can ping or link.

Limits kept: at most 50 blocks per message, 3000 characters per section text, 150 per header,
and about 9,000 characters of block text per message (Slack's undocumented total). One run is one
message; it is split into at most three posts only when the cards alone need it, and cards that
would need a fourth join the roll-up line instead (the dispatcher ledgers each post as accepted).
Text from logs and from the model has ``& < >`` escaped (so ``<!channel>``, ``<@U123>`` and
``<http://…|…>`` cannot form), ``@channel``-style words broken, and log text sits in code spans
and blocks, which Slack does not turn into links. Messages go about one per second; a 429 waits
for its Retry-After, a 5xx is retried with backoff, another 4xx fails the channel.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from collections.abc import Callable

import requests
from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from triage.deliver import DeliveryResult
from triage.deliver.content import Card, Outgoing
from triage.deliver.plan import rollup_line

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_HEADER = 150
_MENTION_WORD = re.compile(r"@(channel|here|everyone)\b", re.I)


class _Retryable(Exception):
    def __init__(self, message: str, retry_after_s: float | None = None):
        super().__init__(message)
        self.retry_after_s = retry_after_s


def escape(text: str) -> str:
    text = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MENTION_WORD.sub(lambda m: "@\u200b" + m.group(1), text)


def code(text: str, limit: int = 300) -> str:
    text = escape(" ".join(str(text).split())).replace("`", "ʹ")
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"`{text}`" if text else "` `"


def code_block(text: str, limit: int = 1200) -> str:
    text = escape(str(text)).replace("```", "ʹʹʹ")
    if len(text) > limit:
        text = text[:limit] + " …"
    return f"```{text}```"


def _section(text: str) -> dict:
    if len(text) > MAX_SECTION:
        text = text[: MAX_SECTION - 2] + "…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


# Characters of a Slack card's parts: 20 plain cards fit in two or three posts (fewer with AI text and Grafana links).
AI_CHARS = 300  # each model-written field
TEMPLATE_CHARS = 240
SAMPLE_CHARS = 300
# Slack refuses a message whose blocks hold too much text in total ("msg_blocks_too_long"), at a
# limit it does not document: about 12,000 characters was measured to fail and 9,600 to pass.
POST_TEXT_BUDGET = 9000
MAX_POSTS = 3  # one message per run; split only when the cards alone need it, never past three


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def card_blocks(card: Card) -> list[dict]:
    """A divider and one section (within 3000 characters, code fences kept whole)."""
    badge = {"new": "🆕 *NEW*", "regressed": "↩️ *REGRESSED*", "spiking": "📈 *SPIKING*"}.get(card.status, "• ongoing")
    title = f"🤖 {escape(_clip(card.summary.title, 150))}" if card.summary else code(card.title, 140)
    lines = [f"{badge}{' (muted)' if card.muted else ''} · {title}"]
    facts = [f"fingerprint {code(card.fingerprint)}"]
    if card.pending_since_ns is not None:
        facts.append(f"pending since {card.pending_since_text}")
    else:
        facts.append(f"*{card.count}* in this window")
    facts.append(f"first seen {card.first_seen_text} · last seen {card.last_seen_text}")
    lines.append(" · ".join(facts))
    where = " · ".join(f"{name} {', '.join(code(v, 60) for v in values)}" for name, values in card.where() if values)
    if where:
        lines.append(where)
    if card.summary:
        lines.append(f"🤖 *What happened:* {escape(_clip(card.summary.what_happened, AI_CHARS))}")
        lines.append(f"🤖 *Likely cause:* {escape(_clip(card.summary.likely_cause, AI_CHARS))}")
        lines.append(f"🤖 *Next step:* {escape(_clip(card.summary.next_step, AI_CHARS))}")
    if card.explore_url:
        lines.append(f"<{card.explore_url}|Open in Grafana Explore>")  # built by us, never from log text
    head = "\n".join(lines)
    room = MAX_SECTION - len(head) - 40
    shorter = 40 if card.summary else 0  # the AI text already says what it is about
    body = f"*Template*\n{code_block(card.template, max(40, min(TEMPLATE_CHARS - shorter, room // 2)))}"
    sample = card.samples[0] if card.samples else None
    if sample and room - len(body) > 80:
        body += f"\n*Sample*\n{code_block(sample, min(SAMPLE_CHARS - 2 * shorter, room - len(body) - 20))}"
    return [{"type": "divider"}, _section(f"{head}\n{body}")]


def rollup_blocks(outgoing: Outgoing) -> list[dict]:
    rollup = outgoing.rollup
    if rollup is None:
        return []
    text = "… " + rollup_line(rollup, quote=lambda value: code(value, 200))
    if rollup.grafana_url:
        text += f" · <{rollup.grafana_url}|Open them in Grafana Explore>"  # built by us, never from log text
    return [_section(text)]


@dataclass(frozen=True, slots=True)
class Post:
    """One webhook post and the clusters it carries (cards; the roll-up's rides on the last post)."""

    payload: dict
    fingerprints: tuple[str, ...]
    rolled: tuple[str, ...] = ()


def _text_size(blocks: list[dict]) -> int:
    size = 0
    for block in blocks:
        if "text" in block:
            size += len(block["text"]["text"])
        for element in block.get("elements", ()):
            size += len(element.get("text", ""))
    return size


def build_posts(outgoing: Outgoing) -> list[Post]:
    """Pack the message into as few posts as Slack's limits allow (blocks, section and total text)."""
    header = {"type": "header", "text": {"type": "plain_text", "text": outgoing.headline[:MAX_HEADER], "emoji": True}}
    intro = [header, _section("\n".join(escape(line) for line in outgoing.intro_lines()))]
    footer = {"type": "context", "elements": [{"type": "mrkdwn", "text": escape(outgoing.footer)[:MAX_SECTION]}]}
    tail = [*rollup_blocks(outgoing), footer]
    posts: list[tuple[list[dict], list[str]]] = [(list(intro), [])]
    for card in outgoing.cards:
        blocks = card_blocks(card)
        current, carried = posts[-1]
        if carried and (len(current) + len(blocks) > MAX_BLOCKS - 1
                        or _text_size(current) + _text_size(blocks) > POST_TEXT_BUDGET):
            posts.append(([], []))
            current, carried = posts[-1]
        current.extend(blocks)
        carried.append(card.fingerprint)
    current, _ = posts[-1]
    if len(current) + len(tail) > MAX_BLOCKS or _text_size(current) + _text_size(tail) > POST_TEXT_BUDGET:
        posts.append(([], []))
    posts[-1][0].extend(tail)
    total = len(posts)
    result = []
    for index, (blocks, carried) in enumerate(posts, start=1):
        fallback = f"{outgoing.headline} ({index}/{total})" if total > 1 else outgoing.headline
        payload = {"text": escape(fallback), "blocks": blocks, "unfurl_links": False, "unfurl_media": False}
        rolled = outgoing.rollup.fingerprints if outgoing.rollup and index == total else ()
        result.append(Post(payload, tuple(carried), tuple(rolled)))
    return result


def build_messages(outgoing: Outgoing) -> list[dict]:
    return [post.payload for post in build_posts(outgoing)]


class SlackChannel:
    name = "slack"

    def __init__(self, webhook_url: str, *, timeout_s: float = 10.0, max_retries: int = 4,
                 sleep: Callable[[float], None] = time.sleep, pause_s: float = 1.0):
        self.webhook_url = webhook_url
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self._sleep = sleep
        self.pause_s = pause_s
        self._session = requests.Session()

    def send(self, outgoing: Outgoing) -> DeliveryResult:
        """Every post of the message, in order (the dispatcher posts one by one to ledger each)."""
        posts = build_posts(outgoing)
        for index, post in enumerate(posts):
            result = self.send_post(post, index, len(posts))
            if not result.ok:
                return result
        return DeliveryResult(self.name, True)

    def send_post(self, post: Post, index: int, total: int) -> DeliveryResult:
        if index:
            self._sleep(self.pause_s)  # Slack allows about one message per second per webhook
        try:
            self._post(post.payload)
        except _Failed as err:
            sent = f" after {index} of {total} posts" if index else ""
            return DeliveryResult(self.name, False, f"{err}{sent}")
        return DeliveryResult(self.name, True)

    def _post(self, payload: dict) -> None:
        def wait(retry_state) -> float:
            backoff = wait_random_exponential(multiplier=0.5, max=30)(retry_state)
            hinted = getattr(retry_state.outcome.exception(), "retry_after_s", None)
            return max(backoff, min(hinted, 300.0)) if hinted is not None else backoff

        try:
            Retrying(stop=stop_after_attempt(self.max_retries + 1), wait=wait,
                     retry=retry_if_exception_type(_Retryable), sleep=self._sleep)(self._post_once, payload)
        except RetryError as err:
            raise _Failed(f"{err.last_attempt.exception()} (gave up after {self.max_retries + 1} attempts)") from None

    def _post_once(self, payload: dict) -> None:
        try:
            response = self._session.post(self.webhook_url, json=payload, timeout=self.timeout_s)
        except requests.RequestException as err:
            raise _Retryable(f"request failed: {type(err).__name__}") from None
        if response.status_code == 200:
            return
        body = response.text.strip()[:200]
        if response.status_code == 429:
            retry_after = response.headers.get("Retry-After", "")
            raise _Retryable("HTTP 429 rate limited", float(retry_after) if retry_after.isdigit() else None)
        if response.status_code >= 500:
            raise _Retryable(f"HTTP {response.status_code} {body}")
        raise _Failed(f"HTTP {response.status_code} {body}")


class _Failed(Exception):
    pass
