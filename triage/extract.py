"""Extract: LogRecord -> Event (pure).

Finds the message worth grouping on and the level:
- JSON bodies: the message field (``msg``, ``message``, ...), plus the error field when there is one;
- logfmt bodies: the same keys;
- multi-line stack traces: a signature of exception type + message + top application frame,
  never line numbers (Java, Python, Go);
- anything else: the first line as it is.
"""

from __future__ import annotations

import json
import re

import orjson

from triage.records import Event, LogRecord

MESSAGE_KEYS = ("msg", "message", "event", "log", "text", "error_message", "errorMessage", "@message")
ERROR_KEYS = ("error", "err", "exception", "error.message", "err.message", "exception.message", "reason")
# With no message field, the fields that name the problem: an error code, type, kind or reason, the
# status of an operation. Matched on the parts of a key name (error_code, errorType, err.kind).
_PROBLEM_KEY_PARTS = frozenset(("error", "err", "exception", "code", "type", "kind", "reason", "cause", "status",
                                "fault", "failure", "event", "action", "operation", "op"))
_KEY_PARTS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")
LEVEL_KEYS = ("level", "lvl", "severity", "loglevel", "log.level", "levelname")
LEVEL_LABELS = ("level", "detected_level", "severity")
MAX_MESSAGE_CHARS = 2000

_LEVEL_WORDS = {
    "trace": "trace", "debug": "debug", "info": "info", "information": "info", "notice": "info",
    "warn": "warn", "warning": "warn", "error": "error", "err": "error", "eror": "error",
    "crit": "critical", "critical": "critical", "fatal": "fatal", "panic": "panic", "emerg": "fatal",
    "alert": "critical", "severe": "error",
}
_PLAIN_LEVEL = re.compile(r"\b(TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|CRIT|CRITICAL|FATAL|PANIC|SEVERE)\b")
_BRACKET_LEVEL = re.compile(r"\[(trace|debug|info|notice|warn|warning|error|crit|critical|fatal|alert|emerg)\]", re.I)
# A key starts where a run of key characters starts: from inside a run no match can end anywhere
# else, and trying every position of every word made this scan a third of extract's time.
_LOGFMT_PAIR = re.compile(r'(?<![\w.\-/])([\w.\-/]+)=("[^"\\]*(?:\\.[^"\\]*)*"|[^\s"]*)')

_JAVA_FRAME = re.compile(r"^\s*at\s+([\w$.<>/]+)\(([^)]*)\)")
_JAVA_EXCEPTION = re.compile(r"^\s*(?:Caused by:\s*|Exception in thread \"[^\"]*\"\s*)?"
                             r"((?:[a-zA-Z_$][\w$]*\.)+[A-Z][\w$]*(?:Exception|Error|Throwable|Fault)[\w$]*)(?::\s?(.*))?$")
_STD_JAVA_FRAME = re.compile(r"^(java|javax|jdk|sun|com\.sun|kotlin|scala)\.|^java\.base/")
_PY_FRAME = re.compile(r'^\s*File "([^"]+)", line \d+, in (\S+)')
_PY_EXCEPTION = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Warning|Exit|Interrupt|[A-Z]\w*))(?::\s?(.*))?$")
_GO_PANIC = re.compile(r"^(panic|fatal error): (.*)$")
_GO_FUNC_FRAME = re.compile(r"^(\S+?)\([^()]*\)$")
# klog, the format of kubelet, kube-apiserver and most Kubernetes components:
# 'E1201 06:52:32.153219    1234 file.go:123] "Message" key="value"' or '... file.go:123] free text'.
_KLOG_HEADER = re.compile(r"^([IWEF])\d{4} \d{2}:\d{2}:\d{2}\.\d+\s+\d+ [\w.\-/]+:\d+\] ")
_KLOG_LEVELS = {"I": "info", "W": "warn", "E": "error", "F": "fatal"}


def extract(record: LogRecord, *, with_level: bool = True) -> Event:
    level, message = level_and_message(record.line, record.labels, with_level=with_level)
    return Event(ts_ns=record.ts_ns, labels=record.labels, level=level, message=message, line=record.line)


