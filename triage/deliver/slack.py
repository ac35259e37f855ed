"""Slack incoming webhook: Block Kit within Slack's limits, split in order, nothing from data can ping or link.

Limits kept: at most 50 blocks per message, 3000 characters per section text, 150 per header.
Text from logs and from the model has ``& < >`` escaped (so ``<!channel>``, ``<@U123>`` and
``<http://…|…>`` cannot form), ``@channel``-style words broken, and log text sits in code spans
and blocks, which Slack does not turn into links. Messages go about one per second; a 429 waits
for its Retry-After, a 5xx is retried with backoff, another 4xx fails the channel.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import requests
from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from triage.deliver import DeliveryResult
from triage.deliver.content import Card, Outgoing

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


def card_blocks(card: Card) -> list[dict]:
    badge = {"new": "🆕 *NEW*", "regressed": "↩️ *REGRESSED*", "spiking": "📈 *SPIKING*"}.get(card.status, "• ongoing")
    title = f"🤖 {escape(card.summary.title)}" if card.summary else code(card.title, 140)
    lines = [f"{badge}{' (muted)' if card.muted else ''} · {title}"]
    facts = [f"fingerprint {code(card.fingerprint)}"]
    if card.pending_since_ns is not None:
        facts.append(f"pending since {card.pending_since_text}")
    else:
        facts.append(f"*{card.count}* in this window")
    facts.append(f"first seen {card.first_seen_text} · last seen {card.last_seen_text}")
    lines.append(" · ".join(facts))
    where = " · ".join(f"{name} {', '.join(code(v, 80) for v in values)}" for name, values in card.where() if values)
    if where:
        lines.append(where)
    if card.summary:
        lines.append(f"🤖 *What happened:* {escape(card.summary.what_happened)}")
        lines.append(f"🤖 *Likely cause:* {escape(card.summary.likely_cause)}")
        lines.append(f"🤖 *Next step:* {escape(card.summary.next_step)}")
    if card.explore_url:
        lines.append(f"<{card.explore_url}|Open in Grafana Explore>")  # built by us, never from log text
    blocks = [{"type": "divider"}, _section("\n".join(lines))]
    sample = card.samples[0] if card.samples else None
    body = f"*Template*\n{code_block(card.template, 900)}"
    if sample:
        body += f"\n*Sample*\n{code_block(sample, 1500)}"
    blocks.append(_section(body))
    return blocks


def build_messages(outgoing: Outgoing) -> list[dict]:
    header = {"type": "header", "text": {"type": "plain_text", "text": outgoing.headline[:MAX_HEADER], "emoji": True}}
    intro = [header, _section("\n".join(escape(line) for line in outgoing.intro_lines()))]
    footer = {"type": "context", "elements": [{"type": "mrkdwn", "text": escape(outgoing.footer)[:MAX_SECTION]}]}
    messages: list[list[dict]] = [list(intro)]
    for card in outgoing.cards:
        blocks = card_blocks(card)
        if len(messages[-1]) + len(blocks) > MAX_BLOCKS - 1:
            messages.append([])
        messages[-1].extend(blocks)
    if outgoing.more:
        if len(messages[-1]) + 1 > MAX_BLOCKS - 1:
            messages.append([])
        messages[-1].append(_section(f"… and {outgoing.more} more (see the file digest)"))
    messages[-1].append(footer)
    total = len(messages)
    payloads = []
    for index, blocks in enumerate(messages, start=1):
        fallback = f"{outgoing.headline} ({index}/{total})" if total > 1 else outgoing.headline
        payloads.append({"text": escape(fallback), "blocks": blocks, "unfurl_links": False, "unfurl_media": False})
    return payloads


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
        payloads = build_messages(outgoing)
        for index, payload in enumerate(payloads):
            if index:
                self._sleep(self.pause_s)  # Slack allows about one message per second per webhook
            try:
                self._post(payload)
            except _Failed as err:
                sent = f" after {index} of {len(payloads)} messages" if index else ""
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
