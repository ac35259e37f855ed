"""Kill the job with SIGKILL at random points, then run again: the state stays whole and nothing is lost.

Counts are never doubled or lost, PRAGMA integrity_check stays ok, and every cluster reaches Slack
(a local server that records what it accepted): at least once, and more than once only when a kill
landed between Slack's acceptance of a post and the ledger's commit (at most that one post's cards
again per kill). The very first run is killed too: on purpose right when the state file (or its
build file) appears, and at random points of a fresh hourly run. TRIAGE_STRESS_KILLS sets the
number of kills of the long test (make stress: 200), TRIAGE_STRESS_TRIALS the fresh-state trials
(make stress: 12).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.slackfake import FakeSlack

S = 10**9
H = 3600 * S
T0 = 1795417200 * S
KILLS = int(os.environ.get("TRIAGE_STRESS_KILLS", "20"))
TRIALS = int(os.environ.get("TRIAGE_STRESS_TRIALS", "4"))
FINGERPRINT = re.compile(r"fingerprint `([0-9a-f]+)`")


def entries(path: Path, hours: int) -> Path:
    rng = random.Random(7)
    rows = []
    for hour in range(hours):
        for problem in range(3 + hour % 4):
            for i in range(rng.randrange(1, 30)):
                rows.append({"ts": str(T0 + hour * H + rng.randrange(H)),
                             "labels": {"namespace": "prod", "app": f"app{problem + hour // 3}"},
                             "line": f"problem {problem + hour // 3} failed for request {i}"})
    rows.sort(key=lambda r: int(r["ts"]))
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def command(data: Path, state: Path, digests: Path, hour: int) -> list[str]:
    return [sys.executable, "-m", "triage", "run", "--source", f"file:{data}", "--schedule", "hourly",
            "--from", str(T0 + hour * H), "--to", str(T0 + (hour + 1) * H), "--state", str(state),
            "--digest-dir", str(digests), "--wait", "30s"]


def test_random_sigkills_never_corrupt_double_or_lose(tmp_path):
    hours = 6
    data = entries(tmp_path / "in.jsonl", hours)
    state, digests = tmp_path / "s.db", tmp_path / "d"
    rng = random.Random(int(os.environ.get("TRIAGE_STRESS_SEED", "1")))
    with FakeSlack() as slack:
        env = {**os.environ, "TRIAGE_SLACK__WEBHOOK_URL": slack.url, "TRIAGE_LLM__MODE": "off",
               "TRIAGE_RUN__AUTO_PRIME": "false"}
        kills = 0
        for kill in range(KILLS):
            hour = kill % hours
            process = subprocess.Popen(command(data, state, digests, hour), env=env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.02, 0.45))
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                kills += 1
            process.wait(timeout=30)
            assert _integrity(state) in (None, "ok")
        for hour in range(hours):  # the runs that finish: they fill every gap the kills left
            done = subprocess.run(command(data, state, digests, hour), env=env, capture_output=True, text=True)
            assert done.returncode == 0, done.stderr
        assert _integrity(state) == "ok"
        expected = sum(1 for _ in data.open())
        with sqlite3.connect(state) as conn:
            counted = conn.execute("SELECT SUM(count) FROM counts").fetchone()[0]
            episodes = {fp for (fp,) in conn.execute("SELECT fingerprint FROM episodes")}
            undelivered = conn.execute("SELECT COUNT(*) FROM ledger WHERE channel = 'slack' "
                                       "AND status NOT IN ('sent', 'rolled_up')").fetchone()[0]
            rolled = {fp for (fp,) in conn.execute("SELECT e.fingerprint FROM ledger l JOIN episodes e USING "
                                                   "(episode_id) WHERE l.channel = 'slack' AND l.status = 'rolled_up'")}
        assert counted == expected, "counts are never doubled or lost"
        assert undelivered == 0
        posted = slack.texts()
        copies = {fp: posted.count(f"`{fp}`") for fp in episodes}
        assert all(count >= 1 or fp in rolled for fp, count in copies.items()), "every cluster reached Slack"
        assert sum(max(0, count - 1) for count in copies.values()) <= kills, "at most one extra copy per kill"
    print(f"\n{KILLS} runs started, {kills} killed with SIGKILL; {len(episodes)} clusters, {expected} entries counted once")


def flood(path: Path, clusters: int) -> Path:
    """One hour of ``clusters`` distinct problems: more than digest.max_cards, so Slack gets cards and a roll-up."""
    rng = random.Random(11)
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo",
             "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango"]
    rows = []
    for problem in range(clusters):
        first, second = words[problem % len(words)], words[(problem // len(words) * 7 + 3) % len(words)]
        for i in range(1 + problem % 3):
            rows.append({"ts": str(T0 + rng.randrange(H)), "labels": {"namespace": f"ns{problem % 4}",
                                                                      "app": f"{first}{problem}"},
                         "line": f"{first} {second} step {i} failed in {first}-{problem} worker"})
    rows.sort(key=lambda r: int(r["ts"]))
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _slack_reach(state: Path, posts: list[dict]) -> tuple[set[str], set[str], list[str]]:
    """(episode fingerprints, those ledgered as rolled up on Slack, every card fingerprint Slack accepted)."""
    with sqlite3.connect(state) as conn:
        episodes = {fp for (fp,) in conn.execute("SELECT fingerprint FROM episodes")}
        rolled = {fp for (fp,) in conn.execute("SELECT e.fingerprint FROM ledger l JOIN episodes e USING (episode_id) "
                                               "WHERE l.channel = 'slack' AND l.status = 'rolled_up'")}
        left = conn.execute("SELECT COUNT(*) FROM ledger WHERE status IN ('pending', 'sending')").fetchone()[0]
    assert left == 0, "nothing is left pending after the run that finishes"
    return episodes, rolled, [fp for post in posts for fp in FINGERPRINT.findall(json.dumps(post))]


def test_a_first_run_killed_in_the_state_creation_window_leaves_no_state_or_a_valid_one(tmp_path):
    """Kill right after the state file (or its build file beside it) appears, in a bounded loop."""
    data = entries(tmp_path / "in.jsonl", 2)
    env = {**os.environ, "TRIAGE_LLM__MODE": "off", "TRIAGE_RUN__AUTO_PRIME": "false"}
    hits = {"build": 0, "state": 0, "none": 0}
    deadline = time.monotonic() + 60
    for attempt in range(8):
        if time.monotonic() > deadline:
            break
        folder = tmp_path / f"t{attempt}"
        folder.mkdir()
        state = folder / "s.db"
        process = subprocess.Popen(command(data, state, folder / "d", 0), env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        seen = "none"
        wanted = "build" if attempt % 2 else "state"  # alternate: the build file's life, the state file's first instant
        limit = time.monotonic() + 20
        while process.poll() is None and time.monotonic() < limit:
            if state.exists():
                seen = "state"
            elif wanted == "build" and any(folder.glob(".s.db.new-*")):
                seen = "build"
            if seen != "none":
                process.send_signal(signal.SIGKILL)
                break
            time.sleep(0.0005)
        process.wait(timeout=30)
        hits[seen] += 1
        if state.exists():
            assert _integrity(state) == "ok"
            with sqlite3.connect(state) as conn:
                tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            assert {"clusters", "ledger", "episodes"} <= tables, "a state file that exists is a whole triage state"
        done = subprocess.run(command(data, state, folder / "d", 0), env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert _integrity(state) == "ok"
    assert hits["build"] + hits["state"] >= 1, hits
    print(f"\ncreation-window kills: {hits}")


def test_fresh_state_hourly_runs_killed_at_random_then_finished(tmp_path):
    """The issue's target: a fresh state and an hourly run SIGKILLed at a random point, then a run that
    finishes. Every cluster a clean run posts reaches Slack; duplicates stay within one post's cards."""
    data = flood(tmp_path / "in.jsonl", 60)
    rng = random.Random(int(os.environ.get("TRIAGE_STRESS_SEED", "1")))
    with FakeSlack() as slack:
        # 40 cards: a digest Slack gets in several posts, a second apart, so kills land between them too
        env = {**os.environ, "TRIAGE_SLACK__WEBHOOK_URL": slack.url, "TRIAGE_LLM__MODE": "off",
               "TRIAGE_RUN__AUTO_PRIME": "false", "TRIAGE_DIGEST__MAX_CARDS": "40"}
        clean = tmp_path / "clean"
        started = time.monotonic()
        done = subprocess.run(command(data, clean / "s.db", clean / "d", 0), env=env, capture_output=True, text=True)
        took = time.monotonic() - started
        assert done.returncode == 0, done.stderr
        clean_episodes, clean_rolled, clean_cards = _slack_reach(clean / "s.db", slack.accepted)
        clean_posts = [FINGERPRINT.findall(json.dumps(post)) for post in slack.accepted]
        assert len(clean_episodes) == 60 and len(slack.accepted) > 1 and clean_rolled and len(set(clean_cards)) == len(clean_cards)
        largest_post = max(len(cards) for cards in clean_posts)
        figures = []
        for trial in range(TRIALS):
            slack.accepted.clear()
            folder = tmp_path / f"trial{trial}"
            state = folder / "s.db"
            process = subprocess.Popen(command(data, state, folder / "d", 0), env=env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.0, took))
            killed = process.poll() is None
            if killed:
                process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
            posted_before = len(slack.accepted)
            assert _integrity(state) in (None, "ok")
            done = subprocess.run(command(data, state, folder / "d", 0), env=env, capture_output=True, text=True)
            assert done.returncode == 0, f"trial {trial}: {done.stderr}"  # never 5: the state is always usable
            assert _integrity(state) == "ok"
            episodes, rolled, cards = _slack_reach(state, slack.accepted)
            assert episodes == clean_episodes
            assert episodes <= set(cards) | rolled, "every cluster reached Slack, as a card or in the roll-up"
            duplicates = len(cards) - len(set(cards))
            assert duplicates <= (largest_post if killed else 0), "at most the one post in flight again"
            figures.append((killed, posted_before, duplicates))
    print(f"\n{TRIALS} fresh-state trials (clean run {took:.2f}s, {len(clean_posts)} posts of at most "
          f"{largest_post} cards): killed={sum(k for k, _, _ in figures)}, "
          f"posts accepted before the kill={[p for _, p, _ in figures]}, duplicate cards={[d for _, _, d in figures]}")