def level_and_message(text: str, labels: dict[str, str], *, with_level: bool = True) -> tuple[str | None, str]:
    """What extract finds in an entry's text and labels, without building the Event (the workers of
    a big run return these two to the job)."""
    # most entries are one line: no copy of the text to find that out
    message = _stack_signature(text) if "\n" in text and "\n" in text.strip("\n") else None
    level = _label_level(labels)
    if message is None:
        stripped = text.strip()
        message, body_level = _structured_message(stripped.split("\n", 1)[0] if "\n" in stripped else stripped)
        level = level or body_level
    if level is None and with_level:
        level = _plain_level(text)
    message = message.replace("\r", " ").replace("\n", " ").replace("\t", " ")
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[:MAX_MESSAGE_CHARS]
    return level, message


# ---------------------------------------------------------------------------- bodies


def _structured_message(line: str) -> tuple[str, str | None]:
    stripped = line.strip()
    if stripped[:1] in "IWEF" and (klog := _KLOG_HEADER.match(stripped)):
        return _klog_message(stripped[klog.end():]), _KLOG_LEVELS[klog.group(1)]
    if stripped.startswith("{") and stripped.endswith("}"):
        body = _json_object(stripped)
        if isinstance(body, dict):
            return _message_from_fields(body, stripped)
    if "=" in stripped:
        pairs, covered = _logfmt_scan(stripped)
        if len(pairs) >= 2 and (any(key in pairs for key in MESSAGE_KEYS + ERROR_KEYS)
                                or _all_pairs(stripped, covered)):
            return _message_from_fields(pairs, stripped)
    return stripped, None


