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

import time
from collections.abc import Callable
from dataclasses import dataclass

import requests
from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from triage.deliver import DeliveryResult
from triage.deliver.content import Card, Outgoing
from triage.digest import slack_blocks
from triage.digest.slack_blocks import (  # noqa: F401  (escape, code, code_block: the channel's own names)
    MAX_HEADER, MAX_SECTION, code, code_block, escape, intro_blocks, section,
)

MAX_BLOCKS = 50


class _Retryable(Exception):
    def __init__(self, message: str, retry_after_s: float | None = None):
        super().__init__(message)
        self.retry_after_s = retry_after_s


# Characters of a Slack card's parts: 20 plain cards fit in two or three posts (fewer with AI text and Grafana links).
AI_CHARS = 300  # each model-written field
TEMPLATE_CHARS = 240
SAMPLE_CHARS = 300
# Slack refuses a message whose blocks hold too much text in total ("msg_blocks_too_long"), at a
# limit it does not document: about 12,000 characters was measured to fail and 9,600 to pass.
POST_TEXT_BUDGET = 9000
MAX_POSTS = 3  # one message per run; split only when the cards alone need it, never past three


def card_blocks(card: Card) -> list[dict]:
    """The card as the digest renders it for Slack, with its parts clipped to this channel's budget."""
    return slack_blocks.card_blocks(card, template_chars=TEMPLATE_CHARS, sample_chars=SAMPLE_CHARS, prose_chars=AI_CHARS)


def rollup_blocks(outgoing: Outgoing) -> list[dict]:
    text = slack_blocks.rollup_text(outgoing)
    return [section(text)] if text else []


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
    intro = intro_blocks(outgoing)
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
