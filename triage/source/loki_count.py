"""Loki metric queries for counting a window inside Loki: one total, per-minute counts per pattern,
a bounded sample per stream, and pulls of other queries over the same connection.

Everything goes through ``LokiSource._request`` (auth, tenant, TLS, retries, stop). Metric semantics
(pkg/logql/range_vector.go; fixtures f, f2, j1): a range ``[r]`` evaluated at t holds the entries of
``(t - r, t]`` and ``offset o`` shifts it to ``(t - r - o, t - o]``; range-query points are aligned
to the step and reported as float seconds. So with minute-aligned ``start``/``end``, ``step=60`` and
``[1m] offset 1ns``, the point at t counts exactly the entries of ``[t - 60s, t)``: one state bucket
(records.BUCKET_NS), whole nanoseconds, no entry on a minute's edge counted twice or lost.
"""

from __future__ import annotations

import copy
import queue
import threading

from triage.errors import LokiQueryError, SourceError
from triage.records import BUCKET_NS, LogRecord, Window
from triage.source.loki import QUERY_RANGE, SERIES, LokiSource
from triage.source.lokiwire import escape, records_of, split_selector
from triage.timeparse import NS_PER_S

QUERY = "/loki/api/v1/query"
DAY_NS = 86400 * NS_PER_S  # a range query spans at most a day: 1,440 points, well under Loki's 11,000
MAX_SAMPLE_REQUESTS = 600  # sample requests per window (streams x slices)
SAMPLE_SLICES = 6  # a stream's sample is taken from this many slices spread over the window


class CountUnavailable(Exception):
    """Loki cannot count this window (no pattern filters before 3.0, a limit, an error): pull it."""