def _json_object(text: str):
    """orjson first (several times faster, and most JSON log bodies are strict JSON); the standard
    decoder only for what orjson refuses, since Python and some Java encoders write NaN/Infinity."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return None


def _message_from_fields(fields: dict, original: str) -> tuple[str, str | None]:
    flat = _flatten(fields)
    level = None
    for key in LEVEL_KEYS:
        value = flat.get(key)
        if isinstance(value, str) and value.lower() in _LEVEL_WORDS:
            level = _LEVEL_WORDS[value.lower()]
            break
    message = error = None
    for key in MESSAGE_KEYS:
        value = flat.get(key)
        if value is not None and isinstance(value, (str, int, float)) and (value := str(value)).strip():
            message = value
            break
    for key in ERROR_KEYS:
        value = flat.get(key)
        if isinstance(value, str) and value.strip():
            error = value
            break
    if message and error and error not in message:
        return f"{message}: {error}", level
    if message or error:
        return message or error, level
    return _problem_fields(flat), level


def _problem_fields(flat: dict) -> str:
    """A body without a message: the fields that name the problem, sorted by key, so neither which
    other keys are present nor their order changes the group (payment events that carry an
    error_code and optional amount, currency, retry fields). With none, one group per app."""
    named = []
    for key in sorted(flat):
        value = flat[key]
        if isinstance(value, bool) or not isinstance(value, str | int):
            continue
        parts = {part.lower() for part in _KEY_PARTS.findall(key.rsplit(".", 1)[-1])}
        if parts & _PROBLEM_KEY_PARTS:
            named.append(f"{key}={value}")
    return " ".join(named) if named else "(structured entry without a message)"


def _klog_message(rest: str) -> str:
    """klog's structured form quotes the message and appends key=value pairs: group on the message
    and its err (or reason) value, not on the object references that follow (pod="ns/name", node=...)."""
    if not rest.startswith('"'):
        return rest
    end = 1
    while end < len(rest) and rest[end] != '"':
        end += 2 if rest[end] == "\\" else 1
    message = rest[1:end].replace('\\"', '"')
    pairs = _logfmt(rest[end + 1:])
    # kube's event recorder logs every event as "Event occurred": its reason names the problem
    error = pairs.get("err") or pairs.get("error") or pairs.get("reason")
    return f"{message}: {error}" if error else message


def _flatten(fields: dict, prefix: str = "", depth: int = 0) -> dict:
    if not prefix and not any(isinstance(value, dict) for value in fields.values()):
        return fields  # a flat body (most are): nothing to copy
    flat = {}
    for key, value in fields.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and depth < 3:
            flat.update(_flatten(value, name + ".", depth + 1))
            flat.setdefault(name, value)
        else:
            flat[name] = value
    return flat


def _all_pairs(line: str, covered: int) -> bool:
    """A logfmt line with no message key (logrus and go-kit with only fields): nothing but key=value
    pairs (``covered`` characters of it are pairs)."""
    return covered + line.count(" ") >= len(line) * 0.95


def _logfmt(line: str) -> dict[str, str]:
    return _logfmt_scan(line)[0]


def _logfmt_scan(line: str) -> tuple[dict[str, str], int]:
    """The pairs of a logfmt line and how many of its characters they cover, in one scan."""
    pairs = {}
    covered = 0
    for key, value in _LOGFMT_PAIR.findall(line):
        covered += len(key) + 1 + len(value)
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        pairs[key] = value
    return pairs, covered


# ---------------------------------------------------------------------------- levels


def _label_level(labels: dict[str, str]) -> str | None:
    for name in LEVEL_LABELS:
        value = labels.get(name)
        if value and value.lower() in _LEVEL_WORDS:
            return _LEVEL_WORDS[value.lower()]
    return None


def _plain_level(text: str) -> str | None:
    head = text[:300]
    match = _PLAIN_LEVEL.search(head) or _BRACKET_LEVEL.search(head)
    if match:
        return _LEVEL_WORDS.get(match.group(1).lower())
    if "Traceback (most recent call last)" in head or head.startswith("panic: "):
        return "error"
    return None


# ---------------------------------------------------------------------------- stack traces


def _stack_signature(text: str) -> str | None:
    lines = [line.rstrip() for line in text.strip("\n").split("\n")]
    return _java_signature(lines) or _python_signature(lines) or _go_signature(lines)


def _java_signature(lines: list[str]) -> str | None:
    frames = [m for m in (_JAVA_FRAME.match(line) for line in lines) if m]
    if not frames:
        return None
    exception_index = next((i for i, line in enumerate(lines) if _JAVA_EXCEPTION.match(line)), None)
    if exception_index is None:
        return None
    match = _JAVA_EXCEPTION.match(lines[exception_index])
    exc_type, exc_message = match.group(1), (match.group(2) or "").strip()
    top = next((f for f in frames if not _STD_JAVA_FRAME.match(f.group(1))), frames[0])
    parts = []
    if exception_index > 0:
        parts.append(_structured_message(lines[0])[0])
    parts.append(f"{exc_type}: {exc_message}" if exc_message else exc_type)
    parts.append(f"at {top.group(1)}")
    return " | ".join(parts)


def _python_signature(lines: list[str]) -> str | None:
    if not any(line.startswith("Traceback (most recent call last)") for line in lines):
        return None
    frames = [m for m in (_PY_FRAME.match(line) for line in lines) if m]
    last = next((line.strip() for line in reversed(lines) if line.strip() and not line.startswith(" ")), "")
    parts = []
    if not lines[0].startswith("Traceback"):
        parts.append(_structured_message(lines[0])[0])
    parts.append(last)
    if frames:
        parts.append(f'File "{frames[-1].group(1)}", in {frames[-1].group(2)}')
    return " | ".join(parts)


def _go_signature(lines: list[str]) -> str | None:
    panic_index = next((i for i, line in enumerate(lines) if _GO_PANIC.match(line.strip())), None)
    if panic_index is None:
        return None
    parts = [lines[panic_index].strip()]
    after = lines[panic_index + 1:]
    for index, line in enumerate(after):
        if line.startswith("goroutine ") and line.rstrip().endswith(":"):
            for frame in after[index + 1:]:
                match = _GO_FUNC_FRAME.match(frame.strip())
                if match and not frame.startswith("\t"):
                    parts.append(f"at {match.group(1)}")
                    break
            break
    if panic_index > 0:
        parts.insert(0, _structured_message(lines[0])[0])
    return " | ".join(parts)
