#!/usr/bin/env python3
"""Entries/s of `triage run --source loki` (the whole job, `--no-llm`) against two fetch-only clients.

All three read the same entries from the same fake Loki (tests/lokifake.py, a real HTTP server
on 127.0.0.1, run in its own process) in one invocation:
- whole job: `triage run --source loki --no-llm` with the default config (loki.query,
  loki.page_limit, loki.concurrency, loki.split as INTERFACE.md says), fetch + extract + redact +
  cluster + state + digest, timed from outside;
- plain client (the floor for a Python client): requests + orjson, the window cut into
  `loki.concurrency` equal sub-ranges fetched at once (as 4 parallel logcli fetches would), the
  same page limit, forward paging from the newest timestamp, decode and drop the entries already
  seen; nothing else;
- sequential client, for reference: one stream of pages over the whole window, as
  `logcli query --limit 0 --batch 5000` pages (one request at a time).

Entries: realistic Kubernetes error lines that the default loki.query selects, squeezed into one
hour: the demo source's (as bench/run_speed.py), or with --corpus k8s tests/k8s_corpus.py's. The fake serves
recorded pages: every response is computed once (a warm-up pass of each client) and then served
as the same bytes for the same request, so the measured passes pay only the HTTP boundary (the job
splits its range by what the first pages show: its requests that no warm-up made are answered from
the fake's time index, its CPU in that pass is printed). Each
figure is one measured pass; the output names what bounds it (client CPU vs wall time, the fake's
CPU in the same pass) and the peak RSS of each child process (os.wait4 ru_maxrss). With --paced
the fake answers at the pace of the real Loki measured in issue #17 (a model: see PACED_*), which is
where the overlap of fetching and processing shows.

usage: bench/loki_speed.py [--entries 200000] [--corpus demo|k8s] [--paced] [--work bench/out]
                           [--triage .venv/bin/triage]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.launch import run_measured, worker_figures  # noqa: E402

HOUR_NS = 3600 * 10**9
WINDOW_START_NS = 1_796_083_200 * 10**9  # 2026-12-01T00:00:00Z, the corpus's night
DEFAULT_QUERY = '{namespace=~".+"} |~ "(?i)(error|fatal|panic|exception)"'  # INTERFACE.md's loki.query


# ---------------------------------------------------------------------- the fake Loki's process

def corpus_entries(corpus: str, count: int, work: Path) -> list[tuple[dict, int, str]]:
    """``count`` entries of the corpus that the default query selects, in time order squeezed into
    one hour (cached in ``work``). demo: the demo source's Kubernetes error logs (JSON, logfmt, plain
    text, stack traces; the lines of bench/run_speed.py); k8s: tests/k8s_corpus.py's adversarial
    workload (longer lines, klog, more families: several times the per-line cost)."""
    import orjson

    cache = work / f"loki-entries-{corpus}-{count}.json"
    if cache.is_file():
        return [tuple(e) for e in orjson.loads(cache.read_bytes())]
    from tests.lokifake import _labels_match, _line_match, parse_query

    matchers, filters = parse_query(DEFAULT_QUERY)
    chosen: list[tuple[dict, int, str]] = []
    if corpus == "k8s":
        from tests.k8s_corpus import generate

        # about 70% of this corpus is selected (node journal entries have no namespace; some lines
        # name no error word): generate enough, keep the first ``count`` selected
        generated = ((e["labels"], e["ts"], e["line"]) for e in generate(int(count / 0.68) + 1000))
    else:
        from triage.records import Window
        from triage.source.demo import DemoSource

        def hours():
            source, hour = DemoSource(), WINDOW_START_NS
            while True:
                yield from ((r.labels, r.ts_ns, r.line) for r in source.fetch(Window(hour, hour + HOUR_NS)))
                hour += HOUR_NS

        generated = hours()
    for entry in generated:
        if _labels_match(entry[0], matchers) and _line_match(entry[2], filters):
            chosen.append(entry)
            if len(chosen) == count:
                break
    if len(chosen) < count:
        raise SystemExit(f"the {corpus} corpus gave only {len(chosen)} selected entries, not {count}")
    first, span = chosen[0][1], max(chosen[-1][1] - chosen[0][1] + 1, 1)
    entries = [(labels, WINDOW_START_NS + (ts - first) * (HOUR_NS - 1) // span, line) for labels, ts, line in chosen]
    work.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(orjson.dumps(entries))
    return entries


# --paced: a model of the real Loki of issue #17 on this machine, from its two figures: logcli's
# sequential fetch of 200k entries took 4.8 s (41.9k/s: 119 ms a 5000-entry page) and 4 parallel
# fetches reached 51k/s (98 ms a page when requests overlap). Each answer waits PACED_LATENCY_S
# (the part that overlaps), then its entries at PACED_RATE one request at a time (the part that does not).
PACED_LATENCY_S = 0.021
PACED_RATE = 51_000


def serve(corpus: str, count: int, work: Path, paced: bool) -> int:
    """The fake Loki's own process: prints its URL, serves until stdin closes."""
    import orjson

    from tests.lokifake import FakeLoki

    entries = corpus_entries(corpus, count, work)
    jsonl = work / f"loki-entries-{corpus}-{count}.jsonl"
    with jsonl.open("wb") as out:  # the same entries for the file source
        for labels, ts, line in entries:
            out.write(orjson.dumps({"ts": str(ts), "labels": labels, "line": line}) + b"\n")
    service = threading.Lock()
    sizes: dict[int, int] = {}  # entries per recorded body

    class BenchLoki(FakeLoki):
        def _handler(self):
            base = super()._handler()

            class Handler(base):
                def do_GET(self):
                    if self.path == "/bench/cpu":  # this process's CPU seconds, read around each pass
                        return self.send_body(200, str(time.process_time()).encode(), "text/plain")
                    return super().do_GET()

                def send_body(self, status, data, content_type, headers=None):
                    if paced and status == 200 and data.startswith(b'{"status"'):
                        if id(data) not in sizes:
                            result = orjson.loads(data)["data"]["result"]
                            sizes[id(data)] = sum(len(s.get("values", ())) for s in result) if isinstance(
                                result, list) else 0
                        time.sleep(PACED_LATENCY_S)
                        with service:
                            time.sleep(sizes[id(data)] / PACED_RATE)
                    return super().send_body(status, data, content_type, headers)

            return Handler

    with BenchLoki(entries, recorded=True) as fake:
        print(json.dumps({"url": fake.url, "entries": len(entries), "from_ns": WINDOW_START_NS,
                          "to_ns": WINDOW_START_NS + HOUR_NS, "jsonl": str(jsonl)}), flush=True)
        sys.stdin.read()
    return 0


