"""Pieces of a Loki fetch: which part of the window each worker fetches next, and the pages held
for the reader, in time order and in bounded memory (used by ``triage.source.loki``)."""

from __future__ import annotations

import collections
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from triage.records import Window

PAGES_AHEAD = 2  # pages fetched ahead of the reader, beyond one per worker: bounds memory
DONE = object()  # a piece's last item when it ended without an error or a split


class Stopped(Exception):
    """The fetch was stopped while this request waited or was about to start."""


@dataclass(slots=True)
class Piece:
    """A part of planned range ``index``, fetched by one worker: pages, then DONE, an error or a Split."""

    key: tuple  # its place in time order: (range,), then (range, k), (range, k, j) for its pieces
    index: int
    window: Window
    seen: set = field(default_factory=set)  # entries at window.from_ns already delivered
    items: collections.deque = field(default_factory=collections.deque)
    reserved: bool = False  # room for its next page is counted, its request may be in flight


@dataclass(slots=True)
class Split:
    """The rest of a piece, cut into pieces fetched at once; the reader reads them in this order."""

    pieces: list


class Fetch:
    """Pieces waiting for a worker (earliest first), and the pages fetched for the reader.

    Memory: a request is sent only when its page may be held: while fewer than ``budget`` pages wait
    (or are in flight) in its piece and the pieces the reader reaches before it (pages of later
    pieces do not delay earlier ones: the reader needs the earlier first), and never while 2 *
    ``budget`` wait in all; the piece the reader is on may always hold PAGES_AHEAD, so the reader
    never waits on a piece that cannot be fetched. ``budget`` is PAGES_AHEAD + concurrency: every
    worker may have a request in flight while PAGES_AHEAD pages are ready (about what the old
    one-queue-per-range fetch held for a window of four ranges or more: 4 x 3 pages). Every wait is short and
    re-checks ``stop`` (Ctrl-C, SIGTERM, a failed query)."""

    def __init__(self, stop: threading.Event, concurrency: int):
        self.stop = stop
        self.budget = PAGES_AHEAD + concurrency
        self.jobs: queue.PriorityQueue = queue.PriorityQueue()
        self.cond = threading.Condition()
        self.holding: dict[tuple, int] = {}  # pages waiting or in flight, by piece key
        self.outstanding = 0  # pieces scheduled and not finished: workers wait for jobs until it is 0
        self.head: Piece | None = None
        self.failed: set[int] = set()  # planned ranges that failed (written by the reader only)
        self.pieces = 0
        self.reader_wait_s = 0.0
        self.fetcher_wait_s = 0.0
        self.peak_pages = 0

    def schedule(self, pieces: list[Piece]) -> None:
        with self.cond:
            self.outstanding += len(pieces)
            self.pieces += len(pieces)
        for piece in pieces:
            self.jobs.put((piece.key, piece))

    def next_job(self) -> Piece | None:
        while not self.stop.is_set():
            try:
                return self.jobs.get(timeout=0.2)[1]
            except queue.Empty:
                with self.cond:
                    if self.outstanding == 0:
                        return None
        return None

    def finished(self) -> None:
        with self.cond:
            self.outstanding -= 1

    def _room(self, piece: Piece) -> bool:
        if piece is self.head and self.holding.get(piece.key, 0) < PAGES_AHEAD:
            return True
        total = sum(self.holding.values())
        ahead = sum(count for key, count in self.holding.items() if key <= piece.key)
        return ahead < self.budget and total < 2 * self.budget

    def reserve(self, piece: Piece) -> None:
        """Wait until ``piece`` may hold one more page; raises Stopped when the fetch stops."""
        with self.cond:
            if piece.reserved:
                return
            started = time.monotonic()
            while not self.stop.is_set() and not self._room(piece):
                self.cond.wait(0.2)
            self.fetcher_wait_s += time.monotonic() - started
            if self.stop.is_set():
                raise Stopped()
            piece.reserved = True
            self.holding[piece.key] = self.holding.get(piece.key, 0) + 1
            self.peak_pages = max(self.peak_pages, sum(self.holding.values()))

    def put(self, piece: Piece, item) -> bool:
        page = isinstance(item, list)
        if page and not piece.reserved:  # a page no request reserved room for (a tie's streams)
            try:
                self.reserve(piece)
            except Stopped:
                return False
        with self.cond:
            if self.stop.is_set():
                return False
            if piece.reserved:
                piece.reserved = False
                if not page:  # the piece ended: its last request brought no page to hold
                    self._release(piece.key)
            piece.items.append(item)
            self.cond.notify_all()
            return True

    def _release(self, key: tuple) -> None:
        left = self.holding.pop(key) - 1
        if left:
            self.holding[key] = left

    def take(self, piece: Piece) -> Iterator:
        """The items of ``piece`` as they arrive, up to and including its last one."""
        with self.cond:
            self.head = piece
            self.cond.notify_all()
        while True:
            with self.cond:
                if not piece.items:
                    started = time.monotonic()
                    while not piece.items:
                        self.cond.wait(0.5)  # a timeout keeps Ctrl-C responsive while waiting on a worker
                    self.reader_wait_s += time.monotonic() - started
                item = piece.items.popleft()
                if isinstance(item, list):
                    self._release(piece.key)
                    self.cond.notify_all()
            yield item
            if not isinstance(item, list):
                return
