"""Delivery through the ledger, against a local Slack server that enforces Slack's limits and a real SMTP server."""

from __future__ import annotations

import json
import subprocess
from email import message_from_bytes
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.slackfake import FakeSlack
from triage.cli import cli
from triage.deliver.content import Card, Outgoing
from triage.deliver.slack import SlackChannel, build_messages, escape

S = 10**9
H = 3600 * S
T0 = 1795417200 * S


def write(path: Path, entries) -> Path:
    path.write_text("".join(json.dumps({"ts": str(ts), "labels": {"namespace": "prod", "app": app}, "line": line}) + "\n"
                            for ts, app, line in entries))
    return path


def run(tmp_path, data, window, *extra, env=None):
    report = tmp_path / "r.json"
    result = CliRunner().invoke(cli, ["run", "--source", f"file:{data}", "--from", str(window[0]), "--to",
                                      str(window[1]), "--state", str(tmp_path / "s.db"), "--digest-dir",
                                      str(tmp_path / "d"), "--report-json", str(report), *extra],
                                env=env or {}, catch_exceptions=False)
    return result, json.loads(report.read_text())


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SmtpServer:
    """aiosmtpd on 127.0.0.1: records messages, refuses one recipient, optional auth."""

    def __init__(self, *, auth: tuple[str, str] | None = None, refuse: str | None = None, tls_context=None):
        from aiosmtpd.controller import Controller

        self.messages: list = []
        server = self

        class Handler:
            async def handle_RCPT(self, srv, session, envelope, address, rcpt_options):
                if refuse and address == refuse:
                    return "550 5.1.1 no such user"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, srv, session, envelope):
                server.messages.append((envelope.rcpt_tos, envelope.content))
                return "250 Message accepted"

        def authenticator(srv, session, envelope, mechanism, auth_data):
            from aiosmtpd.smtp import AuthResult

            ok = auth is not None and auth_data.login.decode() == auth[0] and auth_data.password.decode() == auth[1]
            return AuthResult(success=ok, handled=False)

        kwargs = {}
        if auth is not None:
            kwargs.update(authenticator=authenticator, auth_require_tls=False)
        if tls_context is not None:
            kwargs.update(tls_context=tls_context, require_starttls=True)
        self.port = _free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **kwargs)

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()


def test_slack_fails_in_run_1_and_recovers_in_run_2_email_succeeds_in_both_each_cluster_once(tmp_path):
    data = write(tmp_path / "in.jsonl", [(T0 + S, "checkout", "payment 1 failed: timeout"),
                                         (T0 + 2 * S, "auth", "redis down at shard 1"),
                                         (T0 + H + S, "search", "index 3 corrupt")])
    with FakeSlack() as slack, SmtpServer() as smtp:
        env = {"TRIAGE_SLACK__WEBHOOK_URL": slack.url, "TRIAGE_SLACK__MAX_RETRIES": "0",
               "TRIAGE_EMAIL__HOST": "127.0.0.1", "TRIAGE_EMAIL__PORT": str(smtp.port), "TRIAGE_EMAIL__TLS": "none",
               "TRIAGE_EMAIL__FROM": "triage@example.com", "TRIAGE_EMAIL__TO": '["oncall@example.com"]'}
        slack.fail_always = 500
        result, first = run(tmp_path, data, (T0, T0 + H), "--schedule", "hourly", "--notify", "file,slack,email",
                            env=env)
        # hourly on an empty state primes itself: the first scheduled run sends nothing
        assert first["prime"] is True and slack.accepted == [] and smtp.messages == []
        result, second = run(tmp_path, data, (T0 + H, T0 + 2 * H), "--schedule", "hourly", env=env)
        assert result.exit_code == 4
        deliveries = {d["channel"]: d for d in second["deliveries"]}
        assert not deliveries["slack"]["ok"] and "500" in deliveries["slack"]["error"]
        assert deliveries["email"]["ok"] and len(smtp.messages) == 1
        search = next(c for c in second["clusters"] if "index" in c["template"])
        assert search["reported_to"] == ["file", "email"]
        slack.fail_always = None
        result, third = run(tmp_path, data, (T0 + 2 * H, T0 + 3 * H), "--schedule", "hourly", env=env)
        assert result.exit_code == 0
        assert len(slack.accepted) == 1 and search["fingerprint"] in slack.texts()
        assert "pending since" in slack.texts()
        assert len(smtp.messages) == 1, "e-mail already had it: not sent twice"
        result, fourth = run(tmp_path, data, (T0 + 3 * H, T0 + 4 * H), "--schedule", "hourly", env=env)
        assert len(slack.accepted) == 1 and len(smtp.messages) == 1


