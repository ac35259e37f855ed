#!/usr/bin/env python3
"""Grouping accuracy on Loghub-2k: `triage cluster` next to Drain3, in one invocation.

Runs shared/bench/loghub_eval.py once per command (one configuration for every system: the
commands get no per-system setting) and prints GA and F1-GA per system and the means.

usage: bench/loghub_compare.py --shared ../shared [--repeats 1] [--work bench/out]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--work", type=Path, default=HERE / "out")
    parser.add_argument("--triage", default=str(Path(sys.executable).with_name("triage")))
    args = parser.parse_args()
    evaluator = args.shared / "bench" / "loghub_eval.py"
    data = args.shared / "datasets" / "loghub-2k"
    if not evaluator.is_file() or not data.is_dir():
        raise SystemExit(f"{evaluator} or {data} not found: pass --shared /path/to/shared")
    args.work.mkdir(parents=True, exist_ok=True)
    commands = {"triage": f"{args.triage} cluster", "drain3": f"{sys.executable} {HERE / 'drain3_cluster.py'}"}
    results = {}
    for name, command in commands.items():
        out = args.work / f"loghub-{name}.json"
        subprocess.run([sys.executable, str(evaluator), "--data", str(data), "--cmd", command, "--repeats",
                        str(args.repeats), "--json", str(out), "--label", name], check=True, stdout=subprocess.DEVNULL)
        results[name] = json.loads(out.read_text())
    print("| system | triage GA | triage F1-GA | Drain3 GA | Drain3 F1-GA | triage lines/s | Drain3 lines/s |")
    print("|---|--:|--:|--:|--:|--:|--:|")
    drain_by_system = {r["system"]: r for r in results["drain3"]["results"]}
    for ours in results["triage"]["results"]:
        theirs = drain_by_system[ours["system"]]
        print(f"| {ours['system']} | {ours['ga']:.3f} | {ours['f1_ga']:.3f} | {theirs['ga']:.3f} | {theirs['f1_ga']:.3f} | "
              f"{ours['lines_per_s']:,.0f} | {theirs['lines_per_s']:,.0f} |")
    mine, base = results["triage"]["summary"], results["drain3"]["summary"]
    print(f"| **mean** | **{mine['mean_ga']:.3f}** | **{mine['mean_f1_ga']:.3f}** | {base['mean_ga']:.3f} | "
          f"{base['mean_f1_ga']:.3f} | {mine['lines_per_s_overall']:,.0f} | {base['lines_per_s_overall']:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
