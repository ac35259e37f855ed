#!/usr/bin/env python3
"""Counting inside Loki (issue 18): a 1-hour window of 1M entries with loki.max_pull=100000.

Two runs of `triage run --source loki` (a subprocess, so the fake Loki in this process does not share
its interpreter) over the same window of tests/loki_corpus.py (background in four apps, planted
problems: one with entries on exact minute edges, JSON with quotes and backslashes, a Python
traceback, a rare Go panic, `<html>` text, the same words in two apps):
1. a Loki 3 fake: entries pulled (what the fake sent), counted in Loki, queries, wall time; targets:
   at most 150,000 pulled and every planted problem's count exact;
2. the same fake behaving like a Loki before 3.0 (rejects `|>`): the digest must warn, counts exact;
3. the way it runs for real (`settle`): two hours of 1M entries each; the first hourly run at "now"
   (its window is the hour ending now, as `--since 1h`'s: the last `loki.settle` of it still
   settling), late entries written into those settling minutes, then the next hourly run an hour
   later (it re-reads them). The clock is set with freezegun in the `triage` subprocess. Targets per
   run: at most 150,000 pulled, every planted count in the window exact; over both runs every
   planted problem's total in the state, and the state's total, equal to what Loki holds.

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

from tests.loki_corpus import corpus, counted_in_state, held, late_rows, problem_of  # noqa: E402
from tests.lokifake import FakeLoki  # noqa: E402
from triage.timeparse import parse_time_ns  # noqa: E402

S = 10**9
T0 = 1795417200 * S  # 2026-11-23T07:00:00Z, a settled window in the past


MINUTE = 60 * S
# `triage` with the clock set to argv[1] (it keeps ticking): the settle case's "now"
AT = ("import sys, freezegun; freezegun.freeze_time(sys.argv.pop(1), tick=True).start(); "
      "from triage.cli import main; sys.argv[0] = 'triage'; main()")


def run_once(triage: str, fake: FakeLoki, work: Path, max_pull: int, name: str, *, now_ns: int | None = None,
             fresh: bool = True) -> dict:
    base = work / name
    base.mkdir(parents=True, exist_ok=True)
    for old in base.glob("s.db*") if fresh else ():
        old.unlink()
    env = {**os.environ, "TRIAGE_LOKI__MAX_PULL": str(max_pull), "TRIAGE_LLM__MODE": "off"}
    if now_ns is None:
        command = [triage, "run", "--from", str(T0), "--to", str(T0 + 3600 * S)]
    else:
        now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now_ns // S)) + f".{now_ns % S:09d}"[:7] + "Z"
        command = [sys.executable, "-c", AT, now, "run", "--schedule", "hourly"]
    served, requests = fake.entries_served, len(fake.requests)
    started = time.monotonic()
    done = subprocess.run([*command, "--source", "loki", "--loki-url", fake.url, "--query", '{namespace=~".+"}',
                           "--state", str(base / "s.db"),
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
            "digest": digest, "stderr": done.stderr[-500:], "state": base / "s.db",
            "window": (parse_time_ns(report["window"]["from"]), parse_time_ns(report["window"]["to"]))}


def settle_case(triage: str, work: Path, entries: int, max_pull: int) -> bool:
    """Case 3: the hour ending now, late entries into its settling minutes, the next hourly run."""
    import random

    started = time.monotonic()
    rows, _ = corpus(T0, 2 * entries, minutes=120)
    print(f"\n== settle: two hours of {entries:,} entries each, hourly runs at 'now' "
          f"({time.monotonic() - started:.1f}s to generate) ==")
    ok = True
    nows = (T0 + 61 * MINUTE + 20 * S, T0 + 121 * MINUTE + 20 * S)  # a cron a little after the minute, loki.delay 1m
    with FakeLoki(rows) as fake:
        results = []
        for step, now in enumerate(nows):
            if step:
                end = results[-1]["window"][1]  # into the first run's settling minutes (loki.settle: its last 10)
                late = late_rows(random.Random(18), end - 8 * MINUTE, end, 3000)
                fake.add_many(late)
                print(f"  {len(late):,} late entries written into the first run's settling minutes")
            fake.index()
            result = run_once(triage, fake, work, max_pull, "settle", now_ns=now, fresh=step == 0)
            results.append(result)
            window = result["window"]
            problems, _, total = held(fake.entries, *window)
            exact = all(result["problems"].get(m) == n for m, n in problems.items())
            label = "first hourly run (the hour ending now)" if step == 0 else "next hourly run, an hour later"
            print(f"{label}: window {(window[1] - window[0]) / MINUTE:.2f} min · exit {result['exit']} · "
                  f"wall {result['wall_s']:.1f}s · pulled {result['pulled']:,} · counted in Loki "
                  f"{result['counted_in_loki']:,} · queries {result['queries']} · lines {result['lines']:,} "
                  f"(of {total:,})")
            checks = {"exit 0": result["exit"] == 0, "pulled <= 150,000": result["pulled"] <= 150_000,
                      "counted in Loki": result["counted_in_loki"] > 0, "lines = entries": result["lines"] == total,
                      "every planted count in the window exact": exact}
            for check, passed in checks.items():
                print(f"  target {check}: {'met' if passed else 'MISSED'}")
                ok &= passed
            if result["exit"]:
                print(result["stderr"])
        problems, _, total = held(fake.entries, results[0]["window"][0], results[-1]["window"][1])
    in_state, _, state_total = counted_in_state(results[-1]["state"])
    for marker, count in problems.items():
        print(f"  {'ok ' if in_state.get(marker) == count else 'BAD'} {marker}: {in_state.get(marker)} counted over "
              f"both runs (Loki holds {count})")
    both = in_state == problems and state_total == total
    print(f"  target state totals over both runs exact (late entries once, nothing twice): "
          f"{'met' if both else 'MISSED'} ({state_total:,} counted, {total:,} held)")
    return ok and both


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
    ok &= settle_case(args.triage, args.work, args.entries, args.max_pull)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
