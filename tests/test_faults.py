"""The rest of the fault matrix: each fault ends with its documented exit code, a visible warning,
and an unharmed state file (see README, "Fault matrix")."""

from __future__ import annotations

import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from triage.cli import cli

S = 10**9
H = 3600 * S
T0 = 1795417200 * S


def write(path: Path, count: int = 3, prefix: str = "boom") -> Path:
    path.write_text("".join(json.dumps({"ts": str(T0 + i * S), "labels": {"namespace": "prod", "app": f"a{i % 50}"},
                                        "line": f"{prefix} {i} failed in step {i % 7} of job {i % 11}"}) + "\n"
                            for i in range(count)))
    return path


def invoke(tmp_path, data, *extra, env=None):
    return CliRunner().invoke(cli, ["run", "--source", f"file:{data}", "--from", str(T0), "--to", str(T0 + H),
                                    "--state", str(tmp_path / "s.db"), "--digest-dir", str(tmp_path / "d"),
                                    "--report-json", str(tmp_path / "r.json"), *extra], env=env or {})


def test_otlp_endpoint_down_is_not_a_failure(tmp_path):
    result = invoke(tmp_path, write(tmp_path / "in.jsonl"), env={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
                                                                 "OTEL_EXPORTER_OTLP_TIMEOUT": "1"})
    assert result.exit_code == 0
    assert json.loads((tmp_path / "r.json").read_text())["trace_id"]


def test_smtp_server_down_is_a_delivery_failure(tmp_path):
    result = invoke(tmp_path, write(tmp_path / "in.jsonl"), env={
        "TRIAGE_EMAIL__HOST": "127.0.0.1", "TRIAGE_EMAIL__PORT": "9", "TRIAGE_EMAIL__TLS": "none",
        "TRIAGE_EMAIL__FROM": "t@example.com", "TRIAGE_EMAIL__TO": '["o@example.com"]'})
    assert result.exit_code == 4 and "delivery email failed" in result.output and "Connection refused" in result.output
    with sqlite3.connect(tmp_path / "s.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM ledger WHERE channel='email' AND status='pending'").fetchone()[0] == 3


def test_read_only_state_directory_exits_5_and_changes_nothing(tmp_path):
    data = write(tmp_path / "in.jsonl")
    assert invoke(tmp_path, data).exit_code == 0
    before = (tmp_path / "s.db").read_bytes()
    os.chmod(tmp_path / "s.db", 0o400)
    try:
        if os.geteuid() == 0:  # root ignores file modes: run the job as an unprivileged user instead
            result = _as_nobody(tmp_path, data)
            code, output = result.returncode, result.stderr
        else:
            result = invoke(tmp_path, data, "--from", str(T0))
            code, output = result.exit_code, result.output
    finally:
        os.chmod(tmp_path / "s.db", 0o600)
    assert code == 5 and ("not writable" in output or "read-only" in output or "Permission denied" in output), output
    assert (tmp_path / "s.db").read_bytes() == before


def _as_nobody(tmp_path: Path, data: Path) -> subprocess.CompletedProcess:
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="triage-ro-", dir="/tmp"))
    os.chmod(base, 0o755)
    for name in ("s.db", "in.jsonl"):
        (base / name).write_bytes((tmp_path / name if name == "s.db" else data).read_bytes())
    os.chmod(base / "s.db", 0o444)
    os.chmod(base / "in.jsonl", 0o444)
    from tests.conftest import world_readable_runtime

    pythonpath = world_readable_runtime(base / "runtime")
    (base / "out").mkdir(mode=0o777)
    os.chmod(base / "out", 0o777)
    result = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m", "triage", "run",
         "--source", f"file:{base / 'in.jsonl'}", "--from", str(T0), "--to", str(T0 + H), "--state",
         str(base / "s.db"), "--digest-dir", str(base / "out")],
        capture_output=True, text=True, cwd=base / "out",
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": pythonpath, "TRIAGE_LLM__MODE": "off",
             "HOME": str(base / "out")})
    (tmp_path / "s.db").write_bytes((base / "s.db").read_bytes())
    import shutil

    shutil.rmtree(base, ignore_errors=True)
    return result


def test_disk_full_while_writing_the_state_exits_5_and_keeps_the_file_whole(tmp_path):
    small = write(tmp_path / "small.jsonl", 3)
    assert invoke(tmp_path, small).exit_code == 0
    big = write(tmp_path / "big.jsonl", 20_000, prefix="flood")
    size = (tmp_path / "s.db").stat().st_size + sum(p.stat().st_size for p in tmp_path.glob("s.db-*"))

    def limit():  # the file size limit stands in for a full disk: writes past it fail with EFBIG
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size + 64 * 1024, size + 64 * 1024))

    result = subprocess.run([sys.executable, "-m", "triage", "run", "--source", f"file:{big}", "--from", str(T0),
                             "--to", str(T0 + H), "--state", str(tmp_path / "s.db"), "--digest-dir",
                             str(tmp_path / "d2")], capture_output=True, text=True, preexec_fn=limit,
                            env={**os.environ, "TRIAGE_LLM__MODE": "off"})
    assert result.returncode == 5, result.stderr
    assert "disk full" in result.stderr or "not writable" in result.stderr or "disk" in result.stderr
    with sqlite3.connect(tmp_path / "s.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT SUM(count) FROM counts").fetchone()[0] == 3, "the failed run added nothing"


def test_ctrl_c_stops_the_run_and_the_embedded_server(tmp_path):
    from triage.summarize.models import QWEN_05B, default_cache_dir, ensure_model

    ensure_model(QWEN_05B, default_cache_dir(dict(os.environ)))
    data = write(tmp_path / "in.jsonl", 40)
    process = subprocess.Popen([sys.executable, "-m", "triage", "run", "--source", f"file:{data}", "--from", str(T0),
                                "--to", str(T0 + H), "--state", str(tmp_path / "s.db"), "--digest-dir",
                                str(tmp_path / "d"), "--report-json", str(tmp_path / "r.json")],
                               env={**os.environ, "TRIAGE_LLM__MODE": "embedded"},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    server = None
    while time.monotonic() < deadline and server is None:
        server = _child_server(process.pid)
        time.sleep(0.1)
    assert server, "the embedded server started"
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert json.loads((tmp_path / "r.json").read_text())["exit_code"] == 130
    for _ in range(50):
        if not _alive(server):
            break
        time.sleep(0.1)
    assert not _alive(server), "the embedded llama-server was stopped"


def _child_server(parent: int) -> int | None:
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and b"triage.summarize.server_main" in (proc / "cmdline").read_bytes() \
                    and int((proc / "stat").read_text().split()[3]) == parent:
                return int(proc.name)
        except (OSError, ValueError):
            continue
    return None


def _alive(pid: int) -> bool:
    try:
        return (Path(f"/proc/{pid}/stat").read_text().split()[2]) != "Z"
    except OSError:
        return False
