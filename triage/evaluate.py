"""``triage eval summaries``: score the card prompt and model on a labelled set."""

from __future__ import annotations

import json
import re
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
from triage.summarize.schema import InvalidAnswer, output_schema
from triage.summarize.stage import checked_answer, render_context

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
    answer: dict | None = None  # the card as the model wrote it (after sanitising), for re-scoring


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
            card = checked_answer(completion.content, finding)  # what a digest would show
        except (LlmError, InvalidAnswer) as err:
            result.error = str(err)
            report.cases.append(result)
            continue
        result.valid = True
        result.title = card.title
        result.answer = card.model_dump()
        result.names_component, result.names_cause = score(result.answer, case)
        report.cases.append(result)
    return report


# Words that say nothing about a cause, left out when telling an explanation from an echo of the log.
_STOPWORDS = frozenset("""a an the is are was were be been being of to in on at for from by with and or not no
this that these those it its as but if then than so such can could may might will would should there their
which who what when where while because due likely most probably error errors failed failure fails""".split())
_WORD = re.compile(r"[a-z][a-z0-9]*")
EXPLANATION_WORDS = 3
STEM = 5  # "verification" echoes "verify", "handshake" echoes "handshaking"


def score(answer: dict, case: dict) -> tuple[bool, bool]:
    """(names the component, names the cause), matched on word starts, not inside other words.

    The cause counts only in ``likely_cause``, and only when it explains: a cause word that is not in
    the log, or one that is, in a sentence with at least EXPLANATION_WORDS content words the log does not
    hold. A likely cause that repeats the log line ("failed to flush chunks: no space left on device")
    names nothing the engineer did not already read.
    """
    log_words = {word[:STEM] for word in _WORD.findall(" ".join(case["lines"]).lower())}
    about = f"{answer['title']} {answer['what_happened']} {answer['likely_cause']}".lower()
    cause = answer["likely_cause"].lower()
    names_component = any(_has_term(about, term) for term in case["component"])
    new_words = {w for w in _WORD.findall(cause) if w[:STEM] not in log_words and w not in _STOPWORDS and len(w) > 2}
    names_cause = False
    for term in case["cause"]:
        if not _has_term(cause, term):
            continue
        echoed = all(word[:STEM] in log_words for word in _WORD.findall(term.lower()))
        if not echoed or len(new_words) >= EXPLANATION_WORDS:
            names_cause = True
            break
    return names_component, names_cause


def _has_term(text: str, term: str) -> bool:
    return re.search(r"(?<![a-z0-9])" + re.escape(term.lower()), text) is not None


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
