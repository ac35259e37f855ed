"""What goes over the wire to Loki, apart from the client that sends it: log entries from a
``query_range`` body, the stream selector of a query, LogQL string escaping, and what a failed
response or connection says (Retry-After, a one-line hint of the body, the reason of a reset).
"""

from __future__ import annotations

import email.utils
import operator
import re
import time

import requests

from triage.errors import LokiQueryError
from triage.records import Entry, LogRecord
from triage.source.file import parse_stream


def records_of(body: dict) -> list[LogRecord]:
    return [LogRecord(ts, labels, line) for ts, line, labels in entries_of(body)]


def entries_of(body: dict) -> list[Entry]:
    """A query_range body's entries in timestamp order, as the read stage sums them."""
    data = body.get("data") or {}
    if data.get("resultType") not in (None, "streams"):
        raise LokiQueryError(
            f"loki returned a {data.get('resultType')} result: loki.query must be a log query, not a metric query"
        )
    entries: list[Entry] = []
    for stream in data.get("result") or []:
        labels = stream.get("stream") if isinstance(stream, dict) else None
        values = stream.get("values") if isinstance(stream, dict) else None
        if type(labels) is dict and type(values) is list and all(type(v) is str for v in labels.values()):
            try:
                # the default encoding: [ts, line] pairs under one label set, all strings
                page = [(int(ts), line, labels) for ts, line in values]
                if all(type(entry[1]) is str for entry in page):
                    entries.extend(page)
                    continue
            except (TypeError, ValueError):
                pass  # categorize-labels triples, or a malformed value: the general reader says which
        entries.extend([(r.ts_ns, r.line, r.labels) for r in parse_stream(stream, "loki response")])
    entries.sort(key=_TS)  # streams are sorted one by one only: merge them (one run per stream)
    return entries


_TS = operator.itemgetter(0)


def entry_key(entry: Entry) -> tuple:
    """What makes an entry itself, for the ones a page shares with the next: stream, time and line."""
    ts, line, labels = entry
    return (tuple(sorted(labels.items())), ts, line)


def split_selector(query: str) -> tuple[str, str]:
    """``'{app="a"} |= "x"'`` -> ``('{app="a"}', '|= "x"')``; braces inside strings are skipped."""
    text = query.strip()
    if not text.startswith("{"):
        raise LokiQueryError(f"loki.query must start with a stream selector {{...}}: {query!r}")
    quote = None
    index = 1
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\" and quote == '"':
                index += 1
            elif char == quote:
                quote = None
        elif char in "\"`":
            quote = char
        elif char == "}":
            return text[: index + 1], text[index + 1:].strip()
        index += 1
    raise LokiQueryError(f"loki.query has an unclosed stream selector: {query!r}")


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def retry_after_s(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def body_hint(content: bytes) -> str:
    """One line of what an error response says (an HTML page by its title)."""
    text = content.decode("utf-8", "replace").strip()
    if "<html" in text[:200].lower():
        match = re.search(r"<title>(.*?)</title>", text, re.I | re.S)
        return f"(HTML page: {match.group(1).strip()})" if match else "(HTML page)"
    return first_line(text)[:300]


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def connection_reason(err: Exception) -> str:
    text = str(err)
    for marker in ("Connection refused", "Connection reset", "Name or service not known",
                   "Connection aborted", "IncompleteRead", "No route to host"):
        if marker in text:
            return marker
    return first_line(text)[:200]
