#!/usr/bin/env python3
"""Counting inside Loki (issue 18): a 1-hour window of 1M entries with loki.max_pull=100000.

Two runs of `triage run --source loki` (a subprocess, so the fake Loki in this process does not share
its interpreter) over the same window of tests/loki_corpus.py (background in four apps, planted
problems: one with entries on exact minute edges, JSON with quotes and backslashes, a Python
traceback, a rare Go panic, `<html>` text, the same words in two apps):
1. a Loki 3 fake: entries pulled (what the fake sent), counted in Loki, queries, wall time; targets:
   at most 150,000 pulled and every planted problem's count exact;
2. the same fake behaving like a Loki before 3.0 (rejects `|>`): the digest must warn, counts exact.

usage: bench/loki_count.py [--entries 1000000] [--max-pull 100000] [--triage .venv/bin/triage] [--work bench/out]
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

from tests.loki_corpus import corpus, problem_of  # noqa: E402
from tests.lokifake import FakeLoki  # noqa: E402

S = 10**9
T0 = 1795417200 * S  # 2026-11-23T07:00:00Z, a settled window in the past


def run_once(triage: str, fake: FakeLoki, work: Path, max_pull: int, name: str) -> dict:
    base = work / name
    base.mkdir(parents=True, exist_ok=True)
    for old in base.glob("s.db*"):
        old.unlink()
    env = {**os.environ, "TRIAGE_LOKI__MAX_PULL": str(max_pull), "TRIAGE_LLM__MODE": "off"}
    served, requests = fake.entries_served, len(fake.requests)
    started = time.monotonic()
    done = subprocess.run([triage, "run", "--source", "loki", "--loki-url", fake.url, "--query", '{namespace=~".+"}',
                           "--from", str(T0), "--to", str(T0 + 3600 * S), "--state", str(base / "s.db"),
                           "--digest-dir", str(base / "digests"), "--report-json", str(base / "report.json")],
                          env=env, capture_output=True, text=True)
    wall = time.monotonic() - started
    report = json.loads((base / "report.json").read_text())
    digest = Path(report["digest_path"]).read_text(encoding="utf-8") if report.get("digest_path") else ""
    problems: dict[str, int] = {}
    for cluster in report["clusters"]:
        problem = problem_of(cluster["template"], cluster["labels"].get("app", ""))
        if problem:
            problems[problem] = problems.get(problem, 0) + cluster["count"]
    return {"exit": done.returncode, "wall_s": wall, "pulled": fake.entries_served - served,
            "queries": len(fake.requests) - requests, "lines": report["lines"],
            "counted_in_loki": report["sources"][0].get("counted_in_loki", 0), "problems": problems,
            "digest": digest, "stderr": done.stderr[-500:]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--max-pull", type=int, default=100_000)
    parser.add_argument("--triage", default=str(Path(sys.executable).with_name("triage")))
    parser.add_argument("--work", type=Path, default=Path("bench/out/loki_count"))
    args = parser.parse_args()
    started = time.monotonic()
    rows, expected = corpus(T0, args.entries)
    print(f"corpus: {len(rows):,} entries in one hour, {len(expected)} planted problems "
          f"({time.monotonic() - started:.1f}s to generate)")
    ok = True
    for name, kwargs in (("loki3", {}), ("pre3", {"pattern_filters": False})):
        with FakeLoki(rows, **kwargs) as fake:
            started = time.monotonic()
            fake.index()
            print(f"\n== {name}: fake Loki {'without |> (before 3.0)' if kwargs else '3.x'} "
                  f"(index built in {time.monotonic() - started:.1f}s) ==")
            result = run_once(args.triage, fake, args.work, args.max_pull, name)
        exact = all(result["problems"].get(m) == n for m, n in expected.items())
        print(f"exit {result['exit']} · wall {result['wall_s']:.1f}s · pulled {result['pulled']:,} · "
              f"counted in Loki {result['counted_in_loki']:,} · queries {result['queries']} · "
              f"lines {result['lines']:,} (of {len(rows):,})")
        for marker, count in expected.items():
            got = result["problems"].get(marker)
            print(f"  {'ok ' if got == count else 'BAD'} {marker}: {got} (planted {count})")
        checks = {"exit 0": result["exit"] == 0, "every planted count exact": exact,
                  "lines = entries": result["lines"] == len(rows)}
        if name == "loki3":
            checks["pulled <= 150,000"] = result["pulled"] <= 150_000
            checks["counted in Loki"] = result["counted_in_loki"] > 0
        else:
            checks["digest warns"] = "⚠ loki: the window holds" in result["digest"]
        for check, passed in checks.items():
            print(f"  target {check}: {'met' if passed else 'MISSED'}")
            ok &= passed
        if result["exit"]:
            print(result["stderr"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
