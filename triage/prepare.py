"""Prepare: LogRecord -> the event and tokens grouping needs (extract, redact for grouping, tokenize).

Pure and per entry, and most of a run's CPU. A run that reads many entries prepares them in
worker processes, a chunk at a time and in order, while the main process clusters and counts
what is ready: the miner and the counts stay in one process (grouping depends on the order of
entries), and the processes share nothing but the chunks, so the result is the same as inline.
At most ``2 * workers`` chunks are in flight, so memory is bounded by chunks, not by the window.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import resource
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from itertools import islice
from pathlib import Path

from triage.cluster.miner import ShapeTokens
from triage.extract import level_and_message
from triage.records import Event, LogRecord
from triage.redact import redacted_for_grouping

log = logging.getLogger(__name__)

# Entries a worker takes at once: a call costs ~0.1 ms of pickling and scheduling, 1,000 entries ~40 ms.
CHUNK = 1000
# Entries prepared inline before any process starts: an hourly run of a quiet cluster never pays for
# starting workers (~0.3 s), a window of 200,000 entries pays it once.
INLINE_FIRST = 10_000

Prepared = tuple[LogRecord, Event, list[str]]
_Options = tuple[bool, bool, bool]  # redacting, emails, ips


class Preparer:
    """One entry's extract + redact-for-grouping + tokens, with a cache of tokens by shape."""

    def __init__(self, redacting: bool, emails: bool, ips: bool):
        self.options: _Options = (redacting, emails, ips)
        self._tokens = ShapeTokens()

    def __call__(self, record: LogRecord) -> tuple[Event, list[str]]:
        level, message, labels, tokens = self._one(record.line, record.labels)
        return Event(record.ts_ns, labels, level, message, ""), tokens

    def chunk(self, entries: list[tuple[str, dict[str, str]]]) -> list[tuple]:
        """What a worker sends back for (line, labels) pairs: level, message, the labels when
        redaction changed them, tokens. Never the line: the main process has it."""
        out = []
        for line, labels in entries:
            level, message, redacted, tokens = self._one(line, labels)
            out.append((level, message, None if redacted is labels else redacted, tokens))
        return out

    def _one(self, line: str, labels: dict[str, str]) -> tuple[str | None, str, dict[str, str], list[str]]:
        # extract's and redact_for_grouping's steps without an Event or LogRecord between them (~1 us each)
        redacting, emails, ips = self.options
        level, message = level_and_message(line, labels)
        if redacting:
            message, labels = redacted_for_grouping(message, labels, emails=emails, ips=ips)
        return level, message, labels, self._tokens(message)


def available_cpus() -> int:
    """CPUs this process may use: its affinity, capped by a cgroup CPU quota (a Kubernetes CPU limit)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = _cgroup_quota()
    return max(1, min(cpus, math.ceil(quota))) if quota else cpus


def _cgroup_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    try:  # cgroup v2: "max 100000" or "<quota> <period>"
        quota, period = (root / "cpu.max").read_text().split()
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:  # cgroup v1
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def prepared(records: Iterable[LogRecord], preparer: Preparer, workers: int) -> Iterator[Prepared]:
    """Every record with its event and tokens, in the order read. ``workers`` > 1: past the first
    INLINE_FIRST entries, chunks are prepared in that many processes."""
    records = iter(records)
    for record in islice(records, INLINE_FIRST if workers > 1 else None):
        yield record, *preparer(record)
    chunk = list(islice(records, CHUNK))
    if not chunk:
        return
    # forkserver: the workers are forked from a clean process that imported only this module, never
    # from the job, whose fetch and export threads may hold locks at the moment of a fork
    pool: ProcessPoolExecutor | None
    try:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=preparer.options)
    except (OSError, NotImplementedError, ValueError) as err:  # no working sem_open (/dev/shm), no forkserver
        log.warning("prepare: no worker processes (%s); preparing in the job's process", err)
        pool = None
    pending: deque[tuple[list[LogRecord], Future | None]] = deque()
    in_workers, worker_cpu, worker_rss = 0, 0.0, 0
    try:
        while chunk or pending:
            while chunk and len(pending) < 2 * workers:
                pending.append((chunk, _submit(pool, chunk)))
                chunk = list(islice(records, CHUNK))
            entries, future = pending.popleft()
            done = _result(future)
            if done is None:
                if pool is not None:  # a worker was killed (OOM): this chunk and the rest are prepared here
                    log.warning("prepare: the worker processes stopped; preparing the rest in the job's process")
                    pool.shutdown(wait=False, cancel_futures=True)
                    pool = None
                results = preparer.chunk([(r.line, r.labels) for r in entries])
            else:
                results, cpu, rss = done
                in_workers += len(entries)
                worker_cpu += cpu
                worker_rss = max(worker_rss, rss)
            for record, (level, message, labels, tokens) in zip(entries, results):
                yield record, Event(record.ts_ns, labels or record.labels, level, message, ""), tokens
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        log.debug("prepare: %d entries prepared in %d worker processes, %.2f s of their CPU, peak RSS %d MiB each",
                  in_workers, workers, worker_cpu, worker_rss // 1024)


def _submit(pool: ProcessPoolExecutor | None, chunk: list[LogRecord]) -> Future | None:
    """The chunk sent to a worker; None: prepare it here (no pool, or a broken one)."""
    if pool is None:
        return None
    try:  # labels dicts are shared by the entries of a stream: pickle sends each one once a chunk
        return pool.submit(_prepare_chunk, [(r.line, r.labels) for r in chunk])
    except (BrokenProcessPool, OSError):  # OSError: the first submit starts the processes, and that failed
        return None


def _result(future: Future | None) -> tuple[list[tuple], float, int] | None:
    if future is None:
        return None
    try:
        return future.result()
    except BrokenProcessPool:
        return None


_worker: Preparer | None = None


def _start_worker(redacting: bool, emails: bool, ips: bool) -> None:
    global _worker
    _worker = Preparer(redacting, emails, ips)


def _prepare_chunk(entries: list[tuple[str, dict[str, str]]]) -> tuple[list[tuple], float, int]:
    """The chunk's results, the CPU seconds they took and the worker's peak RSS in KiB (the job's --debug
    log reports them: a worker is not in the job's own rusage, and a benchmark must not leave it out)."""
    started = time.process_time()
    results = _worker.chunk(entries)
    return results, time.process_time() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
