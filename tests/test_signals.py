"""SIGTERM and SIGINT stop a run cleanly: documented exit code, report written, state untouched."""

import json
import signal
import subprocess
import sys
import time

import pytest

from tests.lokifake import FakeLoki, Fault

S = 10**9
T0 = 1795417200 * S


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_mid_fetch(tmp_path, sig, code):
    with FakeLoki([({"namespace": "prod"}, T0 + S, "boom 1")]) as fake:
        fake.fail_next(*[Fault(kind="slow", delay_s=0.3)] * 40)
        report = tmp_path / "r.json"
        process = subprocess.Popen(
            [sys.executable, "-m", "triage", "run", "--loki-url", fake.url, "--query", '{namespace="prod"}',
             "--from", str(T0), "--to", str(T0 + 40 * 3600 * S), "--state", str(tmp_path / "s.db"),
             "--digest-dir", str(tmp_path / "d"), "--report-json", str(report)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        while not fake.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        process.send_signal(sig)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == code, stderr
    assert "Traceback" not in stderr
    assert json.loads(report.read_text())["exit_code"] == code
    assert not (tmp_path / "d").exists()
    if (tmp_path / "s.db").exists():
        import sqlite3

        assert sqlite3.connect(tmp_path / "s.db").execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0


def test_wait_gives_up_with_exit_5(tmp_path):
    from click.testing import CliRunner

    from triage.cli import cli
    from triage.state.lock import RunLock

    lock = RunLock(tmp_path / "s.db")
    lock.acquire()
    try:
        result = CliRunner().invoke(cli, ["run", "--source", "demo", "--since", "1m", "--state", str(tmp_path / "s.db"),
                                          "--wait", "1s"])
    finally:
        lock.release()
    assert result.exit_code == 5 and "after waiting 1s" in result.output


def test_sigterm_during_a_300s_retry_after_exits_143_at_once_with_a_sound_state(tmp_path):
    """Issue 13.4: a 429 with Retry-After: 300 must not hold a stopping pod until it is SIGKILLed."""
    import sqlite3

    with FakeLoki([({"namespace": "prod"}, T0 + S, "boom 1")]) as fake:
        fake.fail_next(*[Fault(429, "too many outstanding requests", {"Retry-After": "300"})] * 20)
        process = subprocess.Popen(
            [sys.executable, "-m", "triage", "run", "--loki-url", fake.url, "--query", '{namespace="prod"}',
             "--from", str(T0), "--to", str(T0 + 4 * 3600 * S), "--state", str(tmp_path / "s.db"),
             "--digest-dir", str(tmp_path / "d"), "--report-json", str(tmp_path / "r.json")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while len(fake.requests) < 4 and time.monotonic() < deadline:  # every worker is in its 300 s wait
            time.sleep(0.05)
        assert len(fake.requests) >= 4
        process.send_signal(signal.SIGTERM)
        try:
            _, stderr = process.communicate(timeout=15)  # the grace period a pod would have; far below 300 s
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise AssertionError("triage run did not stop within 15 s of SIGTERM") from None
    assert process.returncode == 143, stderr
    assert "Traceback" not in stderr
    with sqlite3.connect(tmp_path / "s.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0
