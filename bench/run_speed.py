#!/usr/bin/env python3
"""The whole job from a file: `triage run --source file:` next to the floor and a peer, in one run.

On one JSON Lines file of N entries (default: 200,000 entries of the adversarial Kubernetes corpus,
tests/k8s_corpus.py: ids with letters, JSON and logfmt bodies, klog, stack traces; or the demo
source's logs with --data demo), measured in the same invocation, each --repeats times, interleaved
so that a burst of load on the shared cores hits every contender alike; the median is reported:

- floor: reading the file and decoding each line with orjson (what any run pays), and with json;
- triage: `triage run --source file:... --no-llm` (fetch, extract, redact, cluster, state, digest), with
  its peak RSS and what its --debug log says of its worker processes (triage/workers.py);
- logsleuth: `logsleuth --dry-run --plain FILE`, its evidence pack for the same file (the peer a user
  would otherwise run; `pip install logsleuth==0.13.1`, skipped when it is not installed).

usage: bench/run_speed.py [--lines 200000] [--data corpus|demo] [--repeats 3] [--work bench/out]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.launch import run_measured, worker_figures  # noqa: E402
from triage.records import Window  # noqa: E402
from triage.source.demo import DemoSource  # noqa: E402

START_NS = 1795300000 * 10**9 // (3600 * 10**9) * (3600 * 10**9)


def write_demo(path: Path, lines: int) -> Window:
    source = DemoSource()
    written = 0
    hour = 3600 * 10**9
    end = START_NS
    with path.open("w", encoding="utf-8") as out:
        while written < lines:
            for record in source.fetch(Window(end, end + hour)):
                out.write(json.dumps({"ts": str(record.ts_ns), "labels": record.labels, "line": record.line}) + "\n")
                written += 1
                if written == lines:
                    break
            end += hour
    return Window(START_NS, end)


def write_corpus(path: Path, lines: int) -> Window:
    from tests.k8s_corpus import write_jsonl

    write_jsonl(path, n=lines, seed=1)
    first = last = None
    with path.open("rb") as handle:
        for raw in handle:
            ts = int(orjson.loads(raw)["ts"])
            first = ts if first is None else min(first, ts)
            last = ts if last is None else max(last, ts)
    return Window(first, last + 1)


def floor_s(path: Path, decode) -> float:
    started = time.perf_counter()
    with path.open("rb") as handle:
        for line in handle:
            decode(line)
    return time.perf_counter() - started


def timed_child(command: list[str]) -> tuple[float, float, int, str]:
    """(wall seconds, peak RSS MiB, exit code, stderr) of one child process (bench/launch.py)."""
    result = run_measured(command)
    return result.wall_s, result.peak_rss_kib / 1024, result.returncode, result.stderr.decode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--data", choices=("corpus", "demo"), default="corpus")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--triage", default=str(Path(sys.executable).with_name("triage")))
    parser.add_argument("--logsleuth", default=shutil.which("logsleuth", path=str(Path(sys.executable).parent))
                        or shutil.which("logsleuth"))
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "out")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    data = args.work / f"{args.data}-{args.lines}.jsonl"
    window = (write_corpus if args.data == "corpus" else write_demo)(data, args.lines)
    lines = sum(1 for _ in data.open("rb"))

    runs: dict[str, list[float]] = {"floor: read + orjson.loads": [], "floor: read + json.loads": [],
                                    "triage run --no-llm": []}
    if args.logsleuth:
        runs["logsleuth --dry-run"] = []
    rss: list[float] = []
    workers = None
    for _ in range(args.repeats):
        runs["floor: read + orjson.loads"].append(floor_s(data, orjson.loads))
        runs["floor: read + json.loads"].append(floor_s(data, json.loads))
        for leftover in args.work.glob("speed.db*"):
            leftover.unlink()
        wall, peak, code, stderr = timed_child([
            args.triage, "run", "--source", f"file:{data}", "--from", str(window.from_ns), "--to", str(window.to_ns),
            "--state", str(args.work / "speed.db"), "--digest-dir", str(args.work / "digests"), "--no-llm", "--debug"])
        if code != 0:
            print(stderr, file=sys.stderr)
            return code
        runs["triage run --no-llm"].append(wall)
        rss.append(peak)
        workers = worker_figures(stderr) or workers
        if args.logsleuth:
            wall, _, code, stderr = timed_child([args.logsleuth, "--dry-run", "--plain", str(data)])
            if code != 0:
                print(f"logsleuth failed ({code}): {stderr.strip()[:300]}", file=sys.stderr)
                runs.pop("logsleuth --dry-run")
                args.logsleuth = None
            else:
                runs["logsleuth --dry-run"].append(wall)

    load = os.getloadavg()[0]
    triage_s = statistics.median(runs["triage run --no-llm"])
    print(f"{lines:,} entries of the {args.data} data ({data}); median of {args.repeats}, interleaved; "
          f"load average {load:.1f} on {os.cpu_count()} cores")
    print("| contender | seconds | entries/s | triage vs it |")
    print("|---|--:|--:|--:|")
    for name, seconds in runs.items():
        median = statistics.median(seconds)
        ratio = "" if name.startswith("triage") else f"{median / triage_s:.2f}x"
        print(f"| {name} | {median:.2f} | {lines / median:,.0f} | {ratio} |")
    print(f"triage peak RSS: {max(rss):.1f} MiB" + (
        f" (the job's process; {workers.entries:,} entries were prepared in {workers.workers} worker processes, "
        f"{workers.cpu_s:.1f} s of CPU, at most {workers.peak_rss_mib} MiB each)" if workers else ""))
    if not args.logsleuth:
        print("logsleuth: not installed (pip install logsleuth==0.13.1 for the peer comparison)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
