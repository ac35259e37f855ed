"""``triage eval summaries``: score the card prompt and model on a labelled set."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from triage.cluster.miner import Miner
from triage.errors import UsageError
from triage.extract import extract
from triage.records import ClusterWindow, Finding, LogRecord, Status
from triage.redact import redact
from triage.summarize.llama import LlamaClient, LlmError
from triage.summarize.prompts import CARD_PROMPT, PromptRegistry
from triage.summarize.schema import InvalidAnswer, output_schema, parse_answer
from triage.summarize.stage import render_context

DEFAULT_SET = Path(__file__).resolve().parents[1] / "eval" / "summaries.jsonl"


@dataclass(slots=True)
class CaseResult:
    name: str
    valid: bool
    names_component: bool = False
    names_cause: bool = False
    duration_s: float = 0.0
    completion_tokens: int = 0
    predicted_per_second: float | None = None
    title: str | None = None
    error: str | None = None


@dataclass(slots=True)
class EvalReport:
    model: str
    prompt_version: str
    cases: list[CaseResult] = field(default_factory=list)

    def summary(self) -> dict:
        count = len(self.cases)
        durations = [c.duration_s for c in self.cases if c.duration_s]
        speeds = [c.predicted_per_second for c in self.cases if c.predicted_per_second]
        tokens = sum(c.completion_tokens for c in self.cases)
        return {
            "cases": count,
            "model": self.model,
            "prompt_version": self.prompt_version,
            "valid_json_rate": round(sum(c.valid for c in self.cases) / count, 3) if count else 0.0,
            "names_component_rate": round(sum(c.names_component for c in self.cases) / count, 3) if count else 0.0,
            "names_cause_rate": round(sum(c.names_cause for c in self.cases) / count, 3) if count else 0.0,
            "latency_s_mean": round(statistics.fmean(durations), 2) if durations else None,
            "latency_s_p50": round(statistics.median(durations), 2) if durations else None,
            "latency_s_max": round(max(durations), 2) if durations else None,
            "completion_tokens_per_s": round(tokens / sum(durations), 1) if durations else None,
            "server_predicted_tokens_per_s": round(statistics.fmean(speeds), 1) if speeds else None,
        }


def load_set(path: Path) -> list[dict]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise UsageError(f"--set {path}: {err.strerror}") from None
    cases = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            case = json.loads(line)
            assert isinstance(case["lines"], list) and case["component"] and case["cause"]
        except (ValueError, KeyError, TypeError, AssertionError):
            raise UsageError(f"{path}:{number}: needs name, labels, lines, component and cause") from None
        cases.append(case)
    return cases


def evaluate(cases: list[dict], client: LlamaClient, model: str, registry: PromptRegistry,
             answer_tokens: int = 320) -> EvalReport:
    report = EvalReport(model=model, prompt_version=registry.get(CARD_PROMPT).version)
    for case in cases:
        finding = _finding(case)
        rendered = registry.render(CARD_PROMPT, **render_context(finding))
        result = CaseResult(name=case.get("name", "?"), valid=False)
        try:
            completion = client.chat(rendered.messages(), schema=output_schema(), max_tokens=answer_tokens)
            result.duration_s = completion.duration_s
            result.completion_tokens = completion.completion_tokens
            result.predicted_per_second = completion.predicted_per_second
            card = parse_answer(completion.content)
        except (LlmError, InvalidAnswer) as err:
            result.error = str(err)
            report.cases.append(result)
            continue
        result.valid = True
        result.title = card.title
        about = f"{card.title} {card.what_happened} {card.likely_cause}".lower()
        cause = f"{card.likely_cause} {card.what_happened}".lower()
        result.names_component = any(word.lower() in about for word in case["component"])
        result.names_cause = any(word.lower() in cause for word in case["cause"])
        report.cases.append(result)
    return report


def _finding(case: dict) -> Finding:
    miner = Miner("eval")
    labels = {str(k): str(v) for k, v in (case.get("labels") or {}).items()}
    cluster = None
    for line in case["lines"]:
        event = redact(extract(LogRecord(0, labels, line)))
        match = miner.add(event.message)
        if cluster is None:
            cluster = ClusterWindow(match.fingerprint, match.template, labels)
        cluster.template = match.template
        cluster.add(event, labels.get("app"))
    return Finding(cluster=cluster, status=Status.NEW, muted=False, first_seen_ns=0, last_seen_ns=0)
