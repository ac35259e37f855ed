"""Slack incoming webhook: Block Kit within Slack's limits, split in order, nothing from data can ping or link.

Limits kept: at most 50 blocks per message, 3000 characters per section text, 150 per header.
Text from logs and from the model has ``& < >`` escaped (so ``<!channel>``, ``<@U123>`` and
``<http://…|…>`` cannot form), ``@channel``-style words broken, and log text sits in code spans
and blocks, which Slack does not turn into links. Messages go about one per second; a 429 waits
for its Retry-After, a 5xx is retried with backoff, another 4xx fails the channel.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import requests
from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from triage.deliver import DeliveryResult
from triage.deliver.content import Outgoing
from triage.digest.slack_blocks import (  # noqa: F401  (escape, code, code_block: the channel's own names)
    MAX_HEADER, MAX_SECTION, card_blocks, code, code_block, escape, intro_blocks, rollup_text, section,
)

MAX_BLOCKS = 50


class _Retryable(Exception):
    def __init__(self, message: str, retry_after_s: float | None = None):
        super().__init__(message)
        self.retry_after_s = retry_after_s


def build_messages(outgoing: Outgoing) -> list[dict]:
    intro = intro_blocks(outgoing)
    footer = {"type": "context", "elements": [{"type": "mrkdwn", "text": escape(outgoing.footer)[:MAX_SECTION]}]}
    messages: list[list[dict]] = [list(intro)]
    for card in outgoing.cards:
        blocks = card_blocks(card)
        if len(messages[-1]) + len(blocks) > MAX_BLOCKS - 1:
            messages.append([])
        messages[-1].extend(blocks)
    rollup = rollup_text(outgoing)
    if rollup:
        if len(messages[-1]) + 1 > MAX_BLOCKS - 1:
            messages.append([])
        messages[-1].append(section(rollup))
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
