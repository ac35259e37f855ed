"""Worker processes for a big run: chunks of entries summed (``triage/prepare.py``) in order.

Preparing and summing entries is pure per chunk, and most of a run's CPU. Once ``run.workers``
processes run (past INLINE_AT_MOST entries at the latest), chunks go to them while the job's process
takes back what is ready, in the order read: the miner and the counts stay in one process
(grouping depends on the order of entries), and a chunk is summed by the same code wherever it
runs, so the result is the same as inline. At most ``2 * workers`` chunks are in flight: memory is
bounded by chunks, not by the window.
"""

from __future__ import annotations

import logging
import resource
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from itertools import islice

from triage.prepare import ChunkRules, ChunkSum, Summer
from triage.records import Entry, LogRecord
from triage.startup import collect_rarely, forkserver_context

log = logging.getLogger(__name__)

# Entries a chunk holds: a call costs ~0.1 ms of pickling and scheduling, 1,000 entries ~25 ms.
CHUNK = 1000
# Entries summed inline at most while the workers start (~0.3-0.5 s): chunks go to them the moment
# they run, and past this many the job waits for them rather than go on alone.
INLINE_AT_MOST = 10_000


def summed(pages: Iterable[list[Entry]], rules: ChunkRules, workers: int) -> Iterator[tuple[list[Entry], ChunkSum]]:
    """Every chunk of the pages' entries (CHUNK of them, wherever the pages end) with its sum, in the
    order read (a sum names entries by their index in the chunk). ``workers`` > 1: once a full first
    chunk shows the run is not a quiet one, that many processes start in the background; chunks are
    summed inline until they run (INLINE_AT_MOST entries at most), then in them."""
    chunks = _chunks(pages)
    summer = Summer(rules)
    if workers <= 1:
        for chunk in chunks:
            yield chunk, summer(chunk)
        return
    # an hourly run of a quiet cluster (less than a chunk) never pays for starting processes
    started: list[ProcessPoolExecutor | None] = []
    starter: threading.Thread | None = None
    try:
        taken = 0
        for chunk in chunks:
            if starter is not None and (not starter.is_alive() or taken >= INLINE_AT_MOST):
                starter.join()
                yield from _in_workers(started[0], chunk, chunks, summer, workers)
                return
            if starter is None and len(chunk) == CHUNK:  # starting blocks ~0.25 s: not on the job's thread
                starter = threading.Thread(target=lambda: started.append(_started_pool(workers, rules)),
                                           name="prepare-start", daemon=True)
                starter.start()
            taken += len(chunk)
            yield chunk, summer(chunk)
    finally:
        if starter is not None:
            starter.join()
            if started and started[0] is not None:
                started[0].shutdown(wait=False, cancel_futures=True)


def _started_pool(workers: int, rules: ChunkRules) -> ProcessPoolExecutor | None:
    """The worker processes, running (None: they cannot start here; a warning says why)."""
    pool = None
    try:
        context = forkserver_context()
        pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=(rules,))
        for ready in [pool.submit(_sum_chunk, []) for _ in range(workers)]:
            ready.result()
        return pool
    except (OSError, NotImplementedError, ValueError, BrokenProcessPool) as err:  # no sem_open, no forkserver
        log.warning("prepare: no worker processes (%s); preparing in the job's process", err)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        return None


def _in_workers(pool: ProcessPoolExecutor | None, chunk: list[Entry] | None, chunks: Iterator[list[Entry]],
                summer: Summer, workers: int) -> Iterator[tuple[list[Entry], ChunkSum]]:
    pending: deque[tuple[list[Entry], Future | None]] = deque()
    in_workers, worker_cpu, worker_rss = 0, 0.0, 0
    try:
        while chunk or pending:
            while chunk and len(pending) < 2 * workers:
                pending.append((chunk, _submit(pool, chunk)))
                chunk = next(chunks, None)
            entries, future = pending.popleft()
            done = _result(future)
            if done is None:
                if pool is not None:  # a worker was killed (OOM): this chunk and the rest are summed here
                    log.warning("prepare: the worker processes stopped; preparing the rest in the job's process")
                    pool.shutdown(wait=False, cancel_futures=True)
                    pool = None
                yield entries, summer(entries)
            else:
                result, cpu, rss = done
                in_workers += len(entries)
                worker_cpu += cpu
                worker_rss = max(worker_rss, rss)
                yield entries, result
    finally:
        log.debug("prepare: %d entries prepared in %d worker processes, %.2f s of their CPU, peak RSS %d MiB each",
                  in_workers, workers, worker_cpu, worker_rss // 1024)


def pages_of(records: Iterable[LogRecord]) -> Iterator[list[Entry]]:
    """Records (a file, the demo) as pages of entries, for ``summed``."""
    records = iter(records)
    # labels dicts are shared by the entries of a stream: pickle sends each one once a chunk
    while page := [(r.ts_ns, r.line, r.labels) for r in islice(records, CHUNK)]:
        yield page


def _chunks(pages: Iterable[list[Entry]]) -> Iterator[list[Entry]]:
    """The pages' entries in chunks of CHUNK, the last one shorter: slices of a page, not an entry at
    a time (a Loki page holds thousands)."""
    held: list[Entry] = []
    for page in pages:
        if held:
            page = held + page
        whole = len(page) - len(page) % CHUNK
        for start in range(0, whole, CHUNK):
            yield page[start:start + CHUNK]
        held = page[whole:]
    if held:
        yield held


def _submit(pool: ProcessPoolExecutor | None, chunk: list[Entry]) -> Future | None:
    """The chunk sent to a worker; None: sum it here (no pool, or a broken one)."""
    if pool is None:
        return None
    try:
        return pool.submit(_sum_chunk, chunk)
    except (BrokenProcessPool, OSError):  # OSError: the first submit starts the processes, and that failed
        return None


def _result(future: Future | None) -> tuple[ChunkSum, float, int] | None:
    if future is None:
        return None
    try:
        return future.result()
    except BrokenProcessPool:
        return None


_worker: Summer | None = None


def _start_worker(rules: ChunkRules) -> None:
    global _worker
    collect_rarely()
    _worker = Summer(rules)


def _sum_chunk(entries: list[Entry]) -> tuple[ChunkSum, float, int]:
    """The chunk summed, the CPU seconds it took and the worker's peak RSS in KiB (the job's --debug
    log reports them: a worker is not in the job's own rusage, and a benchmark must not leave it out)."""
    started = time.process_time()
    result = _worker(entries)
    return result, time.process_time() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
