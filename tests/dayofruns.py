"""A day of error lines in the fake Loki, 24 hourly runs over it, then the nightly (tests and bench).

The day is built to land where a state-answered nightly could go wrong: entries on the exact
nanosecond of a histogram bin edge and one nanosecond before it, on minute edges, on the window's
edges, several streams on one nanosecond, a burst, a problem new in the afternoon, one back after
more than a day of quiet, and a long steady one. The runs use the real pipeline with the clock
given, so windows, settling and high-water marks are the scheduled ones.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

S = 10**9
MIN = 60 * S
H = 3600 * S
DAY = 24 * H
T0 = 1795417200 * S  # 2026-11-23T07:00:00Z
DELAY = MIN
SKEW = 13 * S + 250_000_000  # the cron's start is never on the minute: windows are not aligned


def fill_day(fake, *, per_hour: int = 240, seed: int = 7, t0: int = T0, services: int = 0) -> int:
    """Entries from a day before ``t0`` to two hours after the day; returns how many fall in the day.
    ``services``: that many more apps, each with its own steady problem (a line every ~10 minutes)."""
    rng = random.Random(seed)
    extra = [f"svc{n:03d}" for n in range(services)]
    pods = {app: [f"{app}-7d9f8b6c5-{rng.choice('abcdfghjk')}{n}x2q" for n in range(4)]
            for app in ("api", "checkout", "worker", "auth", *extra)}

    def add(app, ts, line, namespace="prod"):
        fake.add({"namespace": namespace, "app": app, "pod": rng.choice(pods[app])}, ts, line)

    add("auth", t0 - 30 * H, "level=error msg=\"token signer key 3 expired\"")  # back after >24 h quiet
    for ts in range(t0 - 2 * H, t0 + DAY + 2 * H, H // per_hour):
        jitter = rng.randrange(H // per_hour)
        add("api", ts + jitter, f"error: connection refused to db-{rng.randrange(3)}:5432 after {rng.randrange(900)}ms")
        if rng.random() < 0.3:
            add("worker", ts + jitter // 2, f"ERROR job {rng.randrange(10**6)} failed: queue {rng.choice('abc')} full")
    for ts in range(t0 + 5 * H, t0 + 7 * H, H // (per_hour * 3)):  # a burst in the morning
        add("checkout", ts, f"error: timeout after {rng.randrange(3000)}ms calling payments")
    for n in range(40):  # new in the afternoon
        add("checkout", t0 + 14 * H + n * 7 * S, "panic: assignment to entry in nil map")
    for n in range(5):
        add("auth", t0 + 20 * H + n * S, f"level=error msg=\"token signer key {n} expired\"")
    for app in extra:
        for ts in range(t0 - H + rng.randrange(600 * S), t0 + DAY + H, 600 * S):
            add(app, ts + rng.randrange(60 * S), f"error: upstream {app}-backend returned {rng.choice((500, 502, 503))}")
    nightly_from = nightly_window(t0)[0]
    for k in range(25):  # on the nightly's bin edges, a nanosecond before them, and on minute edges
        edge = nightly_from + k * H
        for ts in (edge - 1, edge, edge + MIN - edge % MIN, edge + MIN - edge % MIN - 1):
            add("api", ts, f"error: connection refused to db-{k % 3}:5432 after {k}ms")
    for app in ("api", "worker"):  # two streams on one nanosecond
        add(app, t0 + 9 * H + 17, f"error: connection refused to db-1:5432 after 5ms" if app == "api"
            else "ERROR job 5 failed: queue a full")
    return sum(1 for _, ts, _ in fake.entries if nightly_window(t0)[0] <= ts < nightly_window(t0)[1])


def hourly_now(k: int, t0: int = T0) -> int:
    return t0 + k * H + DELAY + SKEW


def nightly_now(t0: int = T0) -> int:
    return hourly_now(24, t0) + 30 * S


def nightly_window(t0: int = T0) -> tuple[int, int]:
    end = nightly_now(t0) - DELAY
    return end - DAY, end


def run(state: Path, loki_url: str, now_ns: int, *, schedule: str, window=None, settings=None,
        digest_dir: Path | None = None):
    """One `triage run` through the pipeline with the clock given; returns the RunReport."""
    from triage import config, pipeline
    from triage.records import Schedule

    overrides = {"sources": ["loki"], "llm.mode": "off", "state.path": str(state), "loki.url": loki_url,
                 "loki.query": '{namespace=~".+"}', "loki.max_retries": 0,
                 "digest.dir": str(digest_dir or state.parent / "digests"), **(settings or {})}
    cfg = config.load(None, {}, overrides, cwd=state.parent)
    options = pipeline.RunOptions(schedule=Schedule(schedule), from_ns=window[0] if window else None,
                                  to_ns=window[1] if window else None)
    return pipeline.run(cfg, pipeline.build_deps(cfg), options, datetime.fromtimestamp(now_ns / S, UTC))


def run_the_day(state: Path, loki_url: str, t0: int = T0, settings=None) -> list:
    """A manual run over the day before (so a problem can come back), then 24 hourly runs."""
    reports = [run(state, loki_url, t0 - 28 * H, schedule="manual", window=(t0 - 31 * H, t0 - 29 * H),
                   settings=settings)]
    for k in range(1, 25):
        reports.append(run(state, loki_url, hourly_now(k, t0), schedule="hourly", settings=settings))
    return reports


def copy_state(state: Path, to: Path, *, forget_coverage: bool = False) -> Path:
    """A copy of the state file; ``forget_coverage``: as if nothing were counted, so a run fetches all
    (it re-counts what it reads, which is why this is only ever done to a copy)."""
    conn = sqlite3.connect(state)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    to.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(state, to)
    to.chmod(0o600)
    if forget_coverage:
        conn = sqlite3.connect(to)
        with conn:
            for table in ("coverage", "settle_spans", "settled_entries", "loki_minutes"):
                conn.execute(f"DELETE FROM {table}")
        conn.close()
    return to


def facts(report) -> dict:
    """Every fact of a run's report that must not depend on where its counts came from."""
    clusters = {}
    for entry in report.clusters:
        finding, cluster = entry.finding, entry.finding.cluster
        clusters[cluster.fingerprint] = {
            "status": str(finding.status), "muted": finding.muted, "count": cluster.count,
            "first_seen_ns": finding.first_seen_ns, "last_seen_ns": finding.last_seen_ns,
            "window_first_ns": cluster.first_ns, "window_last_ns": cluster.last_ns, "hist": list(cluster.hist),
            "template": cluster.template, "labels": dict(cluster.group_labels),
            "reported_to": sorted(entry.reported_to), "rolled_up": sorted(entry.rolled_up),
        }
    return {"lines": report.lines, "source_lines": [s.lines for s in report.sources], "clusters": clusters,
            "exit_code": report.exit_code}


def digest_facts(text: str) -> dict:
    """The digest's facts: the day (totals, new/regressed/spiking today, top ongoing with sparklines, went
    quiet), each card's count line and heading, the roll-up. Samples and "what varies" are left out: they
    come from a bounded sample by design."""
    day = text.split("## The day", 1)[1].split("\n> ℹ", 1)[0].split("\n---", 1)[0] if "## The day" in text else ""
    lines = text.splitlines()
    return {
        "day": day.strip(),
        "stats": [line.split(" · ", 1)[1] for line in lines if line.startswith("**Window:**")],
        "sources": [line for line in lines if line.startswith("**Sources:**")],
        "cards": [line for line in lines if line.startswith("### ") or " in this window · " in line],
        "rollup": text.split("\n**…", 1)[1].split("\n---", 1)[0].strip().splitlines() if "\n**…" in text else [],
    }
