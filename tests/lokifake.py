"""A fake Loki at the HTTP boundary, on 127.0.0.1, that answers like the recorded server.

Built from tests/fixtures/loki (see its README): ``start`` inclusive, ``end`` exclusive, at
most ``limit`` entries over all streams, values sorted per stream only, the real one-line
plain-text 400 bodies, and ``/series``. Faults (429, 5xx, resets, truncated bodies) are queued
per log request with ``fail_next`` (the metric queries a run makes skip them), or for
every request a predicate picks with ``fail_when``. It is a server, not a mock: the client under test speaks real
HTTP to it.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from tests import lokiquery
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


def parse_query(query: str):
    """A small LogQL subset: a selector with =, !=, =~, !~ and line filters (tests/lokiquery.py)."""
    return lokiquery.parse_query(query)


_labels_match = lokiquery._labels_match


def _line_match(line: str, filters, labels: dict | None = None) -> bool:
    """One entry against parse_query's filters (for clients that select entries themselves)."""
    for op, value in filters:
        if op == "label":
            if not _labels_match(labels or {}, [value]):
                return False
        elif op in ("|>", "!>"):
            raise ValueError("pattern filters: use lokiquery.Index")
        elif (op == "|=" and value not in line or op == "!=" and value in line
              or op == "|~" and not re.search(value, line) or op == "!~" and re.search(value, line)):
            return False
    return True


NGINX_414 = ("<html>\r\n<head><title>414 Request-URI Too Large</title></head>\r\n<body>\r\n<center><h1>414 "
             "Request-URI Too Large</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")


