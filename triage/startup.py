"""What a run's processes set up first: how they collect cyclic garbage, the CPUs they may use, and
the process the workers fork from. Imports nothing of the pipeline, so it can run before its imports."""

from __future__ import annotations

import gc
import math
import multiprocessing
import os
from multiprocessing.context import BaseContext
from pathlib import Path

# The module a worker process runs (triage/workers.py): the forkserver imports it once, every worker
# forks from there with it imported.
WORKER_MODULE = "triage.workers"

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


def skip_final_collection() -> None:
    """For a process about to exit: the interpreter's last collection at exit walks what every module
    holds (~0.3 s after a 200,000-entry run, a twentieth of it), to free memory the OS takes back
    anyway. Frozen objects are left out of it; atexit handlers (telemetry's flush, logging's, the
    workers' shutdown) and reference counting still run as ever."""
    gc.freeze()


def worker_count(configured: int) -> int:
    """The worker processes a run uses: ``run.workers``, or with 0 the CPUs it may use."""
    return configured or available_cpus()


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


def forkserver_context() -> BaseContext:
    """The context the worker processes start in. forkserver: they fork from a clean process that
    imported only WORKER_MODULE, never from the job, whose fetch and export threads may hold locks at
    the moment of a fork. Raises ValueError where there is no forkserver."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([WORKER_MODULE])
    return context


def start_forkserver() -> None:
    """Start the forkserver now, in the background: its imports (~0.4 s of CPU, on a core the job does
    not use while it imports the pipeline) are done before a big run needs workers, which then fork
    in milliseconds. A run that never needs them leaves it idle until the job exits."""
    try:
        forkserver_context()
        from multiprocessing import forkserver

        forkserver.ensure_running()
    except (OSError, ValueError):  # no forkserver here: the pool falls back when it tries (a warning says why)
        pass


def main() -> None:
    """The ``triage`` command's entry point. A worker process starts by running the command's script
    again as a module (multiprocessing does so for every process it starts; the forkserver cannot
    preload it on Python 3.11): through this module, already imported there, that costs nothing,
    where through the CLI's it imported click and every command (~50 ms of CPU a worker, on the
    cores a big run needs at its start)."""
    from triage.cli import main as cli_main

    cli_main()
