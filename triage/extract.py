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

from triage.records import Event, LogRecord

MESSAGE_KEYS = ("msg", "message", "event", "log", "text", "error_message", "errorMessage")
ERROR_KEYS = ("error", "err", "exception", "error.message", "reason")
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
_LOGFMT_PAIR = re.compile(r'([\w.\-/]+)=("(?:[^"\\]|\\.)*"|[^\s"]*)')

_JAVA_FRAME = re.compile(r"^\s*at\s+([\w$.<>/]+)\(([^)]*)\)")
_JAVA_EXCEPTION = re.compile(r"^\s*(?:Caused by:\s*|Exception in thread \"[^\"]*\"\s*)?"
                             r"((?:[a-zA-Z_$][\w$]*\.)+[A-Z][\w$]*(?:Exception|Error|Throwable|Fault)[\w$]*)(?::\s?(.*))?$")
_STD_JAVA_FRAME = re.compile(r"^(java|javax|jdk|sun|com\.sun|kotlin|scala)\.|^java\.base/")
_PY_FRAME = re.compile(r'^\s*File "([^"]+)", line \d+, in (\S+)')
_PY_EXCEPTION = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Warning|Exit|Interrupt|[A-Z]\w*))(?::\s?(.*))?$")
_GO_PANIC = re.compile(r"^(panic|fatal error): (.*)$")
_GO_FUNC_FRAME = re.compile(r"^(\S+?)\([^()]*\)$")


def extract(record: LogRecord, *, with_level: bool = True) -> Event:
    text = record.line
    if "\n" in text.strip("\n"):
        message = _stack_signature(text)
    else:
        message = None
    level = _label_level(record.labels)
    if message is None:
        first = text.strip().split("\n", 1)[0] if text.strip() else ""
        message, body_level = _structured_message(first)
        level = level or body_level
    if level is None and with_level:
        level = _plain_level(text)
    message = message.replace("\r", " ").replace("\n", " ").replace("\t", " ")
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[:MAX_MESSAGE_CHARS]
    return Event(ts_ns=record.ts_ns, labels=record.labels, level=level, message=message, line=text)


# ---------------------------------------------------------------------------- bodies


def _structured_message(line: str) -> tuple[str, str | None]:
    stripped = line.strip()
    if stripped.startswith("{") and stripped.endswith("}"):
        try:
            body = json.loads(stripped)
        except (json.JSONDecodeError, RecursionError):
            body = None
        if isinstance(body, dict):
            return _message_from_fields(body, stripped)
    if "=" in stripped:
        pairs = _logfmt(stripped)
        if len(pairs) >= 2 and any(key in pairs for key in MESSAGE_KEYS + ERROR_KEYS):
            return _message_from_fields(pairs, stripped)
    return stripped, None


def _message_from_fields(fields: dict, original: str) -> tuple[str, str | None]:
    flat = _flatten(fields)
    level = None
    for key in LEVEL_KEYS:
        value = flat.get(key)
        if isinstance(value, str) and value.lower() in _LEVEL_WORDS:
            level = _LEVEL_WORDS[value.lower()]
            break
    message = next((str(flat[k]) for k in MESSAGE_KEYS if isinstance(flat.get(k), str | int | float) and str(flat[k]).strip()), None)
    error = next((str(flat[k]) for k in ERROR_KEYS if isinstance(flat.get(k), str) and flat[k].strip()), None)
    if message and error and error not in message:
        return f"{message}: {error}", level
    if message or error:
        return message or error, level
    # No message field: group on the shape (the sorted keys), not on the values.
    return "{" + " ".join(sorted(flat)) + "}", level


def _flatten(fields: dict, prefix: str = "", depth: int = 0) -> dict:
    flat = {}
    for key, value in fields.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and depth < 3:
            flat.update(_flatten(value, name + ".", depth + 1))
            flat.setdefault(name, value)
        else:
            flat[name] = value
    return flat


def _logfmt(line: str) -> dict[str, str]:
    pairs = {}
    for key, value in _LOGFMT_PAIR.findall(line):
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        pairs[key] = value
    return pairs


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
