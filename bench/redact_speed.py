#!/usr/bin/env python3
"""CPU time of the redact stage alone, per entry, on extracted events.

Redaction runs on every line a run reads, so its cost is paid per line. Three corpora:
- corpus: the adversarial Kubernetes corpus (tests/k8s_corpus.py, what bench/run_speed.py runs),
  N entries, through `redact_for_grouping` (message and labels: what `triage run` pays for every
  entry) and `redact_text` on the messages alone;
- demo: the demo source's Kubernetes error logs (JSON, logfmt, plain text, stack traces, with
  `authorization`, `auth`, `card` and `session` in ordinary prose), N entries, through `redact`
  (the whole entry, as a kept sample is);
- loghub: the Loghub-2k messages of every system under SHARED/datasets/loghub-2k (when --shared
  is given), repeated to N lines, through `redact`.
Events are extracted once before timing; each figure is the median of --repeats passes of CPU
time (process_time: the loop is single-threaded and CPU-bound, and on a shared machine wall time
mostly measures the neighbours), in microseconds an entry. It also prints the share of lines the
cheap pre-filter lets through to the rules.

To compare with an earlier rule set, pass its redact.py as a file (it is loaded in place of
triage.redact; it may import triage.* of this tree):
    git show 2c22478:triage/redact.py > /tmp/redact_r1.py
    bench/redact_speed.py --shared ../shared --redact-module /tmp/redact_r1.py

usage: bench/redact_speed.py [--lines 100000] [--repeats 5] [--shared ../shared] [--redact-module FILE]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from triage.extract import extract  # noqa: E402
from triage.records import LogRecord, Window  # noqa: E402
from triage.source.demo import DemoSource  # noqa: E402

HOUR_NS = 3600 * 10**9
START_NS = 1795300000 * 10**9 // HOUR_NS * HOUR_NS


def demo_records(lines: int) -> list[LogRecord]:
    source, records, end = DemoSource(), [], START_NS
    while len(records) < lines:
        records.extend(source.fetch(Window(end, end + HOUR_NS)))
        end += HOUR_NS
    return records[:lines]


def loghub_records(shared: Path, lines: int) -> list[LogRecord]:
    messages = []
    for log in sorted((shared / "datasets" / "loghub-2k").glob("*/*_2k.log")):
        messages.extend(log.read_text(encoding="utf-8", errors="replace").splitlines())
    if not messages:
        raise SystemExit(f"no Loghub-2k logs under {shared}/datasets/loghub-2k")
    return [LogRecord(0, {"namespace": "loghub"}, messages[i % len(messages)]) for i in range(lines)]


def corpus_records(lines: int) -> list[LogRecord]:
    from tests.k8s_corpus import generate

    return [LogRecord(entry["ts"], entry["labels"], entry["line"]) for entry in generate(lines, seed=1)]


def load_redact(path: Path | None):
    if path is None:
        import triage.redact as module
        return module
    spec = importlib.util.spec_from_file_location("redact_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cpu_us(work, items: list, repeats: int) -> float:
    """Median CPU microseconds an item of ``work(item)`` over ``items``."""
    runs = []
    for _ in range(repeats):
        started = time.process_time()
        for item in items:
            work(item)
        runs.append(time.process_time() - started)
    return statistics.median(runs) * 1e6 / len(items)


def measure(name: str, records: list[LogRecord], repeats: int, module, grouping: bool = False) -> None:
    events = [extract(record) for record in records]
    # r1 named its pre-filter _may_hold_secret
    may_hold_secret = getattr(module, "may_hold_secret", None) or module._may_hold_secret
    if grouping:
        texts = [event.message for event in events]
        figures = {"redact_for_grouping": cpu_us(module.redact_for_grouping, events, repeats),
                   "redact_text(message)": cpu_us(module.redact_text, texts, repeats)}
    else:
        texts = [event.line for event in events]
        figures = {"redact": cpu_us(module.redact, events, repeats)}
    passed = sum(1 for text in texts if may_hold_secret(text))
    shown = ", ".join(f"{stage} {us:.1f} us = {1e6 / us:,.0f}/s" for stage, us in figures.items())
    print(f"{name}: {len(events)} entries, median of {repeats} (CPU): {shown} "
          f"({100 * passed / len(events):.1f}% of texts past the pre-filter)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--shared", type=Path)
    parser.add_argument("--redact-module", type=Path, help="a redact.py to measure instead of triage.redact")
    args = parser.parse_args()
    module = load_redact(args.redact_module)
    print(f"redact rules {module.RULES_VERSION} ({args.redact_module or 'triage/redact.py'})")
    measure("corpus", corpus_records(args.lines), args.repeats, module, grouping=True)
    measure("demo", demo_records(args.lines), args.repeats, module)
    if args.shared:
        measure("loghub-2k", loghub_records(args.shared, args.lines), args.repeats, module)
    return 0


if __name__ == "__main__":
    sys.exit(main())
