"""A fake Loki at the HTTP boundary, on 127.0.0.1, that answers like the recorded server.

Built from tests/fixtures/loki (see its README): ``start`` inclusive, ``end`` exclusive, at
most ``limit`` entries over all streams, values sorted per stream only, the real one-line
plain-text 400 bodies, and ``/series``. Faults (429, 5xx, resets, truncated bodies) are queued
per request with ``fail_next``. It is a server, not a mock: the client under test speaks real
HTTP to it.
"""

from __future__ import annotations

import bisect
import json
import re
import threading
import time
from dataclasses import dataclass, field
from tests.localserver import LocalServer, QuietHandler
from pathlib import Path
from urllib.parse import parse_qs, urlparse

FIXTURES = Path(__file__).parent / "fixtures" / "loki"
MAX_ENTRIES = 5000
MAX_QUERY_LENGTH_NS = 721 * 3600 * 10**9


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8").strip()


def fixture_entries(*names: str) -> list[tuple[dict, int, str]]:
    """The distinct entries of recorded query_range responses."""
    seen = set()
    entries = []
    for name in names:
        body = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
        for stream in body["data"]["result"]:
            for value in stream["values"]:
                key = (tuple(sorted(stream["stream"].items())), value[0], value[1])
                if key not in seen:
                    seen.add(key)
                    entries.append((dict(stream["stream"]), int(value[0]), value[1]))
    return entries


@dataclass
class Fault:
    status: int = 500
    body: str = ""
    headers: dict = field(default_factory=dict)
    kind: str = "status"  # status | reset | truncate | slow
    delay_s: float = 0.0


_MATCHER = re.compile(r'\s*([A-Za-z_][\w]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?')
_FILTER = re.compile(r'\s*(\|=|!=|\|~|!~)\s*"((?:[^"\\]|\\.)*)"')
# a label filter stage, e.g. Loki 3's `| detected_level=~"error|fatal"` (structured metadata or a label)
_LABEL_FILTER = re.compile(r'\s*\|\s*([A-Za-z_][\w]*)\s*(=~|!~|!=|==|=)\s*"((?:[^"\\]|\\.)*)"')


def parse_query(query: str):
    """A small LogQL subset: a selector with =, !=, =~, !~, line filters |=, !=, |~, !~ and label
    filters ``| name op "value"`` (op =, ==, !=, =~, !~) on the entry's labels, its structured
    metadata included (the default encoding returns both in ``stream``)."""
    text = query.strip()
    if not text.startswith("{"):
        raise ValueError("parse error at line 1, col 1: syntax error: unexpected IDENTIFIER")
    close = text.find("}")
    if close < 0:
        raise ValueError(f"parse error at line 1, col {len(text) + 1}: syntax error: unexpected $end, expecting }} or ,")
    inner, rest = text[1:close], text[close + 1:]
    matchers = []
    pos = 0
    while pos < len(inner):
        match = _MATCHER.match(inner, pos)
        if not match:
            raise ValueError(f"parse error at line 1, col {pos + 2}: syntax error: unexpected IDENTIFIER")
        matchers.append((match.group(1), match.group(2), match.group(3).replace('\\"', '"').replace("\\\\", "\\")))
        pos = match.end()
    filters = []
    pos = 0
    while rest[pos:].strip():
        label = _LABEL_FILTER.match(rest, pos)
        if label:
            op = "=" if label.group(2) == "==" else label.group(2)
            filters.append(("label", (label.group(1), op, label.group(3).replace('\\"', '"').replace("\\\\", "\\"))))
            pos = label.end()
            continue
        match = _FILTER.match(rest, pos)
        if not match:
            raise ValueError(f"parse error at line 1, col {len(query) + 1}: syntax error: unexpected $end, "
                             "expecting STRING or ip")
        filters.append((match.group(1), match.group(2).replace('\\"', '"').replace("\\\\", "\\")))
        pos = match.end()
    return matchers, filters


