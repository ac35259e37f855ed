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
from triage.shape import digit_shape

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

# A logfmt line's fields are found by shape: two lines whose only difference is which ASCII digits
# they hold (request ids, ports, timings, offsets: go-kit, logrus, klog's key=value tail) have their
# pairs at the same places, since every pattern above treats one digit as any other. So the scan runs
# once a shape, and the fields that make the message are sliced out of each line (``_Recipe``).
RECIPE_LIMIT = 8192
_NOT_LOGFMT = "not logfmt"  # a recipe: the line is its own message
_UNCACHED = "uncached"  # a recipe: the message depends on more than the shape; scan every such line

_JAVA_FRAME = re.compile(r"^\s*at\s+([\w$.<>/]+)\(([^)]*)\)")
_JAVA_EXCEPTION = re.compile(r"^\s*(?:Caused by:\s*|Exception in thread \"[^\"]*\"\s*)?"
                             r"((?:[a-zA-Z_$][\w$]*\.)+[A-Z][\w$]*(?:Exception|Error|Throwable|Fault)[\w$]*)(?::\s?(.*))?$")
_STD_JAVA_FRAME = re.compile(r"^(java|javax|jdk|sun|com\.sun|kotlin|scala)\.|^java\.base/")
_PY_FRAME = re.compile(r'^\s*File "([^"]+)", line \d+, in (\S+)')
_PY_EXCEPTION = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Warning|Exit|Interrupt|[A-Z]\w*))(?::\s?(.*))?$")
_GO_PANIC = re.compile(r"^(panic|fatal error): (.*)$")
_ANY_JAVA_FRAME = re.compile(r"^\s*at\s+[\w$.<>/]+\(", re.M)  # a line _JAVA_FRAME matches starts so
_ANY_GO_PANIC = re.compile(r"^\s*(?:panic|fatal error): ", re.M)  # _GO_PANIC matches a stripped line
_GO_FUNC_FRAME = re.compile(r"^(\S+?)\([^()]*\)$")
# klog, the format of kubelet, kube-apiserver and most Kubernetes components:
# 'E1201 06:52:32.153219    1234 file.go:123] "Message" key="value"' or '... file.go:123] free text'.
_KLOG_HEADER = re.compile(r"^([IWEF])\d{4} \d{2}:\d{2}:\d{2}\.\d+\s+\d+ [\w.\-/]+:\d+\] ")
_KLOG_LEVELS = {"I": "info", "W": "warn", "E": "error", "F": "fatal"}


def extract(record: LogRecord, *, with_level: bool = True) -> Event:
    level, message = level_and_message(record.line, record.labels, with_level=with_level)
    return Event(ts_ns=record.ts_ns, labels=record.labels, level=level, message=message, line=record.line)


def level_and_message(text: str, labels: dict[str, str], *, with_level: bool = True) -> tuple[str | None, str]:
    """What extract finds in an entry's text and labels, without building the Event. Without
    ``with_level`` (grouping needs only the message) the level is what a structured body names, if
    anything: neither the labels nor the text are searched for one."""
    # most entries are one line: no copy of the text to find that out
    message = _stack_signature(text) if "\n" in text and "\n" in text.strip("\n") else None
    level = _label_level(labels) if with_level else None
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
        shape = digit_shape(stripped)
        recipe = _RECIPES.get(shape)
        if recipe is None:
            if len(_RECIPES) >= RECIPE_LIMIT:
                _RECIPES.clear()
            recipe = _RECIPES[shape] = _recipe(stripped)
        if recipe is _UNCACHED:
            return _logfmt_message(stripped)
        if recipe is not _NOT_LOGFMT:
            return recipe.apply(stripped)
    return stripped, None


def _logfmt_message(stripped: str) -> tuple[str, str | None]:
    """The message of a line that holds '=': from its fields when it is logfmt, else the line."""
    pairs, covered = _logfmt_scan(stripped)
    if _is_logfmt(pairs, stripped, covered):
        return _message_from_fields(pairs, stripped)
    return stripped, None


def _is_logfmt(pairs: dict, stripped: str, covered: int) -> bool:
    return len(pairs) >= 2 and (not _MESSAGE_OR_ERROR_KEYS.isdisjoint(pairs) or _all_pairs(stripped, covered))


