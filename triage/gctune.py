"""How a run's processes collect cyclic garbage (the job's and its workers')."""

from __future__ import annotations

import gc

# Container allocations between two young-generation collections in a run's processes (Python's default
# is 700). A run allocates ~3 containers an entry that live until their page is taken (orjson's decoded
# page, records, chunks): at the default every collection walks the pages still held, and a 200,000-entry
# Loki run spent ~0.8 s of the job's ~3.5 s CPU in the collector. Garbage is rarely cyclic here
# (reference counting frees it), so collecting less often costs little memory.
GC_YOUNG_THRESHOLD = 50_000


def collect_rarely() -> None:
    """Set this process's cyclic garbage collection for a batch run: young objects are collected every
    GC_YOUNG_THRESHOLD allocations, older ones as often as Python's defaults would relative to that."""
    young, older, oldest = gc.get_threshold()
    gc.set_threshold(max(GC_YOUNG_THRESHOLD, young), older, oldest)