def _labels_match(labels: dict, matchers) -> bool:
    for name, op, value in matchers:
        have = labels.get(name, "")
        if op == "=" and have != value or op == "!=" and have == value:
            return False
        if op == "=~" and not re.fullmatch(value, have) or op == "!~" and re.fullmatch(value, have):
            return False
    return True


def _line_match(line: str, filters, labels: dict | None = None) -> bool:
    for op, value in filters:
        if op == "label":
            if not _labels_match(labels or {}, [value]):
                return False
            continue
        if op == "|=" and value not in line or op == "!=" and value in line:
            return False
        if op == "|~" and not re.search(value, line) or op == "!~" and re.search(value, line):
            return False
    return True


class FakeLoki(LocalServer):
    """``recorded=True`` (for benchmarks): the entries are final; each query's matches are indexed
    by time once and each distinct request's response bytes are computed once and then replayed,
    as a recording of a real server would be, so the fake is never what a client waits on."""

    def __init__(self, entries=(), *, max_entries: int = MAX_ENTRIES, require_tenant: str | None = None,
                 require_auth: str | None = None, recorded: bool = False):
        self.entries: list[tuple[dict, int, str]] = list(entries)
        self.recorded = recorded
        self._matches: dict[str, tuple[list, list[int]]] = {}  # recorded: query -> (entries, their ts)
        self._responses: dict[tuple, bytes] = {}  # recorded: request -> response body
        self.delay_s = 0.0  # every query_range answer waits this long (a server's latency)
        self.in_flight = self.max_in_flight = 0  # query_range requests being answered at once
        self.max_entries = max_entries
        self.require_tenant = require_tenant
        self.require_auth = require_auth
        self.requests: list[tuple[str, dict, dict]] = []
        self.faults: list[Fault] = []
        self.widen_ns = 0  # > 0: answer like a proxy that ignores start/end, with entries this far outside them
        self._lock = threading.Lock()
        self._start_server()

    @property
    def url(self) -> str:
        return self.base_url

    def add(self, labels: dict, ts_ns: int, line: str) -> None:
        self.entries.append((dict(labels), ts_ns, line))

    def fail_next(self, *faults: Fault) -> None:
        with self._lock:
            self.faults.extend(faults)

    def select(self, query: str, matchers, filters, start: int, end: int, limit: int, backward: bool) -> list:
        """The entries one query_range answers: in [start, end), ``limit`` of them from the requested end."""
        if not self.recorded:
            with self._lock:
                chosen = [e for e in self.entries
                          if start <= e[1] < end and _labels_match(e[0], matchers) and _line_match(e[2], filters, e[0])]
            chosen.sort(key=lambda e: (e[1], json.dumps(e[0], sort_keys=True)), reverse=backward)
            return chosen[:limit]
        with self._lock:
            if query not in self._matches:
                matched = [e for e in self.entries
                           if _labels_match(e[0], matchers) and _line_match(e[2], filters, e[0])]
                matched.sort(key=lambda e: (e[1], json.dumps(e[0], sort_keys=True)))
                self._matches[query] = (matched, [e[1] for e in matched])
            matched, stamps = self._matches[query]
        low, high = bisect.bisect_left(stamps, start), bisect.bisect_left(stamps, end)
        return matched[max(low, high - limit):high][::-1] if backward else matched[low:min(high, low + limit)]

    def query_ranges(self) -> list[dict]:
        return [params for path, params, _ in self.requests if path.endswith("/query_range")]

    # ------------------------------------------------------------------ server

    def _handler(self):
        fake = self

        class Handler(QuietHandler):
            def do_GET(self):
                parsed = urlparse(self.path)
                params = {k: v[0] if len(v) == 1 else v for k, v in parse_qs(parsed.query).items()}
                with fake._lock:
                    fake.requests.append((parsed.path, params, dict(self.headers)))
                    fault = fake.faults.pop(0) if fake.faults else None
                if fault is not None and self._apply(fault):
                    return
                if fake.require_tenant and self.headers.get("X-Scope-OrgID") != fake.require_tenant:
                    return self._text(401, "no org id")
                if fake.require_auth and self.headers.get("Authorization") != fake.require_auth:
                    return self._text(401, "Unauthorized")
                if parsed.path == "/loki/api/v1/query_range":
                    with fake._lock:
                        fake.in_flight += 1
                        fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                    try:
                        time.sleep(fake.delay_s)
                        return self._query_range(params)
                    finally:
                        with fake._lock:
                            fake.in_flight -= 1
                if parsed.path == "/loki/api/v1/series":
                    return self._series(params)
                if parsed.path == "/ready":
                    return self._text(200, "ready")
                return self._text(404, "404 page not found")

            def _apply(self, fault: Fault) -> bool:
                if fault.kind == "slow":
                    time.sleep(fault.delay_s)
                    return False
                if fault.kind == "reset":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json; charset=UTF-8")
                    self.send_header("Content-Length", "5000")
                    self.end_headers()
                    self.wfile.write(b'{"status":"success","data":{"resultType":"streams","result":[{"str')
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return True
                if fault.kind == "truncate":
                    body = b'{"status":"success","data":{"resultType":"streams","result":[{"stream":{"a'
                    self.send_body(200, body, "application/json; charset=UTF-8")
                    return True
                self._text(fault.status, fault.body, fault.headers,
                           "text/html" if fault.body.lstrip().startswith("<") else "text/plain; charset=utf-8")
                return True

            def _text(self, status: int, body: str, headers: dict | None = None,
                      content_type: str = "text/plain; charset=utf-8"):
                data = body.encode()
                self.send_body(status, data, content_type if data else None, headers)

            def _json(self, body: dict):
                self.send_body(200, json.dumps(body).encode(), "application/json; charset=UTF-8")

            def _query_range(self, params):
                try:
                    limit = int(params.get("limit", 100))
                    start, end = int(params["start"]), int(params["end"])
                except (KeyError, ValueError):
                    return self._text(400, "invalid parameters")
                if limit > fake.max_entries:
                    return self._text(400, "max entries limit per query exceeded, limit > max_entries_limit_per_query "
                                           f"({limit} > {fake.max_entries})")
                if end <= start:
                    return self._text(400, "end timestamp must not be before or equal to start time")
                if end - start > MAX_QUERY_LENGTH_NS:
                    hours = (end - start) // (3600 * 10**9)
                    return self._text(400, f"the query time range exceeds the limit (query length: {hours}h0m0s, "
                                           "limit: 30d1h)")
                try:
                    matchers, filters = parse_query(params.get("query", ""))
                except ValueError as err:
                    return self._text(400, str(err))
                start, end = start - fake.widen_ns, end + fake.widen_ns
                backward = params.get("direction", "backward") == "backward"
                query = params.get("query", "")
                request = (query, start, end, limit, backward)
                body = fake._responses.get(request)
                if body is None:
                    streams: dict[str, dict] = {}
                    for labels, ts, line in fake.select(query, matchers, filters, start, end, limit, backward):
                        key = json.dumps(labels, sort_keys=True)
                        streams.setdefault(key, {"stream": labels, "values": []})["values"].append([str(ts), line])
                    body = json.dumps({"status": "success", "data": {
                        "resultType": "streams", "result": list(streams.values()), "stats": {}}}).encode()
                    if fake.recorded:
                        fake._responses[request] = body
                return self.send_body(200, body, "application/json; charset=UTF-8")

            def _series(self, params):
                selector = params.get("match[]", "")
                if isinstance(selector, list):
                    selector = selector[0]
                try:
                    matchers, _ = parse_query(selector)
                    start, end = int(params["start"]), int(params["end"])
                except (KeyError, ValueError) as err:
                    return self._text(400, str(err))
                found = {}
                with fake._lock:
                    for labels, ts, _ in fake.entries:
                        if start <= ts < end and _labels_match(labels, matchers):
                            found[json.dumps(labels, sort_keys=True)] = labels
                return self._json({"status": "success", "data": list(found.values())})

        return Handler
