"""Integration: the real llama-server (xllamacpp) with the real small model.

The model is downloaded once into $XDG_CACHE_HOME/triage/models (shared by every test and run)
and verified against its pinned sha256. A failed download fails these tests: never a skip.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from triage.cli import cli
from triage.summarize.embedded import EmbeddedServer
from triage.summarize.models import QWEN_05B, default_cache_dir, ensure_model

S = 10**9
T0 = 1795417200 * S


@pytest.fixture(scope="session")
def model_path() -> Path:
    return ensure_model(QWEN_05B, default_cache_dir(dict(os.environ)))


@pytest.fixture(scope="session")
def llama_url(model_path):
    with EmbeddedServer(model_path, slots=1, ctx_per_slot=4096) as server:
        yield server.start()


def entries(path: Path) -> Path:
    lines = [
        ('level=error msg="payment authorization failed" order_id={i} upstream=payments:8080 '
         'error="context deadline exceeded"', "checkout"),
        ('{{"level":"error","msg":"could not acquire connection from pool after {i}s","pool":"pg-primary"}}', "payments"),
    ]
    rows = [{"ts": str(T0 + (k * 10 + i) * S), "labels": {"namespace": "prod", "app": app}, "line": line.format(i=i)}
            for k, (line, app) in enumerate(lines) for i in range(5)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def run(tmp_path, *extra, env=None):
    report = tmp_path / "r.json"
    result = CliRunner().invoke(cli, [
        "run", "--source", f"file:{entries(tmp_path / 'in.jsonl')}", "--from", str(T0), "--to", str(T0 + 3600 * S),
        "--state", str(tmp_path / "s.db"), "--digest-dir", str(tmp_path / "d"), "--report-json", str(report), *extra],
        env={"TRIAGE_LLM__MODE": "auto", **(env or {})}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(report.read_text())


def test_model_file_is_the_pinned_one(model_path):
    assert model_path.stat().st_size == QWEN_05B.size
    assert (model_path.parent / (model_path.name + ".sha256")).read_text().strip() == QWEN_05B.sha256


def test_real_server_writes_valid_cards_and_the_cache_makes_a_rerun_free(tmp_path, llama_url):
    first = run(tmp_path, "--llm-url", llama_url)
    sources = [c["summary"]["source"] for c in first["clusters"]]
    assert sources == ["llm", "llm"], first["clusters"]
    assert first["llm"]["requests"] == 2 and first["llm"]["completion_tokens"] > 0
    for cluster in first["clusters"]:
        assert len(cluster["summary"]["title"]) >= 3 and cluster["summary"]["next_step"]
    second = run(tmp_path, "--llm-url", llama_url)
    assert second["llm"]["requests"] == 0 and second["llm"]["cached"] == 2


def test_server_speaks_health_props_and_metrics(llama_url):
    assert requests.get(f"{llama_url}/health", timeout=5).status_code == 200
    assert requests.get(f"{llama_url}/props", timeout=5).json()["total_slots"] == 1
    assert "llamacpp:" in requests.get(f"{llama_url}/metrics", timeout=5).text


def test_embedded_mode_starts_and_stops_its_own_server(tmp_path, model_path):
    before = _server_children()
    report = run(tmp_path, env={"TRIAGE_LLM__CTX_PER_SLOT": "2048"})
    assert {c["summary"]["source"] for c in report["clusters"]} == {"llm"}
    assert report["clusters"][0]["summary"]["model"] == QWEN_05B.model_id
    assert _server_children() - before == set()


def _server_children() -> set[str]:
    found = set()
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and b"triage.summarize.server_main" in (proc / "cmdline").read_bytes():
                found.add(proc.name)
        except OSError:
            continue
    return {pid for pid in found if _parent_is(pid, os.getpid())}


def _parent_is(pid: str, parent: int) -> bool:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().split()[3]) == parent
    except (OSError, ValueError):
        return False


def test_a_killed_job_leaves_no_server_behind(model_path):
    code = ("import sys; from pathlib import Path; from triage.summarize.embedded import EmbeddedServer\n"
            f"s = EmbeddedServer(Path({str(model_path)!r}), slots=1, ctx_per_slot=1024); print(s.start(), flush=True)\n"
            "import os; print(s._process.pid, flush=True); import time; time.sleep(600)")
    job = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    job.stdout.readline()
    server_pid = int(job.stdout.readline())
    job.send_signal(signal.SIGKILL)
    job.wait(timeout=10)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and Path(f"/proc/{server_pid}").exists():
        status = Path(f"/proc/{server_pid}/stat").read_text().split()[2] if Path(f"/proc/{server_pid}").exists() else "X"
        if status == "Z":
            break
        time.sleep(0.2)
    alive = Path(f"/proc/{server_pid}").exists() and Path(f"/proc/{server_pid}/stat").read_text().split()[2] != "Z"
    assert not alive, "the embedded server outlived its killed parent"
