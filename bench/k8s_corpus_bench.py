#!/usr/bin/env python3
"""Grouping, speed and memory on the adversarial Kubernetes corpus: `triage cluster` next to Drain3.

The corpus is tests/k8s_corpus.py (47 problem families in the real formats of Kubernetes
components, data stores and application runtimes, with ground truth). For each size:

- `triage cluster --format jsonl` on the Loki-like entries (labels seen): clusters, GA against
  the families, the ten families split into most clusters, lines/s, peak RSS;
- `triage cluster` and Drain3 on the same one-message-per-line file (traces flattened, labels
  unseen, so families told apart only by labels are one group): clusters, GA, lines/s, the
  ratio triage/Drain3 measured in the same run, peak RSS.

Then both commands on 5,000 distinct 120-word messages (issue #12 point 7: memory must be
bounded by clusters, not by message length). GA is shared/bench/loghub_eval.py's definition.
Wall time is the median of --repeats runs (the long messages run once: Drain3 takes minutes on
them); peak RSS is the command's own, from wait4() in a small launcher (see run_keys).

usage: bench/k8s_corpus_bench.py [--sizes 20000,200000] [--repeats 3] [--work bench/out]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.launch import run_measured  # noqa: E402
from tests.k8s_corpus import generate, score_grouping, write_jsonl, write_lines, write_long_messages  # noqa: E402

SEED = 1


def run_keys(command: list[str], data: Path) -> tuple[float, int, list[str], float]:
    """(wall seconds, peak RSS in KiB, one key per output line, CPU seconds) of one run of ``command < data``."""
    with data.open("rb") as stdin:
        result = run_measured(command, stdin=stdin)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {result.stderr.decode()[-500:]}")
    return result.wall_s, result.peak_rss_kib, result.stdout.decode().split("\n")[:-1], result.cpu_s


def measure(name: str, command: list[str], data: Path, truth: list[str] | None, lines: int, repeats: int) -> dict:
    runs = [run_keys(command, data) for _ in range(repeats)]
    keys = runs[0][2]
    if len(keys) != lines:
        raise SystemExit(f"{name}: {len(keys)} keys for {lines} input lines")
    wall = statistics.median(r[0] for r in runs)
    cpu = statistics.median(r[3] for r in runs)
    result = {"name": name, "lines": lines, "wall_s": wall, "lines_per_s": lines / wall, "lines_per_cpu_s": lines / cpu,
              "peak_rss_mib": max(r[1] for r in runs) / 1024, "clusters": len(set(keys))}
    if truth is not None:
        result.update(score_grouping(truth, keys))
        per_family = Counter()
        seen = set()
        for family, key in zip(truth, keys):
            if (family, key) not in seen:
                seen.add((family, key))
                per_family[family] += 1
        result["worst"] = per_family.most_common(10)
    return result


def _corpus(work: Path, n: int) -> tuple[Path, list[str], Path, list[str]]:
    jsonl, text = work / f"k8s-corpus-{n}.jsonl", work / f"k8s-corpus-{n}.txt"
    # Regenerated every run (seconds): a stale file from an older generator would give stale figures.
    entries = generate(n, SEED)
    return jsonl, write_jsonl(jsonl, entries=entries), text, write_lines(text, entries=entries)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20000,200000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=HERE / "out")
    parser.add_argument("--triage", default=str(Path(sys.executable).with_name("triage")))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    drain3 = [sys.executable, str(HERE / "drain3_cluster.py")]
    rows, worst = [], {}
    for n in (int(s) for s in args.sizes.split(",")):
        jsonl, family_truth, text, text_truth = _corpus(args.work, n)
        for name, command, data, truth in (
                ("triage cluster --format jsonl", [args.triage, "cluster", "--format", "jsonl"], jsonl, family_truth),
                ("triage cluster (lines)", [args.triage, "cluster"], text, text_truth),
                ("drain3 (lines)", drain3, text, text_truth)):
            print(f"[k8s-corpus] {name} on {n:,} entries x {args.repeats}", file=sys.stderr, flush=True)
            rows.append(measure(name, command, data, truth, n, args.repeats))
        worst[n] = rows[-3]["worst"]

    # Both commands are single-threaded: on a shared machine their CPU time is the steadier comparison.
    print("\n| corpus | command | lines | families | clusters | GA | lines/s | vs Drain3 (wall) | lines per CPU s "
          "| vs Drain3 (CPU) | peak RSS MiB |")
    print("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for row in rows:
        drain = next(r for r in rows if r["lines"] == row["lines"] and r["name"].startswith("drain3"))
        lines_run = "(lines)" in row["name"]
        ratio = f"{row['lines_per_s'] / drain['lines_per_s']:.1f}x" if lines_run else "-"
        cpu_ratio = f"{row['lines_per_cpu_s'] / drain['lines_per_cpu_s']:.1f}x" if lines_run else "-"
        print(f"| k8s | {row['name']} | {row['lines']:,} | {row['families']} | {row['clusters']:,} | {row['ga']:.3f} | "
              f"{row['lines_per_s']:,.0f} | {ratio} | {row['lines_per_cpu_s']:,.0f} | {cpu_ratio} | {row['peak_rss_mib']:.1f} |")
    for n, top in worst.items():
        print(f"\nclusters per family, triage cluster --format jsonl, {n:,} entries (worst ten): "
              + ", ".join(f"{family} {count}" for family, count in top))

    long = args.work / "long-messages-5000x120.txt"
    write_long_messages(long, 5_000, 120, SEED)
    print("\n| input | command | lines | clusters | lines/s | peak RSS MiB |")
    print("|---|---|--:|--:|--:|--:|")
    for name, command in (("triage cluster", [args.triage, "cluster"]), ("drain3", drain3)):
        # once: Drain3 compares each new message with every cluster of its leaf (minutes here)
        print(f"[k8s-corpus] {name} on 5,000 distinct 120-word messages x 1", file=sys.stderr, flush=True)
        row = measure(name, command, long, None, 5_000, 1)
        print(f"| 5,000 distinct 120-word messages | {name} | 5,000 | {row['clusters']:,} | {row['lines_per_s']:,.0f} | "
              f"{row['peak_rss_mib']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
