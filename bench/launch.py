"""Run a command and measure it as its own process: wall time, CPU time and peak RSS.

Linux keeps a process's peak RSS across exec, and a child started by fork/vfork starts from its
parent's: wait4() on a direct child of a benchmark (which holds a 200k-entry corpus) reports the
benchmark's peak, not the command's (measured: /bin/true "used" 313 MiB, and `triage run` 182 MiB
where /usr/bin/time said 110). So the command runs under a small launcher that forks it and reports
the wait4() of that grandchild; the figure has a floor of the launcher's own RSS (about 10 MiB).

triage's own modules are compiled to bytecode before the first command, as an installed triage has them.
"""

from __future__ import annotations

import compileall
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

_LAUNCHER = ("import os, sys\n"
             "pid = os.fork()\n"
             "if pid == 0:\n"
             "    os.execvp(sys.argv[2], sys.argv[2:])\n"
             "_, status, usage = os.wait4(pid, 0)\n"
             "open(sys.argv[1], 'w').write(f'{usage.ru_maxrss} {usage.ru_utime + usage.ru_stime}')\n"
             "sys.exit(os.waitstatus_to_exitcode(status))\n")


@dataclass(frozen=True)
class Measured:
    wall_s: float
    cpu_s: float
    peak_rss_kib: int
    returncode: int
    stdout: bytes
    stderr: bytes


_TRIAGE_DIR = Path(__file__).resolve().parent.parent / "triage"


@cache  # once a benchmark process
def _compile_triage() -> None:
    # An installed triage (a wheel, the image: pip compiles at install) loads its modules' bytecode. This
    # editable tree, run where PYTHONDONTWRITEBYTECODE=1 (CI, the image's own environment, this machine),
    # has none and compiles ~60 modules from source at every start: ~0.2 s of a job's CPU no user pays.
    # compileall writes __pycache__ whatever that variable says, and skips what is up to date.
    compileall.compile_dir(_TRIAGE_DIR, quiet=1)


def run_measured(command: list[str], stdin=None, env: dict | None = None) -> Measured:
    _compile_triage()
    with tempfile.TemporaryDirectory() as tmp:
        figures = Path(tmp) / "figures"
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-c", _LAUNCHER, str(figures), *command], stdin=stdin,
                                capture_output=True, env=env)
        wall = time.perf_counter() - started
        rss, cpu = figures.read_text().split() if figures.exists() else ("0", "0")
        return Measured(wall, float(cpu), int(rss), result.returncode, result.stdout, result.stderr)


@dataclass(frozen=True)
class WorkerFigures:
    """What `triage run --debug` says of its worker processes (triage/workers.py), which are not the
    job's children in rusage: a benchmark adds their CPU and names their RSS."""

    entries: int
    workers: int
    cpu_s: float
    peak_rss_mib: int


def worker_figures(stderr: str) -> WorkerFigures | None:
    import re

    found = re.search(r"prepare: (\d+) entries prepared in (\d+) worker processes, ([\d.]+) s of their CPU, "
                      r"peak RSS (\d+) MiB each", stderr)
    if not found or not int(found[1]):
        return None
    return WorkerFigures(int(found[1]), int(found[2]), float(found[3]), int(found[4]))
