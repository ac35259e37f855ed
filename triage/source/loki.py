"""Loki source: ``GET /loki/api/v1/query_range``, paged, split and retried.

What this client relies on (recorded from a real Loki, see tests/fixtures/loki/README.md):
- ``start`` is inclusive and ``end`` exclusive; timestamps are integer-nanosecond strings.
- A response holds at most ``limit`` entries over all streams, each stream sorted on its own.
  There is no cursor: the next forward page starts at the newest timestamp returned, and the
  entries already seen at that timestamp are dropped (key: labels + ts + line).
- When more entries share one nanosecond than a page holds, timestamp paging cannot advance;
  that nanosecond is then fetched stream by stream (``/series``), or the source fails with
  the count. Nothing is dropped silently.
- 4xx bodies are one line of plain text: the user's mistake, shown as is, never retried.
  429, 5xx, timeouts, resets and truncated bodies are retried with backoff and jitter.
- Stop means stop: every retry wait (even a 300 s ``Retry-After``) ends as soon as the fetch is
  stopped (SIGTERM, Ctrl-C, a failed query), and the workers are daemon threads that the run
  does not wait for: a Kubernetes grace period is never spent waiting on Loki.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import requests
import urllib3
from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from triage.errors import LokiQueryError, SourceError, TriageError
from triage.records import Entry, LogRecord, Window
from triage.source import FetchNotes, RangeFailure
from triage.source.pieces import DONE as _DONE
from triage.source.pieces import Fetch, Piece, Split
from triage.source.pieces import Stopped as _Stopped
from triage.source.lokiwire import (body_hint, connection_reason, entries_of, entry_key, escape, first_line,
                                    retry_after_s, split_selector)
from triage.timeparse import NS_PER_S, format_ns

log = logging.getLogger(__name__)

QUERY_RANGE = "/loki/api/v1/query_range"
SERIES = "/loki/api/v1/series"
MAX_QUERY_LENGTH_NS = 721 * 3600 * NS_PER_S  # Loki's default max_query_length (30d1h)
# A same-nanosecond tie is fetched with the largest page the server allows. Loki states its
# max_entries_limit_per_query only in the 400 it returns for a larger limit: ask for this, learn it.
TIE_PROBE_LIMIT = 1_000_000
STOP_JOIN_S = 1.0  # how long a stopped fetch waits for its workers before leaving them behind
SPLIT_MAX_FACTOR = 2  # a range's rest is cut into at most this many pieces per worker
_LIMIT_TOO_HIGH = re.compile(r"max_entries_limit_per_query \((\d+) > (\d+)\)")


class _Retryable(Exception):
    def __init__(self, message: str, retry_after_s: float | None = None):
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class LokiAuth:
    tenant: str | None = None
    username: str | None = None
    password: str | None = None
    token: str | None = None
    ca_file: Path | None = None


class LokiSource:
    name = "loki"
    skips_covered = True  # fetch() takes the sub-ranges to read: the state answers the rest (state/coverplan.py)

    def __init__(
        self,
        url: str,
        query: str,
        *,
        page_limit: int = 5000,
        split_ns: int = 3600 * NS_PER_S,
        concurrency: int = 4,
        timeout_s: float = 30.0,
        max_retries: int = 4,
        auth: LokiAuth = LokiAuth(),
        sleep: Callable[[float], None] | None = None,
        backoff_max_s: float = 30.0,
        user_agent: str = "triage",
        tracer=None,
        settle_ns: int = 0,
    ):
        self.url = url.rstrip("/")
        self.display_url = re.sub(r"//[^/@]*@", "//***@", self.url)  # never show credentials in errors
        self.query = query
        self.page_limit = page_limit
        self.split_ns = min(split_ns, MAX_QUERY_LENGTH_NS)
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.auth = auth
        self._sleep = sleep  # None: wait on the stop event (tests pass list.append)
        self._stop = threading.Event()
        self._server_max: int | None = None  # the server's max_entries_limit_per_query, once it said so
        self.settle_ns = settle_ns
        self._backoff_max_s = backoff_max_s
        self._user_agent = user_agent
        self._local = threading.local()
        self.coverage_key = f"loki {self.display_url} {auth.tenant or ''} {query}"
        self.notes = FetchNotes()
        self.requests_by_status: dict[str, int] = {}
        self._lock = threading.Lock()
        self._tracer = tracer

    # ------------------------------------------------------------------ planning and streaming

    def plan(self, window: Window) -> list[Window]:
        return window.split(self.split_ns)

    def fetch(self, window: Window, ranges: list[Window] | None = None) -> Iterator[LogRecord]:
        """All entries of the window (or of the given sorted, disjoint sub-ranges of it) in timestamp
        order: ``fetch_pages``'s, one record each."""
        for page in self.fetch_pages(window, ranges):
            for ts, line, labels in page:
                yield LogRecord(ts, labels, line)

    def fetch_pages(self, window: Window, ranges: list[Window] | None = None) -> Iterator[list[Entry]]:
        """All entries of the window (or of the given sorted, disjoint sub-ranges of it) in timestamp
        order, a page at a time (what the read stage sums: no record is built for an entry); sub-ranges
        fetched concurrently.

        Paging within one range is sequential (the next request starts at the newest timestamp of
        the previous page), so a range that holds many pages is split while it is fetched: when its
        first page comes back full, the rest of it is cut into pieces by the density that page
        shows, and the pieces are fetched at once (up to loki.concurrency requests in flight). The
        consumer reads pieces in time order; the pages held for it, in flight included, are bounded
        (see pieces.Fetch: at most 2 * (PAGES_AHEAD + concurrency) + PAGES_AHEAD), whatever the window holds.
        """
        self.notes = FetchNotes()
        ranges = self.plan(window) if ranges is None else ranges
        stop = self._stop = threading.Event()
        fetch = Fetch(stop, max(self.concurrency, 1))
        parent_context = _current_context() if self._tracer else None
        splits = self.concurrency > 1

        def work(piece: Piece) -> None:
            token = _attach(parent_context)
            try:
                if piece.index in fetch.failed:  # its range already failed: nothing of it is counted
                    fetch.put(piece, _DONE)
                    return
                split = (lambda *args: self._split(piece, *args)) if splits else None
                for item in self._fetch_range(piece.window, stop, piece.seen, split, lambda: fetch.reserve(piece)):
                    if isinstance(item, Split):
                        fetch.schedule(item.pieces)
                    if not fetch.put(piece, item):
                        return
                    if isinstance(item, Split):
                        return
                fetch.put(piece, _DONE)
            except _Stopped:
                return
            except TriageError as err:
                fetch.put(piece, err)
            except Exception as err:  # a bug must not hang the consumer
                fetch.put(piece, SourceError(f"loki: unexpected {type(err).__name__}: {err}"))
            finally:
                fetch.finished()
                _detach(token)

        def worker() -> None:
            while not stop.is_set():
                piece = fetch.next_job()
                if piece is None:
                    return
                work(piece)

        top = [Piece((index,), index, sub_range) for index, sub_range in enumerate(ranges)]
        fetch.schedule(top)
        # Daemon threads: a stopped run exits without waiting for a request still in flight.
        workers = [threading.Thread(target=worker, name=f"loki-{n}", daemon=True)
                   for n in range(max(1, self.concurrency))]
        for thread in workers:
            thread.start()
        try:
            pending = list(reversed(top))
            while pending:
                piece = pending.pop()
                for item in fetch.take(piece):
                    if isinstance(item, list):
                        if piece.index not in fetch.failed:
                            yield item
                    elif isinstance(item, Split):
                        pending.extend(reversed(item.pieces))
                    elif isinstance(item, TriageError) and piece.index not in fetch.failed:
                        fetch.failed.add(piece.index)
                        self.notes.failures.append(RangeFailure(ranges[piece.index], item))
                        if isinstance(item, LokiQueryError):
                            # The query itself is wrong: every other sub-range would fail the same way.
                            stop.set()
                            for rest in ranges[piece.index + 1:]:
                                self.notes.failures.append(RangeFailure(rest, item))
                            return
        finally:
            stop.set()
            log.debug("loki: %d requests in %d pieces; the reader waited %.2f s for pages, fetchers waited "
                      "%.2f s for room; at most %d pages held", sum(self.requests_by_status.values()), fetch.pieces,
                      fetch.reader_wait_s, fetch.fetcher_wait_s, fetch.peak_pages)
            deadline = time.monotonic() + STOP_JOIN_S
            for thread in workers:
                thread.join(max(0.0, deadline - time.monotonic()))

    def _split(self, piece: Piece, page_start: int, newest: int, seen: set[tuple]) -> Split | None:
        """After a full page of ``piece`` that ended at ``newest``: the rest of it in pieces sized by
        that page's density (about one page each, at most SPLIT_MAX_FACTOR * concurrency), or None
        when the rest is about a page or less."""
        end = piece.window.to_ns
        pages_left = (end - newest) / max(newest - page_start, 1)
        count = min(math.ceil(pages_left), SPLIT_MAX_FACTOR * self.concurrency, end - newest)
        if count < 2:
            return None
        bounds = [newest + (end - newest) * k // count for k in range(count)] + [end]
        return Split([Piece(piece.key + (k,), piece.index, Window(bounds[k], bounds[k + 1]),
                              seen if k == 0 else set()) for k in range(count)])

    def _fetch_range(self, sub_range: Window, stop: threading.Event, seen_at_start: set[tuple] | None = None,
                     split: Callable[[int, int, set], Split | None] | None = None,
                     room: Callable[[], None] | None = None) -> Iterator[list[Entry] | Split]:
        """Pages of ``sub_range`` in order; ``seen_at_start``: entries at its start already delivered.
        With ``split``, the rest after the first full page may come back as one ``Split`` instead;
        ``room`` waits, before each request, until its page may be held."""
        start = sub_range.from_ns
        seen_at_start = seen_at_start or set()
        limit = self.page_limit
        while not stop.is_set():
            if room is not None:
                room()
            body, limit = self._query_range(self.query, start, sub_range.to_ns, limit)
            entries = entries_of(body)
            fresh = [e for e in entries if not (e[0] == start and entry_key(e) in seen_at_start)] \
                if seen_at_start else entries
            if fresh:
                yield fresh
            if len(entries) < limit:
                return
            newest = entries[-1][0]
            if newest == start:
                # A full page on one nanosecond: timestamp paging cannot move past it.
                tied = self._fetch_tie(start, seen_at_start | {entry_key(e) for e in entries}, limit)
                if tied:
                    yield tied
                start, seen_at_start = start + 1, set()
                if start >= sub_range.to_ns:
                    return
                continue
            page_start, start = start, newest
            seen_at_start = {entry_key(e) for e in entries if e[0] == newest}
            if split is not None:
                rest = split(page_start, newest, seen_at_start)
                if rest is not None:
                    yield rest
                    return
                split = None  # about a page is left: page on

    def _fetch_tie(self, ts_ns: int, seen: set[tuple], limit: int) -> list[Entry]:
        """Every entry at one nanosecond, fetched stream by stream."""
        selector, pipeline = split_selector(self.query)
        body = self._request(SERIES, {"match[]": selector, "start": str(ts_ns), "end": str(ts_ns + 1)})
        fresh: list[Entry] = []
        for labels in body.get("data") or []:
            stream_selector = "{" + ",".join(f'{k}="{escape(v)}"' for k, v in sorted(labels.items())) + "}"
            # One nanosecond of one stream: ask for the largest page the server allows.
            stream_body, used_limit = self._query_range(
                f"{stream_selector} {pipeline}".strip(), ts_ns, ts_ns + 1, self._server_max or TIE_PROBE_LIMIT)
            entries = entries_of(stream_body)
            if len(entries) >= used_limit:
                raise SourceError(
                    f"loki: {len(entries)}+ entries of one stream share the timestamp {format_ns(ts_ns)} "
                    f"({ts_ns} ns), more than the server's largest page ({used_limit}) can hold; "
                    "raise max_entries_limit_per_query on the Loki server"
                )
            for entry in entries:
                key = entry_key(entry)
                if key not in seen:
                    seen.add(key)
                    fresh.append(entry)
        return fresh

    # ------------------------------------------------------------------ HTTP

    def _query_range(self, query: str, start: int, end: int, limit: int) -> tuple[dict, int]:
        params = {"query": query, "start": str(start), "end": str(end), "limit": str(limit), "direction": "forward"}
        try:
            return self._request(QUERY_RANGE, params), limit
        except LokiQueryError as err:
            # The server's maximum is lower than loki.page_limit: use the maximum it states.
            match = _LIMIT_TOO_HIGH.search(str(err))
            if not match or int(match.group(2)) >= limit:
                raise
            server_max = int(match.group(2))
            with self._lock:
                self._server_max = server_max
                if server_max < self.page_limit:
                    log.warning("loki.page_limit %d is above the server's maximum; using %d", self.page_limit, server_max)
                    self.page_limit = server_max
            params["limit"] = str(server_max)
            return self._request(QUERY_RANGE, params), server_max

    def _request(self, path: str, params: dict[str, str]) -> dict:
        def wait(retry_state) -> float:
            backoff = wait_random_exponential(multiplier=0.5, max=self._backoff_max_s)(retry_state)
            error = retry_state.outcome.exception() if retry_state.outcome else None
            hinted = getattr(error, "retry_after_s", None)
            return max(backoff, min(hinted, 300.0)) if hinted is not None else backoff

        retrying = Retrying(
            stop=stop_after_attempt(self.max_retries + 1),
            wait=wait,
            retry=retry_if_exception_type(_Retryable),
            sleep=self._pause,
        )
        try:
            return retrying(self._request_once, path, params)
        except RetryError as err:
            last = err.last_attempt.exception()
            raise SourceError(f"loki {self.display_url}: {last} (gave up after {self.max_retries + 1} attempts)") from None

    def _pause(self, seconds: float) -> None:
        """A retry wait that ends the moment the fetch is stopped."""
        if self._sleep is not None:
            self._sleep(seconds)
        elif self._stop.wait(seconds):
            raise _Stopped()
        if self._stop.is_set():
            raise _Stopped()

    def _request_once(self, path: str, params: dict[str, str]) -> dict:
        if self._stop.is_set():
            raise _Stopped()
        if self._tracer is None:
            return self._request_plain(path, params)
        attributes = {"http.request.method": "GET", "url.full": self.display_url + path, "server.address": self.display_url}
        attributes.update({f"loki.{key}": value for key, value in params.items() if key in ("start", "end", "limit")})
        with self._tracer.start_as_current_span(f"loki {path.rsplit('/', 1)[-1]}", attributes=attributes) as span:
            try:
                body = self._request_plain(path, params)
                span.set_attribute("loki.entries", sum(len(s.get("values") or []) for s in
                                                       ((body.get("data") or {}).get("result") or []) if isinstance(s, dict)))
                return body
            except Exception as err:
                from opentelemetry.trace import Status, StatusCode

                span.record_exception(err)
                span.set_status(Status(StatusCode.ERROR, str(err)[:200]))
                raise

    def _request_plain(self, path: str, params: dict[str, str]) -> dict:
        try:
            # verify is passed per request: a session-level value loses to REQUESTS_CA_BUNDLE in requests
            response = self._session().get(self.url + path, params=params, timeout=self.timeout_s, stream=True,
                                           verify=str(self.auth.ca_file) if self.auth.ca_file else True)
            # the body in one read: requests' .content reads 10 KiB at a time, 7 ms of CPU for a page of
            # 5,000 entries where one read takes 2 (the job's fetch threads share one GIL with it)
            content = response.raw.read(decode_content=True)
            self._count(str(response.status_code))
        except (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError):
            self._count("timeout")
            raise _Retryable(f"no answer within {self.timeout_s:g}s") from None
        except requests.exceptions.SSLError as err:
            self._count("error")
            raise SourceError(f"loki {self.display_url}: TLS error: {first_line(str(err))}") from None
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as err:
            self._count("error")  # refused, reset, cut short mid-body
            raise _Retryable(f"connection failed: {connection_reason(err)}") from None
        status = response.status_code
        if status == 429 or status >= 500:
            raise _Retryable(f"HTTP {status} {body_hint(content)}".rstrip(), retry_after_s(response))
        if status >= 400:
            hint = ""
            if status == 401:
                hint = " (check loki.tenant / loki.username / loki.token)"
            elif status == 403:
                hint = " (the credentials may not read this tenant)"
            raise LokiQueryError(f"loki rejected the query: HTTP {status}: {body_hint(content)}{hint}")
        try:
            # orjson: a page of 5000 entries decodes in half the time of json (an orjson.JSONDecodeError
            # is a ValueError: a body cut short is retried like any other)
            body = orjson.loads(content)
        except ValueError:
            raise _Retryable(f"HTTP {status} with a body that is not complete JSON ({len(content)} bytes)") from None
        if not isinstance(body, dict) or body.get("status") not in (None, "success"):
            raise _Retryable(f"unexpected response: {str(body)[:120]}")
        return body

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["User-Agent"] = self._user_agent
            if self.auth.tenant:
                session.headers["X-Scope-OrgID"] = self.auth.tenant
            if self.auth.token:
                session.headers["Authorization"] = f"Bearer {self.auth.token}"
            elif self.auth.username is not None:
                session.auth = (self.auth.username, self.auth.password or "")
            self._local.session = session
        return session

    def _count(self, status: str) -> None:
        with self._lock:
            self.requests_by_status[status] = self.requests_by_status.get(status, 0) + 1


# ---------------------------------------------------------------------- helpers

def _current_context():
    from opentelemetry import context

    return context.get_current()


def _attach(parent_context):
    """Worker threads carry the run's trace context, so Loki request spans nest under the run."""
    if parent_context is None:
        return None
    from opentelemetry import context

    return context.attach(parent_context)


def _detach(token) -> None:
    if token is not None:
        from opentelemetry import context

        context.detach(token)
