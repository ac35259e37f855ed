#!/usr/bin/env python3
"""Lines/s of `triage run --source file:` on N JSON Lines entries, next to a baseline.

The entries come from the demo source (deterministic Kubernetes error logs: JSON, logfmt,
plain text, stack traces) over as many hours as needed. The baseline, measured in the same
invocation on the same file, is the floor any run pays: reading and json-decoding each line.

usage: bench/run_speed.py [--lines 100000] [--triage .venv/bin/triage] [--work bench/out]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from triage.records import Window  # noqa: E402
from triage.source.demo import DemoSource  # noqa: E402

START_NS = 1795300000 * 10**9 // (3600 * 10**9) * (3600 * 10**9)


def write_entries(path: Path, lines: int) -> Window:
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--triage", default=str(Path(sys.executable).with_name("triage")))
    parser.add_argument("--work", type=Path, default=Path("bench/out"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    data = args.work / f"entries-{args.lines}.jsonl"
    window = write_entries(data, args.lines)

    started = time.perf_counter()
    with data.open(encoding="utf-8") as handle:
        for line in handle:
            json.loads(line)
    baseline_s = time.perf_counter() - started

    state = args.work / "speed.db"
    for leftover in args.work.glob("speed.db*"):
        leftover.unlink()
    report = args.work / "speed-report.json"
    command = [args.triage, "run", "--source", f"file:{data}", "--from", str(window.from_ns), "--to",
               str(window.to_ns), "--state", str(state), "--digest-dir", str(args.work / "digests"),
               "--no-llm", "--report-json", str(report)]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ))
    run_s = time.perf_counter() - started
    if result.returncode != 0:
        print(result.stderr, file=sys.stderr)
        return result.returncode
    lines = json.loads(report.read_text())["lines"]
    print(f"entries: {lines} ({data})")
    print(f"baseline (read + json.loads per line): {baseline_s:.2f} s = {lines / baseline_s:,.0f} lines/s")
    print(f"triage run --source file: {run_s:.2f} s = {lines / run_s:,.0f} lines/s "
          f"({run_s / baseline_s:.1f}x the baseline's time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
