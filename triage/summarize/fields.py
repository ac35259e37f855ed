"""What a small model needs from a log line (pure): the parsed fields, not timestamps and ids.

A 0.5B model reads ``ts=1796112430 ... order_id=797032`` and writes about the Unix time or the
order. Given ``level: error · upstream: payments:8080 · error: context deadline exceeded`` it
writes about the dependency. So the prompt gets the fields that say what failed (level, logger or
caller, status, upstream or peer, the exception type) and a sample whose timestamps, ids and
addresses are masked, never the raw values.
"""

from __future__ import annotations

import json
import re

from triage.extract import _flatten, _logfmt  # the same field parsing the extract stage groups on

MAX_FIELDS = 8
MAX_VALUE_CHARS = 80
# Field names that say what failed and where, in the order the prompt lists them.
FIELD_GROUPS = (
    ("level", ("level", "lvl", "severity", "levelname", "log.level")),
    ("logger", ("logger", "logger_name", "caller", "component", "module", "source", "name")),
    ("status", ("status", "status_code", "http_status", "code", "grpc_code")),
    ("upstream", ("upstream", "peer", "target", "host", "addr", "service", "dependency", "url")),
    ("error", ("error", "err", "reason", "exception", "error.message", "error_message")),
    ("what", ("topic", "bucket", "pool", "provider", "queue", "table", "path", "method", "index")),
)
_EXCEPTION = re.compile(r"\b((?:[a-zA-Z_][\w$]*\.)*[A-Z][\w$]*(?:Exception|Error|Fault|Throwable))\b")
_GO_PANIC = re.compile(r"^(panic|fatal error): (.*)$", re.M)
_PLAIN_LEVEL = re.compile(r"\b(ERROR|FATAL|PANIC|CRITICAL|WARN|WARNING|SEVERE)\b|\[(error|crit|alert|emerg|warn)\]")
# Values a model should not see as facts: times, ids, addresses, long numbers.
_MASKS = (
    (re.compile(r"\b\d{4}[-/]\d{2}[-/]\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?"), "<time>"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I), "<uuid>"),
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b"), "<ip>"),
    (re.compile(r"\b0x[0-9a-f]+\b|\b[0-9a-f]{12,}\b", re.I), "<hex>"),
    (re.compile(r"\b\d{6,}\b"), "<n>"),
)
_ID_KEY = re.compile(r"(?i)(^|[._])(id|uuid|ts|time|timestamp|trace|span|request|order)(_?id)?$")


def parsed_fields(sample: str, template: str = "") -> dict[str, str]:
    """The fields of a JSON or logfmt line (or a stack trace) that say what failed, masked; a field whose
    value the template already shows verbatim is left out (the model reads it there)."""
    first = sample.strip().split("\n", 1)[0]
    fields: dict = {}
    stripped = first.strip()
    if stripped.startswith("{") and stripped.endswith("}"):
        try:
            body = json.loads(stripped)
            fields = _flatten(body) if isinstance(body, dict) else {}
        except (ValueError, RecursionError):
            fields = {}
    elif "=" in stripped:
        fields = _logfmt(stripped)
    lowered = {str(k).lower(): v for k, v in fields.items() if not _ID_KEY.search(str(k))}
    found: dict[str, str] = {}
    for label, names in FIELD_GROUPS:
        for name in names:
            value = lowered.get(name)
            if isinstance(value, str | int | float) and str(value).strip() and label not in found:
                found[label if label != "what" else name] = mask_values(str(value))[:MAX_VALUE_CHARS]
    if "level" not in found:
        plain = _PLAIN_LEVEL.search(sample[:300])
        if plain:
            found["level"] = (plain.group(1) or plain.group(2)).lower()
    exception = _EXCEPTION.search(sample) or _GO_PANIC.search(sample)
    if exception:
        found["exception"] = exception.group(0)[:MAX_VALUE_CHARS] if exception.re is _GO_PANIC else exception.group(1)
    kept = {k: v for k, v in found.items() if k in ("level", "exception") or v not in template}
    return dict(list(kept.items())[:MAX_FIELDS])


def mask_values(text: str) -> str:
    for pattern, mask in _MASKS:
        text = pattern.sub(mask, text)
    return text


def prompt_sample(sample: str, max_lines: int = 6) -> str:
    """One sample for the prompt: its first lines, timestamps, ids and addresses masked."""
    lines = sample.strip("\n").split("\n")
    text = "\n".join(lines[:max_lines]) + (f"\n… ({len(lines) - max_lines} more lines)" if len(lines) > max_lines else "")
    text = re.sub(r'(?i)\b(ts|time|timestamp)=("[^"]*"|\S+)\s*', "", text)  # logfmt times say nothing
    text = re.sub(r'(?i)"(ts|time|timestamp|@timestamp)":\s*("[^"]*"|[\d.]+),?\s*', "", text)
    text = re.sub(r'(?i)\b(\w*_id|id)=("[^"]*"|[^\s"]+)', r"\1=<id>", text)  # ids say nothing either
    text = re.sub(r'(?i)"(\w*_id|id)":\s*("[^"]*"|\d+)', r'"\1": "<id>"', text)
    return mask_values(text)
