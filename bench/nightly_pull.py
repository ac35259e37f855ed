"""A day of hourly runs, then the nightly, against the fake Loki: what the nightly pulls, and whether
its counts equal a full re-fetch's (issue 18 target: at most 10 % of the day pulled, every count equal).

The day is tests/dayofruns.py's (entries on bin edges, minute edges, ties across streams, a burst, a
comeback), scaled by --per-hour. The full re-fetch runs the same nightly on a copy of the same state
that forgot its coverage, so history, episodes and ledger are the same and only the fetching differs.
Prints one line per figure; exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests import dayofruns as day  # noqa: E402
from tests.lokifake import FakeLoki  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-hour", type=int, default=2000, help="steady api lines an hour (default 2000)")
    parser.add_argument("--services", type=int, default=200, help="more apps, one steady problem each (default 200)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FakeLoki() as fake:
        base = Path(tmp)
        in_day = day.fill_day(fake, per_hour=args.per_hour, services=args.services)
        started = time.perf_counter()
        day.run_the_day(base / "s.db", fake.url)
        hourly_s = time.perf_counter() - started
        full_state = day.copy_state(base / "s.db", base / "full" / "s.db", forget_coverage=True)
        requests = len(fake.requests)
        started = time.perf_counter()
        nightly = day.run(base / "s.db", fake.url, day.nightly_now(), schedule="nightly")
        nightly_s = time.perf_counter() - started
        nightly_requests = len(fake.requests) - requests
        started = time.perf_counter()
        full = day.run(full_state, fake.url, day.nightly_now(), schedule="nightly")
        full_s = time.perf_counter() - started
        digest_equal = day.digest_facts(_text(nightly.digest_path)) == day.digest_facts(_text(full.digest_path))
    pulled, full_pulled = nightly.sources[0].pulled, full.sources[0].pulled
    facts, full_facts = day.facts(nightly), day.facts(full)
    equal = facts == full_facts
    share = pulled / max(in_day, 1)
    print(f"day: {in_day} entries in the nightly's window, {len(facts['clusters'])} clusters; "
          f"24 hourly runs took {hourly_s:.1f} s")
    print(f"nightly on the state: pulled {pulled} entries ({share:.1%} of the day), {nightly.sources[0].queries} "
          f"requests ({nightly_requests} seen by the fake Loki), {nightly_s:.2f} s, exit {nightly.exit_code}")
    print(f"full re-fetch:        pulled {full_pulled} entries, {full.sources[0].queries} requests, {full_s:.2f} s, "
          f"exit {full.exit_code}")
    print(f"counts, first/last seen, statuses, histograms, report flags equal a full re-fetch: {equal}")
    print(f"digest facts (the day, card counts and headings, roll-up) equal: {digest_equal}")
    if not equal:
        for fingerprint in sorted(set(facts["clusters"]) | set(full_facts["clusters"])):
            mine, theirs = facts["clusters"].get(fingerprint), full_facts["clusters"].get(fingerprint)
            if mine != theirs:
                print(f"  differs: {fingerprint}: {mine} != {theirs}")
    missed = [name for name, ok in (("pulled at most 10% of the day", share <= 0.10), ("counts equal", equal),
                                    ("digest facts equal", digest_equal)) if not ok]
    print("target met" if not missed else f"target MISSED: {', '.join(missed)}")
    return 1 if missed else 0


def _text(path: str | None) -> str:
    return Path(path).read_text(encoding="utf-8") if path else ""


if __name__ == "__main__":
    sys.exit(main())
