"""A big run prepares and sums entries in worker processes (triage/workers.py, triage/prepare.py):
what it reports must be what one process reports, and a secret must not pass because the work
moved. Real processes and the real CLI; the workers are killed for real in the fallback test."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from tests.k8s_corpus import NIGHT_NS, NIGHT_START_NS, generate
from tests.secretcorpus import planted
from triage.extract import level_and_message
from triage.prepare import MEMO_MESSAGES, ChunkRules, Preparer
from triage.redact import redact_text
from triage.records import LogRecord, Window
from triage.state.countplan import CountPlan
from triage.state.coverplan import samples_slot_ns
from triage.workers import CHUNK, INLINE_AT_MOST, pages_of, summed

ENTRIES = INLINE_AT_MOST + 6 * CHUNK  # the last 6,000 (at least) go to the workers


def _corpus(path: Path) -> list[str]:
    """The adversarial Kubernetes corpus with the planted secrets spread over its second half (where
    the workers prepare it); returns the secrets."""
    entries = [(e["ts"], e["labels"], e["line"]) for e in generate(ENTRIES, seed=7)]
    secrets = planted()
    step = (len(entries) - INLINE_AT_MOST) // len(secrets)
    for index, secret in enumerate(secrets):
        at = INLINE_AT_MOST + index * step
        entries.insert(at, (entries[at][0], {"namespace": "shop", "app": "vault-client"}, secret.line))
    path.write_text("".join(json.dumps({"ts": str(ts), "labels": labels, "line": line}) + "\n"
                            for ts, labels, line in entries))
    return [s.secret for s in secrets]


def _run(tmp_path: Path, data: Path, workers: int) -> tuple[dict, str, str]:
    work = tmp_path / f"w{workers}"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIAGE_")} | {"TRIAGE_RUN__WORKERS": str(workers)}
    result = subprocess.run(
        [sys.executable, "-m", "triage", "run", "--source", f"file:{data}", "--from", str(NIGHT_START_NS),
         "--to", str(NIGHT_START_NS + NIGHT_NS), "--state", str(work / "s.db"), "--digest-dir", str(work / "d"),
         "--no-llm", "--report-json", str(work / "r.json"), "--debug"],
        capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((work / "r.json").read_text())
    return report, Path(report["digest_path"]).read_text(), result.stderr


def _timeless(digest: str) -> list[str]:
    """The digest without what depends on when it was made: its run line and the times relative to
    now ("(16 h ago)", "(in 7 h 1 min)"), which two runs a minute apart may round differently."""
    return [re.sub(r" \((in [^)]*|[^)]* ago)\)", "", line) for line in digest.splitlines()
            if "run " not in line and "Generated" not in line]


def test_a_run_prepared_in_worker_processes_reports_what_one_process_does(tmp_path):
    data = tmp_path / "in.jsonl"
    secrets = _corpus(data)
    alone, alone_digest, _ = _run(tmp_path, data, workers=1)
    shared, shared_digest, log = _run(tmp_path, data, workers=2)
    in_workers = int(re.search(r"prepare: (\d+) entries prepared in 2 worker processes, ", log)[1])
    assert in_workers >= ENTRIES + len(secrets) - INLINE_AT_MOST
    assert shared["lines"] == alone["lines"] == ENTRIES + len(secrets)
    assert shared["clusters"] == alone["clusters"]  # fingerprints, counts, templates, samples, labels
    assert _timeless(shared_digest) == _timeless(alone_digest)
    outputs = json.dumps(shared) + shared_digest + log
    assert [s for s in secrets if s in outputs] == []


def test_a_message_seen_before_is_redacted_as_if_it_were_new():
    # the memo is by exact text, never by shape: each planted secret comes twice, with its digit-shape
    # sibling (digits shifted: a card that fails Luhn, a key of the same look) next to it and more
    # distinct messages than the memo keeps in between; each must come out as redact_text makes it
    shifted = str.maketrans("0123456789", "1234567890")
    secrets = [(p.line, p.secret) for p in planted()]
    siblings = [(line.translate(shifted), None) for line, _ in secrets]
    filler = [(f"request {index} failed", None) for index in range(MEMO_MESSAGES + 10)]
    preparer = Preparer(redacting=True, emails=True, ips=False)
    for line, secret in secrets + siblings + filler + siblings + secrets:
        message, tokens = preparer(line, {})
        assert message == redact_text(level_and_message(line, {}, with_level=False)[1], emails=True, ips=False)
        if secret is not None:
            assert secret not in message and secret not in " ".join(tokens)


def _forkserver_children() -> list[int]:
    from multiprocessing import forkserver

    server = forkserver._forkserver._forkserver_pid
    children = []
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == server:
            children.append(int(status.parent.name))
    return children


def _rules(window: Window) -> ChunkRules:
    plan = CountPlan(ranges=window.split(NIGHT_NS // 4), covered=[], settling=[], counted_ids=set(),
                     settle_from_ns=window.to_ns, count_from_ns=window.from_ns)
    return ChunkRules(window, plan, only_ranges=False, slot_ns=samples_slot_ns(10), positions=(("namespace",), ("app",)),
                      redacting=True, emails=True, ips=False)


def test_chunks_are_the_same_wherever_the_pages_end():
    # Loki pages hold what a query's limit and a split leave (a tie page of a few entries, an empty one)
    entries = [(e["ts"], e["line"], e["labels"]) for e in generate(5 * CHUNK + 321, seed=5)]
    sizes, pages, start = [1, CHUNK - 1, 1500, 0, 2500, 7, CHUNK], [], 0
    for size in sizes:
        pages.append(entries[start:start + size])
        start += size
    pages.append(entries[start:])
    rules = _rules(Window(NIGHT_START_NS, NIGHT_START_NS + NIGHT_NS))
    records = [LogRecord(ts, labels, line) for ts, line, labels in entries]
    by_pages = list(summed(pages, rules, workers=1))
    assert [len(chunk) for chunk, _ in by_pages] == [CHUNK] * 5 + [321]
    assert by_pages == list(summed(pages_of(records), rules, workers=1))


def test_killed_workers_leave_the_rest_to_the_job_in_the_same_order(caplog):
    entries = generate(INLINE_AT_MOST + 20 * CHUNK, seed=3)
    records = [LogRecord(e["ts"], e["labels"], e["line"]) for e in entries]
    rules = _rules(Window(NIGHT_START_NS, NIGHT_START_NS + NIGHT_NS))
    expected = [part for _, part in summed(pages_of(records), rules, workers=1)]
    got = []
    for _, part in summed(pages_of(records), rules, workers=2):
        if len(got) == INLINE_AT_MOST // CHUNK + 1:  # chunks came back from the workers: all are running now
            killed = _forkserver_children()
            assert killed
            for pid in killed:
                os.kill(pid, signal.SIGKILL)
        got.append(part)
    assert got == expected
    assert sum(len(part.groups) for part in got) < len(records) / 2  # summed, not passed on entry by entry
    assert "the worker processes stopped" in caplog.text


def test_a_worker_re_runs_the_command_script_without_importing_the_cli():
    # multiprocessing runs the `triage` script again in every worker it starts (as __mp_main__): the
    # module the script imports must be one a worker already holds, not the CLI (click and every command)
    import tomllib

    entry = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]["scripts"]["triage"]
    module, _, function = entry.partition(":")
    probe = (f"import sys, triage.workers; before = set(sys.modules); import {module}; "
             "print(' '.join(sorted(set(sys.modules) - before)))")
    imported = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert "click" not in imported and "triage.cli" not in imported, imported
    version = subprocess.run([sys.executable, "-c", f"import sys; from {module} import {function}; "
                              f"sys.argv = ['triage', '--version']; {function}()"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("triage, version"), version


def test_a_cgroup_cpu_limit_caps_the_workers(tmp_path):
    from triage.startup import _cgroup_quota

    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("max 100000\n")
    assert _cgroup_quota(v2) is None  # no limit
    (v2 / "cpu.max").write_text("150000 100000\n")  # a Kubernetes limit of 1500m
    assert _cgroup_quota(v2) == 1.5
    v1 = tmp_path / "v1" / "cpu"
    v1.mkdir(parents=True)
    (v1 / "cpu.cfs_quota_us").write_text("-1\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    assert _cgroup_quota(tmp_path / "v1") is None
    (v1 / "cpu.cfs_quota_us").write_text("100000\n")
    assert _cgroup_quota(tmp_path / "v1") == 1.0
    assert _cgroup_quota(tmp_path / "none") is None