# ---------------------------------------------------------------------- the fetch-only clients

def _page_all(session, url: str, query: str, start: int, end: int, limit: int) -> int:
    """Forward pages of [start, end): decode each, drop what the previous page returned at its newest ts."""
    import orjson

    count = 0
    seen: set = set()
    while True:
        response = session.get(url + "/loki/api/v1/query_range", params={
            "query": query, "start": str(start), "end": str(end), "limit": str(limit), "direction": "forward"},
            timeout=30)
        response.raise_for_status()
        body = orjson.loads(response.content)
        newest = start
        returned = 0
        for stream in body["data"]["result"]:
            values = stream["values"]
            returned += len(values)
            for ts, line in values:
                ts = int(ts)
                if ts == start and (ts, line) in seen:
                    continue
                count += 1
                if ts > newest:
                    newest = ts
        if returned < limit:
            return count
        if newest == start:
            raise SystemExit("a same-nanosecond tie larger than a page: not handled by the bench client")
        seen = {(int(ts), line) for stream in body["data"]["result"] for ts, line in stream["values"]
                if int(ts) == newest}
        start = newest


def client(kind: str, url: str, query: str, from_ns: int, to_ns: int, limit: int, concurrency: int,
           ranges: list[tuple[int, int]]) -> int:
    import requests

    local = threading.local()

    def session():
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return local.session

    if kind == "sequential":
        count = _page_all(session(), url, query, from_ns, to_ns, limit)
    elif kind == "source":  # triage's own Loki source, its records counted and dropped
        from triage.config import Config
        from triage.records import Window
        from triage.source.loki import LokiSource
        from triage.timeparse import timedelta_to_ns

        loki = Config().loki
        source = LokiSource(url, query, page_limit=limit, split_ns=timedelta_to_ns(loki.split), concurrency=concurrency)
        count = sum(1 for _ in source.fetch(Window(from_ns, to_ns)))
        if source.notes.failures:
            raise SystemExit(f"the Loki source failed: {source.notes.failures[0].error}")
    else:
        with ThreadPoolExecutor(concurrency) as pool:
            count = sum(pool.map(lambda r: _page_all(session(), url, query, r[0], r[1], limit), ranges))
    print(count)
    return 0


