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
