#!/usr/bin/env python3
"""Clustering speed and memory: `triage cluster` against Drain3 on the same 100k and 1M lines.

The files come from shared/bench/make_big.py (Loghub-2k messages with every run of digits
re-drawn, seeded). Each command runs --repeats times per file; the median wall time gives
lines/s, and the peak RSS of the command's own process comes from wait4(). Figures are
ratios against Drain3 measured in the same invocation, because the machines are shared.

usage: bench/speed.py --shared ../shared [--lines 1000000] [--repeats 3] [--work bench/out]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run_once(command: list[str], data: Path) -> tuple[float, int, int]:
    """(wall seconds, peak RSS in KiB, output lines) of one run."""
    with data.open("rb") as stdin:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        lines = 0
        for chunk in iter(lambda: process.stdout.read(1 << 20), b""):
            lines += chunk.count(b"\n")
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {process.stderr.read().decode()[-500:]}")
    return wall, usage.ru_maxrss, lines


def measure(name: str, command: list[str], data: Path, lines: int, repeats: int) -> dict:
    runs = [run_once(command, data) for _ in range(repeats)]
    if any(out != lines for _, _, out in runs):
        raise SystemExit(f"{name}: printed a different number of keys than {lines} input lines")
    wall = statistics.median(r[0] for r in runs)
    return {"name": name, "lines": lines, "wall_s": wall, "lines_per_s": lines / wall,
            "peak_rss_mib": max(r[1] for r in runs) / 1024}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, required=True)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=HERE / "out")
    parser.add_argument("--triage", default=str(Path(sys.executable).with_name("triage")))
    args = parser.parse_args()
    make_big = args.shared / "bench" / "make_big.py"
    if not make_big.is_file():
        raise SystemExit(f"{make_big} not found: pass --shared /path/to/shared")
    args.work.mkdir(parents=True, exist_ok=True)
    big = args.work / f"big-{args.lines}.txt"
    if not big.exists():
        subprocess.run([sys.executable, str(make_big), str(big), "--lines", str(args.lines), "--seed", "1",
                        "--data", str(args.shared / "datasets" / "loghub-2k")], check=True, stdout=subprocess.DEVNULL)
    small_lines = args.lines // 10
    small = args.work / f"big-{small_lines}.txt"
    if not small.exists():
        with big.open("rb") as source, small.open("wb") as out:
            for _, line in zip(range(small_lines), source):
                out.write(line)

    commands = {
        "triage cluster": [args.triage, "cluster"],
        "triage cluster --no-shape-cache": [args.triage, "cluster", "--no-shape-cache"],
        "drain3 (IP/HEX/NUM masks)": [sys.executable, str(HERE / "drain3_cluster.py")],
    }
    results = []
    for data, lines in ((small, small_lines), (big, args.lines)):
        for name, command in commands.items():
            print(f"[speed] {name} on {lines:,} lines x {args.repeats}", file=sys.stderr, flush=True)
            results.append(measure(name, command, data, lines, args.repeats))

    print(f"\n| command | lines | median s | lines/s | vs Drain3 | peak RSS MiB |")
    print("|---|--:|--:|--:|--:|--:|")
    for result in results:
        drain = next(r for r in results if r["lines"] == result["lines"] and r["name"].startswith("drain3"))
        print(f"| {result['name']} | {result['lines']:,} | {result['wall_s']:.2f} | {result['lines_per_s']:,.0f} | "
              f"{result['lines_per_s'] / drain['lines_per_s']:.1f}x | {result['peak_rss_mib']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