def test_manual_runs_send_every_card_once_per_episode(tmp_path):
    data = write(tmp_path / "in.jsonl", [(T0 + S, "checkout", "payment 1 failed: timeout")])
    with FakeSlack() as slack:
        env = {"TRIAGE_SLACK__WEBHOOK_URL": slack.url}
        result, report = run(tmp_path, data, (T0, T0 + H), env=env)
        assert result.exit_code == 0 and len(slack.accepted) == 1
        assert report["clusters"][0]["reported_to"] == ["file", "slack"]


def test_prime_records_everything_and_sends_nothing(tmp_path):
    data = write(tmp_path / "in.jsonl", [(T0 + S, "checkout", "payment 1 failed: timeout")])
    with FakeSlack() as slack:
        env = {"TRIAGE_SLACK__WEBHOOK_URL": slack.url}
        result, report = run(tmp_path, data, (T0, T0 + H), "--prime", env=env)
        assert result.exit_code == 0 and report["prime"] and slack.accepted == []
        assert "prime run" in Path(report["digest_path"]).read_text()
        result, report = run(tmp_path, data, (T0, T0 + 2 * H), "--schedule", "hourly", env=env)
        assert slack.accepted == [] and "No change" in Path(report["digest_path"]).read_text()


def test_a_channel_configured_later_starts_primed(tmp_path):
    data = write(tmp_path / "in.jsonl", [(T0 + S, "a", "old problem 1"), (T0 + H + S, "b", "brand new problem 2")])
    run(tmp_path, data, (T0, T0 + H))  # manual run, no slack: the episode of the old problem opens
    with FakeSlack() as slack:
        run(tmp_path, data, (T0 + H, T0 + 2 * H), "--schedule", "hourly", env={"TRIAGE_SLACK__WEBHOOK_URL": slack.url})
        assert len(slack.accepted) == 1
        assert "brand new problem" in slack.texts() and "old problem" not in slack.texts()


def test_slack_429_retry_after_is_honoured(tmp_path):
    with FakeSlack() as slack:
        slack.fail_next = [(429, {"Retry-After": "3"})]
        sleeps: list[float] = []
        channel = SlackChannel(slack.url, sleep=sleeps.append)
        assert channel.send(outgoing(1)).ok
        assert sleeps and sleeps[0] >= 3 and len(slack.accepted) == 1


def test_slack_400_fails_without_retry():
    with FakeSlack() as slack:
        slack.fail_next = [(400, {})]
        sleeps: list[float] = []
        result = SlackChannel(slack.url, sleep=sleeps.append).send(outgoing(1))
        assert not result.ok and "400" in result.error and sleeps == []


def outgoing(cards: int, text: str = "x") -> Outgoing:
    return Outgoing(headline="triage hourly: " + "h" * 200, schedule="hourly", window_text="w", stats_line="s",
                    warnings=(), footer="f",
                    cards=tuple(Card(fingerprint=f"fp{i}", status="new", title=text, template=text * 5000, count=1,
                                     first_seen_ns=0, last_seen_ns=0, samples=(text * 9000,)) for i in range(cards)))


def test_long_digests_split_within_slack_limits_in_order():
    with FakeSlack() as slack:
        sleeps: list[float] = []
        assert SlackChannel(slack.url, sleep=sleeps.append).send(outgoing(40)).ok
        assert slack.rejected == [] and len(slack.accepted) >= 3
        order = [b["text"]["text"] for m in slack.accepted for b in m["blocks"] if b["type"] == "section" and "fp" in b["text"]["text"]]
        assert [int(t.split("`fp")[1].split("`")[0]) for t in order] == list(range(40))
        assert sleeps == [1.0] * (len(slack.accepted) - 1), "about one message per second"


@pytest.mark.parametrize("hostile", ["<!channel> hi", "<@U123> look", "<!subteam^S1> up", "@here now",
                                     "<http://evil.example|click>", "a & b > c"])
def test_slack_text_from_data_cannot_ping_or_link(hostile):
    payload = json.dumps(build_messages(outgoing(1, hostile)))
    for forbidden in ("<!channel>", "<@U123>", "<!subteam", "<http://evil", "@here"):
        assert forbidden not in payload
    assert escape("a & b > c") == "a &amp; b &gt; c"