def test_a_kill_between_slacks_acceptance_and_the_ledger_resends_only_that_post(tmp_path):
    """The worst instant for a split digest: Slack accepted post 2 of 2, the job dies before the ledger
    commit. The next run resends what post 2 carried, and nothing of post 1."""
    data = flood(tmp_path / "in.jsonl", 60)
    state = tmp_path / "s.db"
    with FakeSlack() as slack:
        env = {**os.environ, "TRIAGE_SLACK__WEBHOOK_URL": slack.url, "TRIAGE_LLM__MODE": "off",
               "TRIAGE_RUN__AUTO_PRIME": "false", "TRIAGE_DIGEST__MAX_CARDS": "40"}
        process = subprocess.Popen(command(data, state, tmp_path / "d", 0), env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        slack.on_accept = lambda accepted: os.kill(process.pid, signal.SIGKILL) if accepted == 2 else None
        assert process.wait(timeout=60) == -signal.SIGKILL
        slack.on_accept = None
        first, second = ([fp for fp in FINGERPRINT.findall(json.dumps(post))] for post in slack.accepted[:2])
        assert first and second and len(slack.accepted) == 2
        done = subprocess.run(command(data, state, tmp_path / "d", 0), env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        episodes, rolled, cards = _slack_reach(state, slack.accepted)
        again = FINGERPRINT.findall(json.dumps(slack.accepted[2:]))
        assert again and not set(again) & set(first), "the post the ledger recorded is not sent again"
        duplicated = {fp for fp in cards if cards.count(fp) > 1}
        assert duplicated <= set(second) and len(duplicated) <= len(second)
        assert episodes <= set(cards) | rolled
    print(f"\nkilled between acceptance and ledger: post 1 {len(first)} cards not resent, post 2 "
          f"{len(second)} cards, {len(duplicated)} of them posted again")


def _integrity(path: Path) -> str | None:
    if not path.exists():
        return None
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
