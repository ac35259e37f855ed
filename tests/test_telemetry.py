"""Metrics pushed to the real Pushgateway and checked by promtool; traces to an OTLP/HTTP receiver."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import requests
from click.testing import CliRunner

from tests.llmstub import StubLlama
from tests.otlpreceiver import OtlpReceiver, attributes
from triage.cli import cli

S = 10**9
H = 3600 * S
T0 = 1795417200 * S


def write(path: Path, lines) -> Path:
    path.write_text("".join(json.dumps({"ts": str(T0 + i * S), "labels": {"namespace": "prod", "app": app},
                                        "line": line}) + "\n" for i, (app, line) in enumerate(lines)))
    return path


def run(tmp_path, *args, env=None, window=(T0, T0 + H)):
    report = tmp_path / "r.json"
    result = CliRunner().invoke(cli, ["run", "--from", str(window[0]), "--to", str(window[1]), "--state",
                                      str(tmp_path / "s.db"), "--digest-dir", str(tmp_path / "d"),
                                      "--report-json", str(report), *args], env=env or {}, catch_exceptions=False)
    return result, json.loads(report.read_text())


def scrape(url: str) -> dict[str, float]:
    values = {}
    for line in requests.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith("triage_") and 'schedule="' in line:
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def pushed(values: dict, name: str, **labels) -> float | None:
    for key, value in values.items():
        if key.startswith(name + "{") and all(f'{k}="{v}"' in key for k, v in labels.items()):
            return value
    return None


def test_a_run_pushes_its_metrics_and_a_failed_run_keeps_the_last_success(tmp_path, pushgateway):
    data = write(tmp_path / "in.jsonl", [("checkout", "payment 1 failed"), ("auth", "redis 2 down")])
    env = {"TRIAGE_PUSHGATEWAY__URL": pushgateway, "TRIAGE_PUSHGATEWAY__JOB": "triage-test1", "TRIAGE_LLM__MODE": "auto"}
    with StubLlama() as llm:
        result, report = run(tmp_path, "--source", f"file:{data}", "--llm-url", llm.url, env=env)
    assert result.exit_code == 0
    values = scrape(pushgateway)
    job = {"job": "triage-test1", "schedule": "manual"}
    assert pushed(values, "triage_run_exit_code", **job) == 0
    assert pushed(values, "triage_lines", source=f"file:{data}", **job) == 2
    assert pushed(values, "triage_source_up", **job) == 1
    assert pushed(values, "triage_clusters", status="new", **job) == 2
    assert pushed(values, "triage_llm_summaries", outcome="llm", **job) == 2
    assert pushed(values, "triage_llm_tokens", kind="prompt", **job) == 200
    assert pushed(values, "triage_llm_request_duration_seconds_count", **job) == 2
    assert pushed(values, "triage_llm_tokens_per_second", kind="completion", **job) == 40
    assert pushed(values, "triage_llamacpp_predicted_tokens_seconds", **job) == 42.5
    assert pushed(values, "triage_llamacpp_prompt_tokens_total", **job) == 2030, "a server counter stays a counter"
    assert pushed(values, "triage_llamacpp_kv_cache_usage_ratio", **job) is None, "NaN is not carried"
    assert pushed(values, "triage_deliveries", channel="file", outcome="ok", **job) == 1
    assert pushed(values, "triage_stage_duration_seconds", stage="read", **job) is not None
    success = pushed(values, "triage_last_success_timestamp_seconds", **job)
    assert success and success > 0

    bad = tmp_path / "bad.jsonl"
    bad.write_text("{broken\n")
    result, _ = run(tmp_path, "--source", f"file:{bad}", env=env)
    assert result.exit_code == 2
    values = scrape(pushgateway)
    assert pushed(values, "triage_run_exit_code", **job) == 2
    assert pushed(values, "triage_last_success_timestamp_seconds", **job) == success, "a failed run keeps it"


def test_pushed_metrics_pass_promtool(tmp_path, pushgateway):
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not installed (make test installs Debian's prometheus package)"
    data = write(tmp_path / "in.jsonl", [("checkout", "payment 1 failed")])
    with StubLlama() as llm:  # its /metrics carries llama-server counters and gauges into the push
        run(tmp_path, "--source", f"file:{data}", "--llm-url", llm.url,
            env={"TRIAGE_PUSHGATEWAY__URL": pushgateway, "TRIAGE_PUSHGATEWAY__JOB": "triage-lint",
                 "TRIAGE_LLM__MODE": "auto"})
    text = "\n".join(line for line in requests.get(f"{pushgateway}/metrics", timeout=5).text.splitlines()
                     if "triage" in line and not line.startswith(("push_", "# HELP push_", "# TYPE push_"))) + "\n"
    check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_pushgateway_that_is_down_is_a_warning_in_log_and_digest_not_a_failure(tmp_path):
    data = write(tmp_path / "in.jsonl", [("checkout", "payment 1 failed")])
    result, report = run(tmp_path, "--source", f"file:{data}", "--no-llm",
                         env={"TRIAGE_PUSHGATEWAY__URL": "http://127.0.0.1:9"})
    assert result.exit_code == 0
    assert "Pushgateway http://127.0.0.1:9 unreachable" in Path(report["digest_path"]).read_text()
    assert "could not push metrics" in result.output


def test_a_run_exports_its_span_tree_with_gen_ai_attributes(tmp_path):
    from tests.lokifake import FakeLoki

    with OtlpReceiver() as otlp, StubLlama() as llm, FakeLoki([({"namespace": "prod", "app": "a"}, T0 + S,
                                                                 "upstream 1 reset")]) as loki:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint, "OTEL_SERVICE_NAME": "triage-test", "TRIAGE_LLM__MODE": "auto"}
        result, report = run(tmp_path, "--loki-url", loki.url, "--query", '{namespace="prod"}', "--llm-url", llm.url,
                             env=env)
        assert result.exit_code == 0
        spans = otlp.by_name()
    root = spans["triage.run"][0]
    assert report["trace_id"] == root.trace_id.hex()
    assert report["trace_id"] in Path(report["digest_path"]).read_text()
    assert attributes(root)["triage.run_id"] == report["run_id"]
    stage_names = {"triage.read", "triage.detect", "triage.summarize", "triage.render", "triage.commit"}
    assert stage_names <= set(spans)
    for name in stage_names:
        assert spans[name][0].parent_span_id == root.span_id
    # the first log query (a run asks Loki how many entries each minute holds before it pulls)
    loki_span = next(span for span in spans["loki query_range"] if "loki.limit" in attributes(span))
    assert loki_span.parent_span_id == spans["triage.read"][0].span_id, "worker-thread spans nest under the stage"
    assert attributes(loki_span)["loki.limit"] == "5000"
    chat = next(span for name, items in spans.items() if name.startswith("chat ") for span in items)
    chat_attributes = attributes(chat)
    assert chat.parent_span_id == spans["triage.summarize"][0].span_id
    assert chat_attributes["gen_ai.operation.name"] == "chat"
    assert chat_attributes["gen_ai.usage.input_tokens"] == 100 and chat_attributes["gen_ai.usage.output_tokens"] == 40
    assert chat_attributes["gen_ai.response.id"] == "chatcmpl-1"
    service = {a.key: a.value.string_value for a in otlp.resources[0].attributes}
    assert service["service.name"] == "triage-test"


def test_errors_are_recorded_on_spans_and_spans_flush_on_failure(tmp_path):
    with OtlpReceiver() as otlp:
        bad = tmp_path / "bad.jsonl"
        bad.write_text("{broken\n")
        result, report = run(tmp_path, "--source", f"file:{bad}", env={"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint})
        assert result.exit_code == 2
        spans = otlp.by_name()
    assert spans["triage.run"][0].status.code == 2  # STATUS_CODE_ERROR
    assert spans["triage.read"][0].status.code == 2
    assert any(event.name == "exception" for event in spans["triage.read"][0].events)


def test_no_otel_variables_no_tracing(tmp_path):
    data = write(tmp_path / "in.jsonl", [("checkout", "payment 1 failed")])
    _, report = run(tmp_path, "--source", f"file:{data}", "--no-llm")
    assert report["trace_id"] is None


def test_json_logs_carry_the_run_id_on_every_line(tmp_path):
    data = write(tmp_path / "in.jsonl", [("checkout", "payment 1 failed")])
    result, report = run(tmp_path, "--source", f"file:{data}", "--no-llm", "--log-format", "json",
                         env={"TRIAGE_PUSHGATEWAY__URL": "http://127.0.0.1:9"})
    lines = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert lines and all(line["run_id"] == report["run_id"] for line in lines)
    assert any("could not push metrics" in line["msg"] for line in lines)