class _Recipe:
    """Where a logfmt shape's level, message and error are: the spans of their values (quotes
    included), the same in every line of the shape."""

    __slots__ = ("level", "message", "error")

    def __init__(self, level: str | None, message: tuple[int, int] | None, error: tuple[int, int] | None):
        self.level, self.message, self.error = level, message, error

    def apply(self, line: str) -> tuple[str, str | None]:
        message = _unquoted(line[self.message[0]:self.message[1]]) if self.message else None
        error = _unquoted(line[self.error[0]:self.error[1]]) if self.error else None
        # whether the error is already part of the message depends on the digits: asked every line
        if message and error and error not in message:
            return f"{message}: {error}", self.level
        return message or error, self.level


def _recipe(stripped: str) -> _Recipe | str:
    """The recipe of a line's shape (the line holds '='). What decides the message must be the same
    for every line of the shape: key names (a digit in one, "shard1=a shard2=b", decides which
    pairs are distinct keys), whether a value is blank or a level word (a digit never is either),
    and the spans. A line with neither a message nor an error key names its problem by its sorted
    fields (``_problem_fields``): scanned every time."""
    spans: dict[str, tuple[int, int]] = {}
    covered = 0
    for match in _LOGFMT_PAIR.finditer(stripped):
        key = match.group(1)
        covered += match.end() - match.start()
        spans[key] = match.span(2)
    if any(character.isdigit() for key in spans for character in key):
        return _UNCACHED  # even whether the line is logfmt: "a1=x a2=y" has two keys, "a1=x a1=y" one
    pairs = {key: _unquoted(stripped[start:end]) for key, (start, end) in spans.items()}
    if not _is_logfmt(pairs, stripped, covered):
        return _NOT_LOGFMT
    level, message, error = _chosen_fields(pairs)
    if message is None and error is None:
        return _UNCACHED
    return _Recipe(level, spans[message] if message else None, spans[error] if error else None)


def _unquoted(value: str) -> str:
    if value.startswith('"') and value.endswith('"') and len(value) >= 2:
        return value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return value


_RECIPES: dict[bytes, _Recipe | str] = {}
_MESSAGE_OR_ERROR_KEYS = frozenset(MESSAGE_KEYS + ERROR_KEYS)
_LEVEL_KEY_SET = frozenset(LEVEL_KEYS)
_ERROR_KEY_SET = frozenset(ERROR_KEYS)


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
    level, message_key, error_key = _chosen_fields(flat)
    message = str(flat[message_key]) if message_key else None
    error = flat[error_key] if error_key else None
    if message and error and error not in message:
        return f"{message}: {error}", level
    if message or error:
        return message or error, level
    return _problem_fields(flat), level


def _chosen_fields(flat: dict) -> tuple[str | None, str | None, str | None]:
    """The level a body names, and the keys of its message and of its error (None: no such field)."""
    level = message = error = None
    if not _LEVEL_KEY_SET.isdisjoint(flat):  # one set operation where most bodies have none of the keys
        for key in LEVEL_KEYS:
            value = flat.get(key)
            if isinstance(value, str) and value.lower() in _LEVEL_WORDS:
                level = _LEVEL_WORDS[value.lower()]
                break
    for key in MESSAGE_KEYS:
        value = flat.get(key)
        if value is not None and isinstance(value, (str, int, float)) and str(value).strip():
            message = key
            break
    if not _ERROR_KEY_SET.isdisjoint(flat):
        for key in ERROR_KEYS:
            value = flat.get(key)
            if isinstance(value, str) and value.strip():
                error = key
                break
    return level, message, error


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
    if not prefix and dict not in map(type, fields.values()):
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
        pairs[key] = _unquoted(value)
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
    # one search of the text first: it finds what any line's match would (and more: \s spans lines),
    # so a trace of another language is not matched line by line against each
    return ((_ANY_JAVA_FRAME.search(text) and _java_signature(lines))
            or ("Traceback (most recent call last)" in text and _python_signature(lines))
            or (_ANY_GO_PANIC.search(text) and _go_signature(lines)) or None)


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