def spread_slices(windows: list[Window], slices: int) -> list[Window]:
    """About ``slices`` slices spread over ``windows`` (sorted, disjoint) by their length, one at least each."""
    total = sum(w.duration_ns for w in windows) or 1
    parts = []
    for window in windows:
        n = max(1, round(slices * window.duration_ns / total))
        step = window.duration_ns
        parts.extend(Window(window.from_ns + step * i // n, window.from_ns + step * (i + 1) // n) for i in range(n))
    return parts


class LokiCounter:
    def __init__(self, source: LokiSource):
        self.source = source
        self.selector, self.pipeline = split_selector(source.query)

    @property
    def requests(self) -> int:
        return sum(self.source.requests_by_status.values())

    def _get(self, path: str, params: dict[str, str]) -> dict:
        try:
            return self.source._request(path, params)
        except LokiQueryError as err:  # a SourceError (Loki unreachable) goes up as it is
            raise CountUnavailable(str(err)) from None

    def minute_totals(self, window: Window) -> dict[int, int]:
        """Entries of each minute of the (minute-aligned) window: one range query per day, ``[1m] offset 1ns``
        with ``step=60`` like the per-pattern counts, so the parts of a window (what the state does not
        answer, and its sub-windows) are sums of minutes without another request."""
        # One retry at most: when Loki cannot answer, the pull that follows retries and reports it.
        quick = self.sibling(self.source.query)
        quick.max_retries = min(1, self.source.max_retries)
        counts: dict[int, int] = {}
        for _, points in LokiCounter(quick).minute_counts(self.source.query, (), window):
            for bucket, n in points.items():
                counts[bucket] = counts.get(bucket, 0) + n
        return counts

    def probe_patterns(self, window: Window) -> None:
        """One cheap query with a pattern filter over the window's last minute: a Loki before 3.0 rejects
        it (a 400 parse error) before any sample is pulled."""
        self._get(QUERY, {"query": f"sum(count_over_time({self.source.query} |> `<_>` [1m]))",
                          "time": str(window.to_ns - 1)})

    def minute_counts(self, log_query: str, by: tuple[str, ...], window: Window) -> list[tuple[dict, dict[int, int]]]:
        """``[(series labels, {minute bucket: count})]`` of ``log_query`` over the minute-aligned window."""
        series: dict[tuple, tuple[dict, dict[int, int]]] = {}
        grouping = f"sum by ({', '.join(by)})" if by else "sum"
        expr = f"{grouping} (count_over_time({log_query} [1m] offset 1ns))"
        for part in window.split(DAY_NS):
            body = self._get(QUERY_RANGE, {"query": expr, "start": str(part.from_ns + BUCKET_NS),
                                           "end": str(part.to_ns), "step": "60"})
            data = body.get("data") or {}
            if data.get("resultType") != "matrix":
                raise CountUnavailable(f"a metric query returned {data.get('resultType')!r}, not a matrix")
            for item in data.get("result") or []:
                labels = {str(k): str(v) for k, v in (item.get("metric") or {}).items()}
                points = series.setdefault(tuple(sorted(labels.items())), (labels, {}))[1]
                for stamp, value in item.get("values") or []:
                    # the point at t counts [t - 1m, t); Loki writes t in milliseconds (t - 1ns shows as .999)
                    end_ns = round(float(stamp) * 1000 / 60_000) * BUCKET_NS
                    bucket = end_ns - BUCKET_NS
                    if not part.from_ns <= bucket < part.to_ns:
                        raise CountUnavailable(f"a metric point at {stamp} lies outside the range asked for")
                    points[bucket] = points.get(bucket, 0) + int(float(value))
        return list(series.values())

    def streams(self, window: Window) -> list[dict[str, str]]:
        body = self._get(SERIES, {"match[]": self.selector, "start": str(window.from_ns), "end": str(window.to_ns)})
        return [dict(labels) for labels in body.get("data") or []]

    def entries(self, query: str, window: Window, limit: int, backward: bool = False) -> list[LogRecord]:
        """The first (or last) ``limit`` entries of one query in the window (one request)."""
        limit = min(limit, self.source.page_limit)
        body = self._get(QUERY_RANGE, {"query": query, "start": str(window.from_ns), "end": str(window.to_ns),
                                       "limit": str(limit), "direction": "backward" if backward else "forward"})
        return records_of(body)

    def sample(self, windows: list[Window], budget: int) -> list[LogRecord]:
        """At most ``budget`` entries, taken per stream from slices spread over the windows (the parts of
        a window Loki counts), so a quiet stream's templates are learnt as well as a chatty one's."""
        hull = Window(windows[0].from_ns, windows[-1].to_ns)
        streams = self.streams(hull)
        if not streams:
            return []
        slices = max(1, min(SAMPLE_SLICES, MAX_SAMPLE_REQUESTS // len(streams)))
        parts = spread_slices(windows, slices)
        if len(streams) * len(parts) > MAX_SAMPLE_REQUESTS:  # too many streams to ask one by one
            jobs = [(self.source.query, part) for part in parts]
        else:
            jobs = [(f"{self.stream_selector(labels)} {self.pipeline}".strip(), part)
                    for labels in streams for part in parts]
        per_job = max(1, budget // len(jobs))
        pages = self.parallel(lambda job: self.entries(job[0], job[1], per_job), jobs)
        seen, records = set(), []
        for page in pages:
            for record in page:
                key = (tuple(sorted(record.labels.items())), record.ts_ns, record.line)
                if key not in seen:
                    seen.add(key)
                    records.append(record)
        return records

    def stream_selector(self, labels: dict[str, str], base: str | None = None) -> str:
        """A selector for exactly these label values; ``base`` (the query's selector) keeps its own matchers."""
        pairs = ", ".join(f'{name}="{escape(value)}"' for name, value in sorted(labels.items()))
        if base is None:
            return "{" + pairs + "}"
        inner = base.strip()[1:-1].strip()
        return "{" + (f"{inner}, {pairs}" if inner and pairs else inner or pairs) + "}"

    def parallel(self, work, items: list) -> list:
        """``[work(item) for item in items]``, ``loki.concurrency`` at a time on daemon threads: the first
        error stops the rest, and Ctrl-C/SIGTERM stops every worker's retry wait at once (the source's
        stop), so a run never waits on Loki to exit."""
        results: list = [None] * len(items)
        errors: list[BaseException] = []
        jobs: queue.Queue = queue.Queue()
        for job in enumerate(items):
            jobs.put(job)
        done = threading.Event()

        def worker() -> None:
            while not done.is_set():
                try:
                    index, item = jobs.get_nowait()
                except queue.Empty:
                    return
                try:
                    results[index] = work(item)
                except BaseException as err:  # noqa: BLE001 - handed to the caller
                    errors.append(err)
                    done.set()

        threads = [threading.Thread(target=worker, name=f"loki-count-{n}", daemon=True)
                   for n in range(min(self.source.concurrency, len(items)))]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                while thread.is_alive() and not done.is_set():
                    thread.join(0.2)  # short joins keep Ctrl-C and SIGTERM responsive
        except BaseException:
            done.set()
            self.source._stop.set()  # every retry wait of the workers ends now
            raise
        if errors:
            raise errors[0]
        return results

    def sibling(self, query: str) -> LokiSource:
        """A source for another query on the same server, connection settings and request counts."""
        other = copy.copy(self.source)
        other.query = query
        return other
