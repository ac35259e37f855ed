"""triage doctor against the real local servers: one line per check, exit 0 only when all pass."""

from click.testing import CliRunner

from tests.llmstub import StubLlama
from tests.lokifake import FakeLoki
from tests.otlpreceiver import OtlpReceiver
from tests.slackfake import FakeSlack
from tests.test_delivery import SmtpServer
from triage.cli import cli


def test_every_configured_endpoint_is_checked_and_passes(tmp_path, pushgateway):
    with FakeLoki(require_tenant="team-a") as loki, StubLlama() as llm, OtlpReceiver() as otlp, FakeSlack() as slack, \
            SmtpServer(auth=("u", "p")) as smtp:
        env = {"TRIAGE_LOKI__URL": loki.url, "TRIAGE_LOKI__TENANT": "team-a", "TRIAGE_LLM__MODE": "remote",
               "TRIAGE_LLM__URL": llm.url, "TRIAGE_PUSHGATEWAY__URL": pushgateway,
               "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint, "TRIAGE_SLACK__WEBHOOK_URL": slack.url,
               "TRIAGE_EMAIL__HOST": "127.0.0.1", "TRIAGE_EMAIL__PORT": str(smtp.port), "TRIAGE_EMAIL__TLS": "none",
               "TRIAGE_EMAIL__USERNAME": "u", "TRIAGE_EMAIL__PASSWORD": "p", "TRIAGE_EMAIL__FROM": "t@example.com",
               "TRIAGE_EMAIL__TO": '["o@example.com"]'}
        result = CliRunner().invoke(cli, ["doctor", "--state", str(tmp_path / "s.db"), "--send-test"], env=env)
        assert [line.split()[1] for line in result.output.splitlines()] == [
            "state", "loki", "llm", "pushgateway", "otlp", "smtp", "slack"]
        assert result.exit_code == 0, result.output
        assert "query allowed, tenant team-a" in result.output and "login ok" in result.output
        assert slack.accepted and "test message" in slack.texts()


def test_failures_say_why_and_exit_1(tmp_path):
    with FakeLoki() as loki:
        env = {"TRIAGE_LOKI__URL": loki.url, "TRIAGE_LOKI__QUERY": '{app="x"', "TRIAGE_LLM__MODE": "remote",
               "TRIAGE_LLM__URL": "http://127.0.0.1:9", "TRIAGE_SLACK__WEBHOOK_URL": "https://example.com/not-slack"}
        result = CliRunner().invoke(cli, ["doctor", "--state", str(tmp_path / "s.db")], env=env)
    assert result.exit_code == 1
    lines = {line.split()[1]: line for line in result.output.splitlines()}
    assert lines["loki"].startswith("FAIL") and "parse error" in lines["loki"]
    assert lines["llm"].startswith("FAIL") and "unreachable" in lines["llm"]
    assert lines["slack"].startswith("FAIL") and "not shaped like" in lines["slack"]
    assert lines["state"].startswith("OK")


def test_a_corrupt_state_fails_its_check(tmp_path):
    (tmp_path / "s.db").write_bytes(b"not sqlite at all")
    result = CliRunner().invoke(cli, ["doctor", "--state", str(tmp_path / "s.db")], env={"TRIAGE_SOURCES": '["demo"]'})
    assert result.exit_code == 1 and "FAIL  state" in result.output and "not an SQLite file" in result.output
