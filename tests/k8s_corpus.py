#!/usr/bin/env python3
"""An adversarial Kubernetes error-log workload with ground truth, for grouping tests and `make bench`.

Deterministic (a seeded ``random.Random``): the same ``n`` and ``seed`` always give the same
entries. At least 30 problem families (tests/k8s_families*.py), each in the real log format of a
widely deployed component, with skewed frequencies (every family at least 5 entries). Each entry
is ``{"ts": ns, "labels": {...}, "line": str, "family": id}``; ``line`` may hold a whole
multi-line trace. Written independently of triage's grouping code, so it is an honest test of it.

usage: tests/k8s_corpus.py OUT [--n 20000] [--seed 1] [--format jsonl|lines]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `tests.` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tests.k8s_families_apps  # noqa: F401,E402  (registers the data-store and application families)
from tests.k8s_families import FAMILIES, Ctx, Family  # noqa: E402
from tests.k8s_values import VOCABULARY, Values  # noqa: E402

NIGHT_START_NS = 1_796_083_200 * 10**9  # 2026-12-01T00:00:00Z
NIGHT_NS = 24 * 3600 * 10**9
MIN_PER_FAMILY = 5


class _Workload:
    """Pods, nodes and writer ids of one generated cluster."""

    def __init__(self, v: Values):
        self.v = v
        self.nodes = [v.node() for _ in range(6)]
        self.control_plane = self.nodes[:3]
        self.pools: dict[str, list[str]] = {}
        self.threads: dict[str, int] = {}

    def deployment_pods(self, name: str, digitless: bool | None) -> list[str]:
        """Pods of a Deployment: one or two ReplicaSets (a rollout), a few replicas each."""
        key = f"deploy:{name}:{digitless}"
        if key not in self.pools:
            pods = []
            for _ in range(self.v.int(1, 2)):
                rs = self.v.kube_hash(digitless)
                pods += [f"{name}-{rs}-{self.v.kube_suffix(digitless)}" for _ in range(self.v.int(2, 4))]
            self.pools[key] = pods
        return self.pools[key]

    def pod_for(self, fam: Family, ts: int, node: str) -> str:
        v = self.v
        if fam.owner == "deployment":
            return v.choice(self.deployment_pods(fam.app, fam.digitless))
        if fam.owner == "statefulset":
            return f"{fam.app}-{v.int(0, 2)}"
        if fam.owner == "daemonset":
            return f"{fam.app}-{v.kube_suffix()}"
        if fam.owner == "static":  # static pods are named after their node
            return f"{fam.app}-{node}"
        if fam.owner == "cronjob":  # <cronjob>-<scheduled minute since the epoch>-<suffix>, one per hourly run
            minute = ts // 60_000_000_000 // 60 * 60
            return f"{fam.app}-{minute}-{v.kube_suffix()}"
        return ""

    def thread(self, pod: str) -> int:
        if pod not in self.threads:
            self.threads[pod] = self.v.int(1, 4000)
        return self.threads[pod]


def family_counts(n: int, families: list[Family] = FAMILIES) -> dict[str, int]:
    """Skewed counts (by weight squared) summing to ``n``, every family at least MIN_PER_FAMILY."""
    if n < MIN_PER_FAMILY * len(families):
        raise ValueError(f"n must be at least {MIN_PER_FAMILY * len(families)} for {len(families)} families")
    total = sum(f.weight ** 2 for f in families)
    spare = n - MIN_PER_FAMILY * len(families)
    counts = {f.id: MIN_PER_FAMILY + int(spare * f.weight ** 2 / total) for f in families}
    biggest = max(counts, key=counts.get)
    counts[biggest] += n - sum(counts.values())
    return counts


def generate(n: int = 20_000, seed: int = 1) -> list[dict]:
    """``n`` entries in time order over one night, each with its ground-truth ``family``."""
    rng = random.Random(seed)
    v = Values(rng)
    world = _Workload(v)
    by_id = {f.id: f for f in FAMILIES}
    order = [fid for fid, count in family_counts(n).items() for _ in range(count)]
    rng.shuffle(order)
    stamps = sorted(NIGHT_START_NS + rng.randrange(NIGHT_NS) for _ in range(n))
    entries = []
    for ts, fid in zip(stamps, order):
        fam = by_id[fid]
        node = v.choice(world.control_plane if fam.owner == "static" else world.nodes)
        pod = world.pod_for(fam, ts, node)
        subjects = tuple(world.deployment_pods(fam.subject_app, fam.subject_digitless)) if fam.subject_app else ()
        ctx = Ctx(ts, fam.namespace, pod, node, subjects, world.thread(pod or node))
        entries.append({"ts": ts, "labels": _labels(fam, pod, node), "line": fam.render(v, ctx), "family": fid})
    return entries


def _labels(fam: Family, pod: str, node: str) -> dict[str, str]:
    if fam.owner == "node":  # a node service read from the journal: no namespace, app or pod
        return {"job": "systemd-journal", "unit": f"{fam.app}.service", "node": node}
    return {"namespace": fam.namespace, "app": fam.app, "pod": pod, "container": fam.container or fam.app, "node": node}


def text_family(family_id: str) -> str:
    """The truth when labels are not seen (``--format lines``): twins of the same text are one group."""
    return _TWINS.get(family_id, family_id)


_TWINS = {f.id: f.twin for f in FAMILIES if f.twin}


def flatten(line: str) -> str:
    """One physical line for line-oriented tools: the lines of a trace joined by single spaces."""
    return " ".join(part.strip() for part in line.split("\n") if part.strip())


def write_jsonl(path: Path, n: int = 20_000, seed: int = 1, entries: list[dict] | None = None) -> list[str]:
    """The Loki-like JSON Lines the file source and `triage cluster --format jsonl` read; returns
    the ground-truth family of each line, in order. ``entries``: already generated ones."""
    truth = []
    with Path(path).open("w", encoding="utf-8") as out:
        for entry in entries if entries is not None else generate(n, seed):
            out.write(json.dumps({"ts": str(entry["ts"]), "labels": entry["labels"], "line": entry["line"]}) + "\n")
            truth.append(entry["family"])
    return truth


def write_lines(path: Path, n: int = 20_000, seed: int = 1, multiline: str = "flatten",
                entries: list[dict] | None = None) -> list[str]:
    """One message per line for `triage cluster --format lines` and Drain3. Multi-line entries are
    flattened (``multiline="flatten"``) or left out (``"exclude"``). Returns the label-blind truth."""
    truth = []
    with Path(path).open("w", encoding="utf-8") as out:
        for entry in entries if entries is not None else generate(n, seed):
            line = entry["line"]
            if "\n" in line:
                if multiline == "exclude":
                    continue
                line = flatten(line)
            out.write(line + "\n")
            truth.append(text_family(entry["family"]))
    return truth


def write_long_messages(path: Path, count: int = 5_000, words: int = 120, seed: int = 1) -> None:
    """``count`` distinct messages of ``words`` random words from a generated vocabulary: the input
    that makes an index keyed on every token grow with message length."""
    rng = random.Random(f"long:{seed}")
    seen: set[str] = set()
    with Path(path).open("w", encoding="utf-8") as out:
        while len(seen) < count:
            line = " ".join(rng.choice(VOCABULARY) for _ in range(words))
            if line not in seen:
                seen.add(line)
                out.write(line + "\n")


# ----------------------------------------------------------------- scoring

def score_grouping(truth: list[str], predicted: list[str]) -> dict:
    """GA as shared/bench/loghub_eval.py defines it: the share of lines whose predicted cluster holds
    exactly the lines of their true group. Also the number of clusters and of exact groups."""
    if len(truth) != len(predicted):
        raise ValueError(f"{len(predicted)} keys for {len(truth)} lines")
    members: dict[str, list[int]] = {}
    sizes = Counter(predicted)
    for index, group in enumerate(truth):
        members.setdefault(group, []).append(index)
    exact = correct = 0
    for rows in members.values():
        keys = {predicted[i] for i in rows}
        if len(keys) == 1 and sizes[next(iter(keys))] == len(rows):
            exact += 1
            correct += len(rows)
    return {"lines": len(truth), "families": len(members), "clusters": len(sizes), "exact_families": exact,
            "ga": correct / len(truth) if truth else 0.0}


def family_report(truth: list[str], predicted: list[str], lines: list[str] | None = None) -> list[dict]:
    """Per family: how many keys it got and how many other families share them, worst first."""
    keys_of: dict[str, Counter] = {}
    families_of: dict[str, set[str]] = {}
    for index, (group, key) in enumerate(zip(truth, predicted)):
        keys_of.setdefault(group, Counter())[key] += 1
        families_of.setdefault(key, set()).add(group)
    rows = []
    for group, keys in keys_of.items():
        shared = sorted({other for key in keys for other in families_of[key]} - {group})
        example = None
        if lines is not None:
            first = {}
            for index, (g, key) in enumerate(zip(truth, predicted)):
                if g == group and key not in first:
                    first[key] = lines[index]
                if len(first) >= 2:
                    break
            example = list(first.values())
        rows.append({"family": group, "lines": sum(keys.values()), "keys": len(keys), "merged_with": shared,
                     "examples": example})
    rows.sort(key=lambda r: (-(r["keys"] + len(r["merged_with"])), r["family"]))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--format", choices=("jsonl", "lines"), default="jsonl")
    parser.add_argument("--truth", type=Path, help="also write the ground-truth family of each line here")
    args = parser.parse_args()
    writer = write_jsonl if args.format == "jsonl" else write_lines
    truth = writer(args.out, args.n, args.seed)
    if args.truth:
        args.truth.write_text("\n".join(truth) + "\n", encoding="utf-8")
    print(f"{args.out}: {len(truth):,} lines, {len(set(truth))} families", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
