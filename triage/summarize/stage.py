"""The LLM stage: a card for each cluster that gets one, within a budget, with fallbacks.

Counts, times, status, labels and samples never come from here: the model only writes the
title, what happened, the likely cause and a next step. A cached summary costs nothing; a
failed, invalid or late answer falls back to the raw template for that card only.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from triage.records import Finding
from triage.summarize.budget import rank
from triage.summarize.llama import LlamaClient, LlmError
from triage.summarize.prompts import CARD_PROMPT, PromptRegistry
from triage.summarize.facts import allowed_numbers, keep_facts
from triage.summarize.fields import parsed_fields, prompt_sample
from triage.summarize.schema import CardText, InvalidAnswer, output_schema, parse_answer

log = logging.getLogger(__name__)


class Source:
    LLM = "llm"
    CACHE = "cache"
    FALLBACK = "fallback"
    BUDGET = "budget"
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class Summary:
    source: str
    text: CardText | None = None
    model: str | None = None
    prompt_version: str | None = None
    reason: str | None = None  # why a card fell back

    def to_json(self, template: str) -> dict:
        from triage.digest import card_title

        text = self.text
        return {
            "source": self.source,
            "title": text.title if text and text.title else card_title(template),
            "what_happened": text.what_happened if text else None,
            "likely_cause": text.likely_cause if text else None,
            "next_step": text.next_step if text else None,
            "model": self.model,
            "prompt_version": self.prompt_version,
        }


@dataclass(frozen=True, slots=True)
class CacheKey:
    fingerprint: str
    template_sha: str
    prompt_version: str
    model: str


def cache_key(fingerprint: str, template: str, prompt_version: str, model: str) -> CacheKey:
    return CacheKey(fingerprint, hashlib.sha256(template.encode()).hexdigest()[:16], prompt_version, model)


@dataclass(frozen=True, slots=True)
class Budget:
    max_clusters: int
    max_tokens: int
    deadline_s: float
    answer_tokens: int = 320


@dataclass(slots=True)
class LlmStats:
    """What the LLM stage did with the cards. ``written + cached + fallbacks + over_budget`` is the
    number of cards on every path; ``requests`` counts HTTP calls, so a server that could not be
    reached at all makes 0 requests and as many fallbacks as cards."""

    requests: int = 0
    written: int = 0
    cached: int = 0
    fallbacks: int = 0
    over_budget: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    durations_s: list[float] = field(default_factory=list)
    predicted_per_second: list[float] = field(default_factory=list)
    prompt_per_second: list[float] = field(default_factory=list)
    unavailable: str | None = None

    def to_json(self) -> dict:
        return {"requests": self.requests, "cached": self.cached, "fallbacks": self.fallbacks,
                "over_budget": self.over_budget, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens}


@dataclass(slots=True)
class StageResult:
    summaries: dict[str, Summary]
    stats: LlmStats
    new_cache: dict[CacheKey, CardText]
    prompt_version: str | None = None
    model: str | None = None


def disabled(cards: list[Finding]) -> StageResult:
    return StageResult({f.cluster.fingerprint: Summary(Source.DISABLED) for f in cards}, LlmStats(), {})


def unavailable(cards: list[Finding], reason: str, prompt_version: str | None) -> StageResult:
    stats = LlmStats(fallbacks=len(cards), unavailable=reason)
    summaries = {f.cluster.fingerprint: Summary(Source.FALLBACK, prompt_version=prompt_version, reason=reason)
                 for f in cards}
    return StageResult(summaries, stats, {}, prompt_version)


def _card_keys(cards: list[Finding], prompt_version: str, model: str) -> dict[str, CacheKey]:
    return {f.cluster.fingerprint: cache_key(f.cluster.fingerprint, f.cluster.template, prompt_version, model)
            for f in cards}


def from_cache_only(cards: list[Finding], *, model: str, registry: PromptRegistry,
                    lookup: Callable[[list[CacheKey]], dict[CacheKey, CardText]]) -> StageResult | None:
    """Every card from the cache, or None when one needs the model (so no server is started for nothing)."""
    prompt = registry.get(CARD_PROMPT)
    keys = _card_keys(cards, prompt.version, model)
    cached = lookup(list(keys.values()))
    if any(key not in cached for key in keys.values()):
        return None
    summaries = {fp: Summary(Source.CACHE, cached[key], model, prompt.version) for fp, key in keys.items()}
    return StageResult(summaries, LlmStats(cached=len(summaries)), {}, prompt.version, model)


def summarize(
    cards: list[Finding],
    *,
    client: LlamaClient,
    model: str,
    slots: int,
    registry: PromptRegistry,
    lookup: Callable[[list[CacheKey]], dict[CacheKey, CardText]],
    budget: Budget,
    refresh: bool = False,
    clock: Callable[[], float] = time.monotonic,
    tracer=None,
) -> StageResult:
    prompt = registry.get(CARD_PROMPT)
    stats = LlmStats()
    summaries: dict[str, Summary] = {}
    new_cache: dict[CacheKey, CardText] = {}
    keys = _card_keys(cards, prompt.version, model)
    cached = {} if refresh else lookup(list(keys.values()))
    to_ask: list[Finding] = []
    for finding in rank(cards):
        fingerprint = finding.cluster.fingerprint
        if keys[fingerprint] in cached:
            summaries[fingerprint] = Summary(Source.CACHE, cached[keys[fingerprint]], model, prompt.version)
            stats.cached += 1
        elif len(to_ask) < budget.max_clusters:
            to_ask.append(finding)
        else:
            summaries[fingerprint] = Summary(Source.BUDGET, model=model, prompt_version=prompt.version)
            stats.over_budget += 1

    deadline = clock() + budget.deadline_s
    parent_context = None
    if tracer is not None:
        from opentelemetry import context as otel_context

        parent_context = otel_context.get_current()  # pool threads start with an empty context
    lock = threading.Lock()
    schema = output_schema()

    def ask(finding: Finding) -> Summary:
        with lock:
            spent = stats.prompt_tokens + stats.completion_tokens
            remaining_s = deadline - clock()
            if spent >= budget.max_tokens or remaining_s <= 1:
                stats.over_budget += 1
                return Summary(Source.BUDGET, model=model, prompt_version=prompt.version)
            stats.requests += 1
        rendered = registry.render(CARD_PROMPT, **_context(finding))
        span_cm = (tracer.start_as_current_span(f"chat {model}", context=parent_context, attributes={
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "llama.cpp", "gen_ai.request.model": model,
            "gen_ai.request.max_tokens": budget.answer_tokens, "triage.fingerprint": finding.cluster.fingerprint,
        }) if tracer else contextlib.nullcontext())
        with span_cm as span:
            return _ask_once(finding, rendered, span, remaining_s)

    def fall_back(finding: Finding, span, err: Exception, what: str, reason: str) -> Summary:
        """This card shows its raw template; the digest says why."""
        if span is not None:
            _span_error(span, err)
        log.warning("%s: %s", what, err)
        with lock:
            stats.fallbacks += 1
        return Summary(Source.FALLBACK, model=model, prompt_version=prompt.version, reason=reason)

    def _ask_once(finding, rendered, span, remaining_s) -> Summary:
        try:
            completion = client.chat(rendered.messages(), schema=schema, max_tokens=budget.answer_tokens,
                                     timeout_s=min(client.timeout_s, remaining_s))
            if span is not None:
                span.set_attribute("gen_ai.usage.input_tokens", completion.prompt_tokens)
                span.set_attribute("gen_ai.usage.output_tokens", completion.completion_tokens)
                if completion.response_id:
                    span.set_attribute("gen_ai.response.id", completion.response_id)
                if completion.model:
                    span.set_attribute("gen_ai.response.model", completion.model)
        except LlmError as err:
            return fall_back(finding, span, err, f"LLM call for {finding.cluster.fingerprint} failed", str(err))
        with lock:
            stats.prompt_tokens += completion.prompt_tokens
            stats.completion_tokens += completion.completion_tokens
            stats.durations_s.append(completion.duration_s)
            if completion.predicted_per_second:
                stats.predicted_per_second.append(completion.predicted_per_second)
            if completion.prompt_per_second:
                stats.prompt_per_second.append(completion.prompt_per_second)
        try:
            text = checked_answer(completion.content, finding)
        except InvalidAnswer as err:
            return fall_back(finding, span, err, f"LLM answer for {finding.cluster.fingerprint} rejected",
                             f"invalid answer: {err}")
        with lock:
            new_cache[keys[finding.cluster.fingerprint]] = text
            stats.written += 1
        return Summary(Source.LLM, text, model, prompt.version)

    if to_ask:
        with ThreadPoolExecutor(max_workers=max(1, slots), thread_name_prefix="llm") as pool:
            for finding, summary in zip(to_ask, pool.map(ask, to_ask)):
                summaries[finding.cluster.fingerprint] = summary
    return StageResult(summaries, stats, new_cache, prompt.version, model)


def checked_answer(content: str, finding: Finding) -> CardText:
    """The model's answer parsed, sanitised, and without sentences stating numbers the card does not hold."""
    text, removed = keep_facts(parse_answer(content), allowed_numbers(finding.cluster.template, card_facts(finding)))
    if removed:
        log.info("card %s: dropped model sentences stating %s", finding.cluster.fingerprint, ", ".join(removed))
    if not any(getattr(text, name) for name in CardText.model_fields):
        raise InvalidAnswer(f"every sentence stated numbers the logs do not hold ({', '.join(removed)})")
    return text


def card_facts(finding: Finding) -> list[str]:
    """What a card shows as fact, so the model may repeat it: its count, labels and names."""
    cluster = finding.cluster
    return [str(cluster.count), *cluster.group_labels.values(), *cluster.namespaces, *cluster.apps, *cluster.pods]


def _span_error(span, err: Exception) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.record_exception(err)
    span.set_status(Status(StatusCode.ERROR, str(err)[:200]))


def _context(finding: Finding) -> dict:
    cluster = finding.cluster
    labels = cluster.group_labels
    return {
        "namespace": labels.get("namespace") or next(iter(cluster.namespaces), None),
        "app": next((v for k, v in labels.items() if k != "namespace"), None) or next(iter(cluster.apps), None),
        "status": str(finding.status),
        "template": cluster.template,
        "samples": cluster.samples[:2],
        # what the small model reads instead of raw samples: parsed fields, one sample with ids masked
        "fields": parsed_fields(cluster.samples[0], cluster.template) if cluster.samples else {},
        "sample": prompt_sample(cluster.samples[0]) if cluster.samples else "",
    }


def render_context(finding: Finding) -> dict:
    """The variables a card prompt sees (for ``triage prompts render``)."""
    return _context(finding)