def test_email_auth_multipart_and_a_refused_recipient(tmp_path):
    data = write(tmp_path / "in.jsonl", [(T0 + S, "checkout", "<b>payment</b> 1 failed & timed out")])
    with SmtpServer(auth=("triage", "s3cret"), refuse="nobody@example.com") as smtp:
        env = {"TRIAGE_EMAIL__HOST": "127.0.0.1", "TRIAGE_EMAIL__PORT": str(smtp.port), "TRIAGE_EMAIL__TLS": "none",
               "TRIAGE_EMAIL__USERNAME": "triage", "TRIAGE_EMAIL__PASSWORD": "s3cret",
               "TRIAGE_EMAIL__FROM": "triage@example.com",
               "TRIAGE_EMAIL__TO": '["oncall@example.com", "nobody@example.com", "lead@example.com"]'}
        result, report = run(tmp_path, data, (T0, T0 + H), env=env)
        assert result.exit_code == 0
        recipients, content = smtp.messages[0]
        assert recipients == ["oncall@example.com", "lead@example.com"]
        message = message_from_bytes(content)
        assert message.is_multipart()
        kinds = [part.get_content_type() for part in message.walk()]
        assert "text/plain" in kinds and "text/html" in kinds
        html = next(p for p in message.walk() if p.get_content_type() == "text/html").get_payload(decode=True).decode()
        assert "&lt;b&gt;payment&lt;/b&gt;" in html and "<b>payment</b>" not in html
        assert "refused recipients: nobody@example.com" in result.output
        env["TRIAGE_EMAIL__PASSWORD"] = "wrong"
        result, report = run(tmp_path, write(tmp_path / "in2.jsonl", [(T0 + 2 * H, "x", "other 1 problem")]),
                             (T0 + 2 * H, T0 + 3 * H), env=env)
        assert result.exit_code == 4 and "login refused" in json.dumps(report["deliveries"])


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(folder / "key.pem"),
                    "-out", str(folder / "cert.pem")], check=True, capture_output=True)
    return folder / "cert.pem", folder / "key.pem"


def test_email_starttls_verifies_the_server_against_a_ca_file(tmp_path, tls_files):
    import ssl

    cert, key = tls_files
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    data = write(tmp_path / "in.jsonl", [(T0 + S, "checkout", "payment 1 failed")])
    with SmtpServer(tls_context=context) as smtp:
        env = {"TRIAGE_EMAIL__HOST": "127.0.0.1", "TRIAGE_EMAIL__PORT": str(smtp.port), "TRIAGE_EMAIL__TLS": "starttls",
               "TRIAGE_EMAIL__FROM": "t@example.com", "TRIAGE_EMAIL__TO": '["o@example.com"]'}
        result, report = run(tmp_path, data, (T0, T0 + H), env=env)
        assert result.exit_code == 4 and "CERTIFICATE_VERIFY_FAILED" in json.dumps(report["deliveries"]), \
            "TLS is verified by default"
        env["TRIAGE_EMAIL__CA_FILE"] = str(cert)
        result, report = run(tmp_path, data, (T0, T0 + 2 * H), env=env)
        assert result.exit_code == 0 and len(smtp.messages) == 1


def test_webhook_receives_the_report(tmp_path):
    from tests.llmstub import StubLlama  # any local HTTP server that records POST bodies will do

    data = write(tmp_path / "in.jsonl", [(T0 + S, "checkout", "payment 1 failed")])
    with StubLlama() as hook:
        result, report = run(tmp_path, data, (T0, T0 + H), env={"TRIAGE_WEBHOOK__URL": hook.url + "/hook"})
    assert result.exit_code == 0 and hook.requests[0]["run_id"] == report["run_id"]


def test_notify_names_only_configured_channels(tmp_path):
    data = write(tmp_path / "in.jsonl", [(T0 + S, "checkout", "payment 1 failed")])
    result = CliRunner().invoke(cli, ["run", "--source", f"file:{data}", "--notify", "slack", "--state",
                                      str(tmp_path / "s.db")])
    assert result.exit_code == 2 and "slack channel is not configured" in result.output


def test_nightly_shows_the_day_against_the_day_before(tmp_path):
    day = 24 * H
    entries = [(T0 + h * H + S, "a", "steady problem 1 in a") for h in range(48)]
    entries += [(T0 + 2 * H + S, "b", "yesterday only problem 2")]
    entries += [(T0 + day + 5 * H + i * S, "c", f"fresh problem {i} today") for i in range(3)]
    data = write(tmp_path / "in.jsonl", entries)
    run(tmp_path, data, (T0, T0 + day), "--schedule", "nightly")
    result, report = run(tmp_path, data, (T0 + day, T0 + 2 * day), "--schedule", "nightly")
    digest = Path(report["digest_path"]).read_text()
    assert "## The day" in digest and "27 (+8% against 25 the day before)" in digest
    assert "**New today:** 1\n" in digest and "`c`: `fresh problem <*> today`" in digest
    assert "Went quiet" in digest and "yesterday only problem" in digest
    assert "█" in digest, "a 24h sparkline for the steady problem"
    assert [c["status"] for c in report["clusters"] if c["reported"]] == ["new"]