class FakeLoki(LocalServer):
    """``pattern_filters=False`` answers like a Loki older than 3.0 (no ``|>``/``!>``); ``max_series``
    is Loki's ``max_query_series`` for metric queries; ``max_query_chars`` plays a proxy in front of
    Loki that refuses long URLs (nginx's 414). ``recorded=True`` (for benchmarks): the entries are
    final and each distinct request's response bytes are computed once and then replayed, as a
    recording of a real server would be, so the fake is never what a client waits on."""

    def __init__(self, entries=(), *, max_entries: int = MAX_ENTRIES, require_tenant: str | None = None,
                 require_auth: str | None = None, pattern_filters: bool = True, max_series: int = 500,
                 max_query_chars: int | None = None, metric_max_query_length_ns: int = MAX_QUERY_LENGTH_NS,
                 recorded: bool = False):
        self.entries: list[tuple[dict, int, str]] = list(entries)
        self.recorded = recorded
        self._responses: dict[tuple, bytes] = {}  # recorded: request -> response body
        self.delay_s = 0.0  # every query_range answer waits this long (a server's latency)
        self.in_flight = self.max_in_flight = 0  # query_range requests being answered at once
        self.widen_ns = 0  # > 0: answer like a proxy that ignores start/end, with entries this far outside them
        self.max_entries = max_entries
        self.require_tenant = require_tenant
        self.require_auth = require_auth
        self.pattern_filters = pattern_filters
        self.max_series = max_series
        self.max_query_chars = max_query_chars
        self.metric_max_query_length_ns = metric_max_query_length_ns
        self.requests: list[tuple[str, dict, dict]] = []
        self.entries_served = 0  # log entries sent in query_range answers: what clients pulled
        self.faults: list[Fault] = []
        self.fail_when: list[tuple] = []  # (predicate(path, params), Fault): every matching request fails
        self._lock = threading.Lock()
        self._index: lokiquery.Index | None = None
        self._start_server()

    @property
    def url(self) -> str:
        return self.base_url

    def add(self, labels: dict, ts_ns: int, line: str) -> None:
        with self._lock:
            self.entries.append((dict(labels), ts_ns, line))
            self._index = None

    def add_many(self, rows) -> None:
        """``rows``: (labels, ts_ns, line) tuples; one index rebuild for all of them."""
        with self._lock:
            self.entries.extend(rows)
            self._index = None

    def index(self) -> lokiquery.Index:
        with self._lock:
            if self._index is None:
                self._index = lokiquery.Index(self.entries)
            return self._index

    def fail_next(self, *faults: Fault) -> None:
        with self._lock:
            self.faults.extend(faults)

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
                    # queued faults are for the log requests (query_range, series) tests sequence; the metric
                    # query of a run (how many entries each minute holds) takes fail_when instead
                    metric = parsed.path == "/loki/api/v1/query" or "count_over_time" in str(params.get("query", ""))
                    fault = fake.faults.pop(0) if fake.faults and not metric else None
                    fault = fault or next((f for when, f in fake.fail_when if when(parsed.path, params)), None)
                if fault is not None and self._apply(fault):
                    return
                if fake.require_tenant and self.headers.get("X-Scope-OrgID") != fake.require_tenant:
                    return self._text(401, "no org id")
                if fake.require_auth and self.headers.get("Authorization") != fake.require_auth:
                    return self._text(401, "Unauthorized")
                if fake.max_query_chars is not None and len(params.get("query", "")) > fake.max_query_chars:
                    return self._text(414, NGINX_414, content_type="text/html")
                if not fake.pattern_filters:
                    old = lokiquery.pre3_parse_error(params.get("query", ""))
                    if old:
                        return self._text(400, old)
                try:
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
                    if parsed.path == "/loki/api/v1/query":
                        return self._instant(params)
                    if parsed.path == "/loki/api/v1/series":
                        return self._series(params)
                except lokiquery.QueryError as err:
                    return self._text(400, str(err))
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

            def _too_long(self, start: int, end: int, limit_ns: int):
                if end - start > limit_ns:
                    hours = (end - start) // (3600 * 10**9)
                    limit_h = limit_ns // (3600 * 10**9)
                    limit = f"{limit_h // 24}d{limit_h % 24}h" if limit_h >= 24 else f"{limit_h}h0m0s"
                    return self._text(400, f"the query time range exceeds the limit (query length: {hours}h0m0s, "
                                           f"limit: {limit})") or True
                return False

            def _query_range(self, params):
                try:
                    limit = int(params.get("limit", 100))
                    start, end = int(params["start"]), int(params["end"])
                except (KeyError, ValueError):
                    return self._text(400, "invalid parameters")
                metric = lokiquery.parse_metric(params.get("query", ""))
                if metric is not None:
                    return self._metric_range(metric, start, end, params.get("step", "60"))
                if limit > fake.max_entries:
                    return self._text(400, "max entries limit per query exceeded, limit > max_entries_limit_per_query "
                                           f"({limit} > {fake.max_entries})")
                if end <= start:
                    return self._text(400, "end timestamp must not be before or equal to start time")
                if self._too_long(start, end, MAX_QUERY_LENGTH_NS):
                    return None
                start, end = start - fake.widen_ns, end + fake.widen_ns
                backward = params.get("direction", "backward") == "backward"
                query = params.get("query", "")
                request = (query, start, end, limit, backward)
                body = fake._responses.get(request)
                served = 0
                if body is None:
                    chosen = fake.index().log_query(query, start, end, limit, backward)
                    served = len(chosen)
                    streams: dict[str, dict] = {}
                    for labels, ts, line in chosen:
                        key = json.dumps(labels, sort_keys=True)
                        streams.setdefault(key, {"stream": labels, "values": []})["values"].append([str(ts), line])
                    body = json.dumps({"status": "success", "data": {
                        "resultType": "streams", "result": list(streams.values()), "stats": {}}}).encode()
                    if fake.recorded:
                        fake._responses[request] = (body, served)
                else:
                    body, served = body
                with fake._lock:
                    fake.entries_served += served
                return self.send_body(200, body, "application/json; charset=UTF-8")

            def _metric_range(self, metric, start: int, end: int, step_text: str):
                step_ns = int(float(step_text) * 10**9) if re.fullmatch(r"[\d.]+", step_text) else \
                    lokiquery.parse_duration(step_text)
                if end < start:
                    return self._text(400, "end timestamp must not be before or equal to start time")
                if self._too_long(start, end, fake.metric_max_query_length_ns):
                    return None
                # the query frontend aligns a metric query to its step: start down, end up
                first = start - start % step_ns
                last = end if end % step_ns == 0 else end + step_ns - end % step_ns
                if (last - first) // step_ns + 1 > 11000:
                    return self._text(400, "exceeded maximum resolution of 11,000 points per timeseries. Try "
                                           "decreasing the query resolution (?step=XX)")
                series = fake.index().metric(metric, list(range(first, last + 1, step_ns)))
                if len(series) > fake.max_series:
                    return self._text(400, f"maximum number of series ({fake.max_series}) reached for a single query")
                return self._json({"status": "success", "data": {"resultType": "matrix", "result": [
                    {"metric": labels, "values": [[lokiquery.report_seconds(t, metric.offset_ns), str(n)]
                                                  for t, n in points]}
                    for labels, points in series], "stats": {}}})

            def _instant(self, params):
                metric = lokiquery.parse_metric(params.get("query", ""))
                if metric is None:
                    raise lokiquery.QueryError("log queries are not supported as an instant query type, please "
                                               "change your query to a range query type")
                try:
                    at = int(params["time"])
                except (KeyError, ValueError):
                    return self._text(400, "invalid parameters")
                if self._too_long(at - metric.range_ns, at, fake.metric_max_query_length_ns):
                    return None
                series = fake.index().metric(metric, [at])
                if len(series) > fake.max_series:
                    return self._text(400, f"maximum number of series ({fake.max_series}) reached for a single query")
                return self._json({"status": "success", "data": {"resultType": "vector", "result": [
                    {"metric": labels, "value": [lokiquery.report_seconds(at, 0), str(points[0][1])]}
                    for labels, points in series], "stats": {}}})

            def _series(self, params):
                selector = params.get("match[]", "")
                if isinstance(selector, list):
                    selector = selector[0]
                try:
                    matchers, _ = parse_query(selector)
                    start, end = int(params["start"]), int(params["end"])
                except (KeyError, ValueError) as err:
                    return self._text(400, str(err))
                return self._json({"status": "success", "data": fake.index().series(matchers, start, end)})

        return Handler
