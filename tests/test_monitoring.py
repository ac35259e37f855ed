"""Alert rules checked and unit-tested with the real promtool; the dashboard only uses pushed metrics."""

import json
import re
import shutil
import subprocess
from pathlib import Path

MONITORING = Path(__file__).resolve().parent.parent / "monitoring"
METRICS = {
    "triage_run_duration_seconds", "triage_stage_duration_seconds", "triage_run_exit_code",
    "triage_last_run_timestamp_seconds", "triage_last_success_timestamp_seconds", "triage_lines", "triage_source_up",
    "triage_loki_requests", "triage_clusters", "triage_llm_summaries", "triage_llm_request_duration_seconds",
    "triage_llm_tokens", "triage_llm_tokens_per_second", "triage_deliveries",
}


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool is not installed (make test installs Debian's prometheus package)"
    return path


def test_rules_pass_promtool_check():
    result = subprocess.run([promtool(), "check", "rules", "alerts.yaml"], cwd=MONITORING, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_unit_tests_pass():
    result = subprocess.run([promtool(), "test", "rules", "alerts.test.yaml"], cwd=MONITORING, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_queries_only_metrics_triage_pushes():
    dashboard = json.loads((MONITORING / "dashboard.json").read_text())
    names = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            names |= set(re.findall(r"\b(triage_[a-z_]+)", target["expr"]))
    known = METRICS | {"triage_llamacpp_predicted_tokens_seconds"}
    assert {re.sub(r"_(bucket|count|sum)$", "", n) for n in names} <= known
    assert {"triage_last_success_timestamp_seconds", "triage_llm_summaries", "triage_deliveries"} <= names
