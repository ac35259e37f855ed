"""File source: JSON Lines entries, or a saved Loki ``query_range`` response.

JSON Lines, one entry per line::

    {"ts": "<int ns>" | <int ns> | "<RFC3339>", "labels": {...}, "line": "..."}

A ``line`` may hold a whole multi-line stack trace. Entries outside the window are skipped
(and counted, so the digest can say so).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from triage.errors import UsageError
from triage.records import LogRecord, Window
from triage.source import FetchNotes
from triage.timeparse import parse_time_ns


class FileSource:
    def __init__(self, spec: str, path: Path):
        self.name = spec
        self.path = path
        self.coverage_key = f"file:{path.resolve()}"
        self.notes = FetchNotes()

    def plan(self, window: Window) -> list[Window]:
        return [window]

    def fetch(self, window: Window) -> Iterator[LogRecord]:
        self.notes = FetchNotes()
        for record in load_records(self.path):
            if window.contains(record.ts_ns):
                yield record
            else:
                self.notes.skipped_outside_window += 1


def load_records(path: Path) -> Iterator[LogRecord]:
    """Every entry of the file, in file order. Raises UsageError naming the file and line."""
    try:
        handle = path.open("r", encoding="utf-8", errors="replace", newline="")
    except OSError as err:
        raise UsageError(f"{path}: cannot read: {err.strerror}") from None
    with handle:
        first = _first_content_line(handle)
        if first is None:
            return
        if _looks_like_jsonl_entry(first):
            handle.close()
            yield from _read_jsonl(path)
        else:
            handle.seek(0)
            yield from _read_loki_response(handle, path)


def _first_content_line(handle) -> str | None:
    for line in handle:
        if line.strip():
            return line
    return None


def _looks_like_jsonl_entry(line: str) -> bool:
    try:
        value = json.loads(line)
    except (json.JSONDecodeError, RecursionError):
        return False
    return isinstance(value, dict) and "line" in value


def _read_jsonl(path: Path) -> Iterator[LogRecord]:
    # Bytes straight into orjson: no text decoding pass, and orjson decodes several times faster than
    # json. A line orjson refuses (invalid UTF-8, NaN) goes through the lenient text path it always had.
    labels_seen: dict[tuple, dict[str, str]] = {}
    try:
        handle = path.open("rb")
    except OSError as err:
        raise UsageError(f"{path}: cannot read: {err.strerror}") from None
    with handle:
        number = 0
        for raw in handle:
            number += 1
            for piece in _pieces(raw) if b"\r" in raw else (raw,):
                try:
                    entry = orjson.loads(piece)
                except orjson.JSONDecodeError:
                    text = piece.decode("utf-8", "replace")
                    if not text.strip():
                        continue
                    entry = lenient_entry(text, f"{path}:{number}")
                record = _common_record(entry, labels_seen)
                yield record if record is not None else _entry_to_record(entry, f"{path}:{number}", labels_seen)


def _pieces(raw: bytes) -> list[bytes]:
    """The entries of one binary line: a file written with old Mac line ends (CR only) is one line
    to a binary reader, and text mode (newline="") always split it."""
    if b"\r" in raw.rstrip(b"\r\n"):
        return raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    return [raw]


def lenient_entry(text: str, where: str) -> Any:
    """An entry orjson refused: NaN (Python's encoder writes it) or invalid UTF-8 (already replaced)
    go through the standard decoder; what is not JSON at all is a UsageError in its words."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise UsageError(f"{where}: not JSON: {err.msg}") from None
    except RecursionError:
        raise UsageError(f"{where}: JSON nested too deeply") from None


def _common_record(entry: Any, labels_seen: dict) -> LogRecord | None:
    """The usual entry (labels an object, ts integer nanoseconds), checked without building the
    "file:line" of an error that does not happen (reading took 6.6 -> 5.6 us an entry of the corpus
    without it, 11.0 -> 8.6 of the demo's: best of 5, /tmp bench of FileSource.fetch).
    None: anything else, which _entry_to_record checks and explains."""
    if type(entry) is not dict:
        return None
    line, labels, ts = entry.get("line"), entry.get("labels"), entry.get("ts")
    if type(line) is not str or type(labels) is not dict:
        return None
    if type(ts) is str and ts.isascii() and ts.isdigit():
        ts = int(ts)
    elif type(ts) is not int:
        return None
    return LogRecord(ts_ns=ts, labels=_shared_labels(labels, labels_seen), line=line)


def _entry_to_record(entry: Any, where: str, labels_seen: dict | None = None) -> LogRecord:
    if not isinstance(entry, dict):
        raise UsageError(f"{where}: expected an object with ts, labels and line")
    line = entry.get("line")
    if not isinstance(line, str):
        raise UsageError(f"{where}: 'line' must be a string")
    labels = entry.get("labels") or {}
    if not isinstance(labels, dict):
        raise UsageError(f"{where}: 'labels' must be an object")
    return LogRecord(ts_ns=_parse_ts(entry.get("ts"), where), labels=_shared_labels(labels, labels_seen), line=line)


def _shared_labels(raw: dict, seen: dict | None) -> dict[str, str]:
    """Label sets repeat on nearly every entry of a stream: one dict per distinct set (records never
    change their labels), built once."""
    if seen is None:
        return _labels(raw)
    try:
        key = tuple(raw.items())
        labels = seen.get(key)
    except TypeError:  # a value that is a list or an object
        return _labels(raw)
    if labels is None:
        if len(seen) >= 4096:
            seen.clear()
        labels = seen[key] = _labels(raw)
    return labels


def _parse_ts(value: Any, where: str) -> int:
    if isinstance(value, bool) or value is None:
        raise UsageError(f"{where}: 'ts' is missing (int ns, a string of int ns, or RFC3339)")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return parse_time_ns(value)
        except ValueError as err:
            raise UsageError(f"{where}: 'ts': {err}") from None
    raise UsageError(f"{where}: 'ts' must be int ns, a string of int ns, or RFC3339")


def _labels(raw: dict) -> dict[str, str]:
    return {str(key): "" if value is None else str(value) for key, value in raw.items()}


def _read_loki_response(handle, path: Path) -> Iterator[LogRecord]:
    try:
        body = json.load(handle)
    except RecursionError:
        raise UsageError(f"{path}: JSON nested too deeply") from None
    except json.JSONDecodeError as err:
        raise UsageError(
            f"{path}: neither JSON Lines entries nor a Loki query_range response ({err.msg} at line {err.lineno})"
        ) from None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict) or data.get("resultType") != "streams":
        raise UsageError(f"{path}: a Loki response must be a log query result (data.resultType 'streams')")
    records = []
    for stream in data.get("result") or []:
        records.extend(parse_stream(stream, str(path)))
    records.sort(key=lambda r: r.ts_ns)
    yield from records


def parse_stream(stream: dict, where: str) -> list[LogRecord]:
    """One ``data.result`` stream of a query_range response -> records (both encodings)."""
    labels = _labels(stream.get("stream") or {})
    records = []
    for value in stream.get("values") or []:
        if not isinstance(value, list) or len(value) < 2:
            raise UsageError(f"{where}: malformed stream value {str(value)[:80]!r}")
        entry_labels = labels
        if len(value) > 2 and isinstance(value[2], dict):
            # categorize-labels encoding: structured metadata and parsed fields ride beside the line
            extra = {**(value[2].get("structuredMetadata") or {}), **(value[2].get("parsed") or {})}
            if extra:
                entry_labels = {**labels, **_labels(extra)}
        try:
            ts_ns = int(value[0])
        except (TypeError, ValueError):
            raise UsageError(f"{where}: timestamp {value[0]!r} is not integer nanoseconds") from None
        records.append(LogRecord(ts_ns=ts_ns, labels=entry_labels, line=str(value[1])))
    return records