def test_a_muted_cluster_is_counted_not_reported(tmp_path):
    data = write(tmp_path / "in.jsonl", [(T0 + S, "checkout", "payment 1 failed"), (T0 + 2 * H + S, "checkout",
                                                                                    "payment 2 failed")])
    _, first = run(tmp_path, data, (T0, T0 + H))
    fingerprint = first["clusters"][0]["fingerprint"]
    muted = CliRunner().invoke(cli, ["state", "mute", fingerprint, "--for", "7d", "--reason", "known",
                                     "--state", str(tmp_path / "s.db")])
    assert muted.exit_code == 0
    day = 24 * H
    data = write(tmp_path / "in2.jsonl", [(T0 + 2 * day + S, "checkout", "payment 3 failed")])
    _, later = run(tmp_path, data, (T0 + 2 * day, T0 + 2 * day + H))
    cluster = later["clusters"][0]
    assert cluster["fingerprint"] == fingerprint and cluster["muted"] and cluster["status"] == "regressed"
    assert cluster["reported"] is False and cluster["count"] == 1
    shown = CliRunner().invoke(cli, ["state", "show", fingerprint, "--state", str(tmp_path / "s.db")])
    assert '"mute_reason": "known"' in shown.output


def test_a_first_scheduled_run_whose_only_source_failed_does_not_use_up_the_prime(tmp_path, fake_loki):
    import socket

    with socket.socket() as probe:  # a port nothing listens on: Loki unreachable
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    fake_loki.add({"namespace": "prod", "app": "checkout"}, T0 + H + S, "error: payment 1 failed")
    with FakeSlack() as slack:
        env = {"TRIAGE_SLACK__WEBHOOK_URL": slack.url, "TRIAGE_LOKI__MAX_RETRIES": "0"}

        def hourly(url: str, hour: int):
            report = tmp_path / f"r{hour}.json"
            result = CliRunner().invoke(cli, ["run", "--source", "loki", "--loki-url", url, "--schedule", "hourly",
                                              "--from", str(T0 + hour * H), "--to", str(T0 + (hour + 1) * H),
                                              "--state", str(tmp_path / "s.db"), "--digest-dir", str(tmp_path / "d"),
                                              "--report-json", str(report)], env=env, catch_exceptions=False)
            return result.exit_code, json.loads(report.read_text())

        code, first = hourly(dead, 0)
        assert code == 3 and first["lines"] == 0
        assert "did not prime the state" in Path(first["digest_path"]).read_text()
        code, second = hourly(fake_loki.url, 1)
        assert code == 0 and second["prime"] is True and second["lines"] == 1
        assert slack.posts == 0, "the first run that read its source primes: nothing is sent"
        fake_loki.add({"namespace": "prod", "app": "auth"}, T0 + 2 * H + S, "error: redis 2 down at shard")
        code, third = hourly(fake_loki.url, 2)
        assert code == 0 and not third["prime"] and len(slack.accepted) == 1
        assert "redis" in slack.texts() and "payment" not in slack.texts()


def test_with_llama_server_unreachable_the_header_counts_add_up(tmp_path):
    import re
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    data = write(tmp_path / "in.jsonl", [(T0 + i * S, f"app{i}", f"problem {word} failed") for i, word in
                                         enumerate(["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf",
                                                    "hotel"])])
    result, report = run(tmp_path, data, (T0, T0 + H), env={"TRIAGE_LLM__MODE": "remote", "TRIAGE_LLM__URL": dead,
                                                            "TRIAGE_LLM__TIMEOUT_S": "2"})
    digest = Path(report["digest_path"]).read_text()
    header = re.search(r"\*\*AI summaries:\*\* (-?\d+) written now, (\d+) cached, (\d+) fell back", digest)
    assert header, digest[:600]
    written, cached, fell_back = map(int, header.groups())
    cards = sum(1 for c in report["clusters"] if c["summary"])
    assert cards == 8 and (written, cached, fell_back) == (0, 0, 8)
    assert written + cached + fell_back + report["llm"]["over_budget"] == cards
