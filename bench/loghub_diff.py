#!/usr/bin/env python3
"""Where `triage cluster` and a Loghub-2k ground truth disagree: split and merged groups, with examples.

usage: bench/loghub_diff.py --shared ../shared SYSTEM [--most 10]
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, required=True)
    parser.add_argument("system")
    parser.add_argument("--most", type=int, default=10)
    parser.add_argument("--triage", default=str(Path(sys.executable).with_name("triage")))
    args = parser.parse_args()
    folder = args.shared / "datasets" / "loghub-2k" / args.system
    rows = list(csv.DictReader(open(next(folder.glob("*_structured*.csv")), encoding="utf-8")))
    lines = [row["Content"] for row in rows]
    out = subprocess.run([args.triage, "cluster"], input="\n".join(lines) + "\n", capture_output=True, text=True,
                         check=True).stdout.split("\n")[:-1]
    truth = [row["EventId"] for row in rows]
    keys_of: dict[str, Counter] = defaultdict(Counter)
    truths_of: dict[str, Counter] = defaultdict(Counter)
    for line_truth, key in zip(truth, out):
        keys_of[line_truth][key] += 1
        truths_of[key][line_truth] += 1
    example = {}
    for line, line_truth, key in zip(lines, truth, out):
        example.setdefault((line_truth, key), line)
    split = sorted((t for t in keys_of if len(keys_of[t]) > 1), key=lambda t: -sum(keys_of[t].values()))
    merged = sorted((k for k in truths_of if len(truths_of[k]) > 1), key=lambda k: -sum(truths_of[k].values()))
    print(f"== {args.system}: {len(split)} ground-truth groups split, {len(merged)} keys merging groups")
    for t in split[: args.most]:
        print(f"-- split {t} ({sum(keys_of[t].values())} lines into {len(keys_of[t])} keys)")
        for key, n in keys_of[t].most_common(4):
            print(f"   {n:5d} {example[(t, key)][:160]}")
    for k in merged[: args.most]:
        print(f"-- merged key {k} ({len(truths_of[k])} groups)")
        for t, n in truths_of[k].most_common(4):
            print(f"   {n:5d} {t}: {example[(t, k)][:160]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