# ---------------------------------------------------------------------- orchestration

def _timed(command: list[str], env: dict | None = None) -> tuple[float, float, int, str, str]:
    """Wall seconds, CPU seconds, peak RSS (KiB), stdout and stderr of one child process, measured as its
    own process (bench/launch.py: this process's peak would otherwise count as the child's)."""
    result = run_measured(command, env=env)
    out, err = result.stdout.decode(), result.stderr.decode()
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command[:3])}... exited {result.returncode}:\n{err[-2000:]}")
    return result.wall_s, result.cpu_s, result.peak_rss_kib, out, err


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--corpus", choices=["demo", "k8s"], default="demo")
    parser.add_argument("--paced", action="store_true",
                        help="the fake answers at the pace of the real Loki measured in issue #17 (a model)")
    parser.add_argument("--work", type=Path, default=Path("bench/out"))
    parser.add_argument("--triage", default=str(Path(sys.executable).with_name("triage")))
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--client", choices=["plain", "sequential", "source"], help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.corpus, args.entries, args.work, args.paced)
    if args.client:
        spec = json.loads(args.spec)
        return client(args.client, **spec)

    from triage.config import Config

    loki = Config().loki
    args.work.mkdir(parents=True, exist_ok=True)
    serve_args = ["--serve", "--corpus", args.corpus, "--entries", str(args.entries), "--work", str(args.work)]
    server = subprocess.Popen([sys.executable, __file__, *serve_args, *(["--paced"] if args.paced else [])],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(server.stdout.readline())
        url, from_ns, to_ns = info["url"], info["from_ns"], info["to_ns"]
        step = -(-(to_ns - from_ns) // loki.concurrency)
        ranges = [(start, min(start + step, to_ns)) for start in range(from_ns, to_ns, step)]
        import requests

        def server_cpu() -> float:
            return float(requests.get(url + "/bench/cpu", timeout=5).text)

        spec = {"url": url, "query": loki.query, "from_ns": from_ns, "to_ns": to_ns, "limit": loki.page_limit,
                "concurrency": loki.concurrency, "ranges": ranges}
        clients = {kind: [sys.executable, __file__, "--client", kind, "--spec", json.dumps(spec)]
                   for kind in ("plain", "sequential", "source")}
        state = args.work / "loki-speed.db"
        report = args.work / "loki-speed-report.json"

        jsonl = Path(info["jsonl"])
        def job(source: str) -> list[str]:
            return [args.triage, "run", "--source", source, "--loki-url", url, "--from", str(from_ns),
                    "--to", str(to_ns), "--state", str(state), "--digest-dir", str(args.work / "loki-digests"),
                    "--no-llm", "--report-json", str(report), "--debug"]

        env = {k: v for k, v in os.environ.items() if not k.startswith("TRIAGE_")}
        # warm-up: every request of each client is answered once, so the measured passes get recorded pages
        # (the job's too: it splits its range by what its first pages show, into requests of its own)
        for command in (clients["plain"], clients["sequential"], job("loki")):
            for leftover in args.work.glob("loki-speed.db*"):
                leftover.unlink()
            _timed(command, env)
        results = {}
        worker_rss = {}
        waits = None
        for name, command in (("whole job", job("loki")), ("plain client", clients["plain"]),
                              ("sequential client", clients["sequential"]), ("Loki source alone", clients["source"]),
                              ("job, from a file", job(f"file:{jsonl}"))):
            for leftover in args.work.glob("loki-speed.db*"):  # every job starts from an empty state
                leftover.unlink()
            cpu_before = server_cpu()
            wall, cpu, rss, out, err = _timed(command, env)
            served_cpu = server_cpu() - cpu_before
            workers = worker_figures(err)
            if workers:  # the job's worker processes are not in its rusage
                cpu += workers.cpu_s
                worker_rss[name] = workers
            entries = json.loads(report.read_text())["lines"] if command[0] == args.triage else int(out)
            results[name] = (wall, cpu, rss, served_cpu, entries)
            if name == "whole job":
                waits = re.search(r"loki: (\d+) requests in (\d+) pieces; the reader waited ([\d.]+) s for pages, "
                                  r"fetchers waited ([\d.]+) s for room; at most (\d+) pages held", err)
    finally:
        server.stdin.close()
        server.wait(10)

    load = os.getloadavg()[0]
    plain_s = results["plain client"][0]
    sequential_s = results["sequential client"][0]
    pace = (f"paced like the issue's real Loki: {PACED_LATENCY_S * 1000:.0f} ms + 1/{PACED_RATE:,} s an entry, "
            "one at a time" if args.paced else "recorded pages")
    print(f"entries: {info['entries']:,} ({args.corpus} corpus) over 1 h from the fake Loki ({pace}), "
          f"query {loki.query}")
    print(f"page_limit {loki.page_limit}, concurrency {loki.concurrency}, {len(ranges)} request sub-ranges; "
          f"{os.cpu_count()} CPUs, load average {load:.2f} at the end")
    print(f"{'':18} {'wall s':>7} {'entries/s':>10} {'vs plain':>8} {'vs seq.':>8} {'CPU s':>6} {'fake CPU s':>10} "
          f"{'peak RSS':>9}  bound by")
    job_waited = float(waits[3]) if waits else None
    for name, (wall, cpu, rss, served_cpu, entries) in results.items():
        if name == "whole job" and job_waited is not None and job_waited >= 0.15 * wall:
            bound = "the fetch (waited for pages)"
        elif served_cpu >= 0.85 * wall:
            bound = "the fake Loki"
        elif cpu >= 0.85 * wall:
            bound = "its own CPU"
        elif name == "whole job" and job_waited is not None:
            bound = "its own CPU, shared with other processes"
        else:
            bound = "its CPU + waiting on responses"
        print(f"{name:18} {wall:7.2f} {entries / wall:10,.0f} {plain_s / wall:7.2f}x {sequential_s / wall:7.2f}x "
              f"{cpu:6.2f} {served_cpu:10.2f} {rss / 1024:6.0f} MiB  {bound}")
    counts = {name: r[4] for name, r in results.items()}
    if len(set(counts.values())) != 1:
        print(f"entry counts differ: {counts}", file=sys.stderr)
        return 1
    print(f"load average {load:.2f} on {os.cpu_count()} CPUs: CPU s below wall s is time the process did not run")
    for name, workers in worker_rss.items():
        print(f"{name}: {workers.entries:,} entries prepared in {workers.workers} worker processes, their CPU "
              f"({workers.cpu_s:.2f} s) is in 'CPU s'; peak RSS above is the job's process, each worker's at most "
              f"{workers.peak_rss_mib} MiB")
    if waits:
        print(f"whole job: {waits[1]} requests in {waits[2]} pieces; the job waited {waits[3]} s for pages "
              f"(network), its fetchers waited {waits[4]} s for the job to take pages; at most {waits[5]} "
              "pages held")
    print("ratios are speed: the client's time over the row's time (>1: the row is faster); 'bound by': "
          "CPU >= 85% of wall time is CPU-bound (on 2 cores the job's fetch threads share one GIL).")
    print("Loki source alone: triage's fetch (paging, pieces, decode, records, order) with nothing done to "
          "the records; job, from a file: the same entries as JSON Lines through `--source file:`, so the "
          "difference with the whole job is what reading from Loki adds.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
