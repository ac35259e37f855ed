"""Sources: each turns a window into a stream of ``LogRecord``s.

A source plans the window as consecutive sub-ranges and fetches them; after the stream is
exhausted, ``failures`` lists the sub-ranges it could not fetch completely. The pipeline
counts only entries of complete sub-ranges, so a re-run can fill the gaps without counting
anything twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from triage.errors import TriageError
from triage.records import LogRecord, Window


@dataclass(slots=True)
class RangeFailure:
    window: Window
    error: TriageError


@dataclass(slots=True)
class FetchNotes:
    """What a source learned while fetching, for the digest and the report."""

    failures: list[RangeFailure] = field(default_factory=list)
    skipped_outside_window: int = 0
    warnings: list[str] = field(default_factory=list)


class Source(Protocol):
    name: str  # the --source value, as given
    coverage_key: str  # which entries this source counts (source + query), for idempotent counting
    notes: FetchNotes

    def plan(self, window: Window) -> list[Window]: ...

    # A source with ``skips_covered = True`` (Loki) also takes ``fetch(window, ranges)``: only those
    # sub-ranges are read, and the state answers the parts earlier runs counted (state/coverplan.py).
    # One that reads pages (Loki) may offer ``fetch_pages(window, ranges)`` too: the same entries as
    # lists of ``records.Entry``, which the read stage sums without a record for each.
    def fetch(self, window: Window) -> Iterator[LogRecord]: ...
