"""Kill the job with SIGKILL at random points, then run again: the state stays whole and nothing is lost.

Counts are never doubled or lost, PRAGMA integrity_check stays ok, and every cluster reaches Slack
(a local server that records what it accepted): at least once, and more than once only when a kill
landed between Slack's acceptance and the ledger's commit (at most one extra copy per kill).
TRIAGE_STRESS_KILLS sets the number of kills (make stress: 200).
"""

from __future__ import annotations

import json
import os
import random
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
            undelivered = conn.execute("SELECT COUNT(*) FROM ledger WHERE channel = 'slack' AND status != 'sent'").fetchone()[0]
        assert counted == expected, "counts are never doubled or lost"
        assert undelivered == 0
        posted = slack.texts()
        copies = {fp: posted.count(f"`{fp}`") for fp in episodes}
        assert all(count >= 1 for count in copies.values()), "every cluster reached Slack"
        assert sum(count - 1 for count in copies.values()) <= kills, "at most one extra copy per kill"
    print(f"\n{KILLS} runs started, {kills} killed with SIGKILL; {len(episodes)} clusters, {expected} entries counted once")


def _integrity(path: Path) -> str | None:
    if not path.exists():
        return None
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
