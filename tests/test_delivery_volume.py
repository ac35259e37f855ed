"""Hundreds of new clusters in one run: one message per channel, a capped and ranked set of cards, and one
roll-up line that is exactly true, against the local Slack double (Slack's limits enforced) and aiosmtpd."""

from __future__ import annotations

import json
import random
import re
import sqlite3
import string
from collections import Counter
from email import message_from_bytes
from pathlib import Path

from click.testing import CliRunner

from tests.slackfake import FakeSlack
from tests.test_delivery import SmtpServer
from triage.cli import cli

S = 10**9
H = 3600 * S
T0 = 1795417200 * S
FINGERPRINT = re.compile(r"fingerprint `([0-9a-f]+)`")
ROLLUP = re.compile(r"and (\d+) more")


def _words(seed: int, n: int) -> str:
    rng = random.Random(seed)
    return " ".join("".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randrange(5, 11))) for _ in range(n))


def flood(path: Path, start_ns: int, clusters: int = 600) -> dict[int, tuple[str, str]]:
    """``clusters`` distinct problems with long templates and samples: 499 in data/reports, 6 in shop/orders
    (5 of them Go panics), the rest spread over other teams. Returns index -> (namespace, app)."""
    places = {}
    rows = []
    for i in range(clusters):
        if i < 499:
            place = ("data", "reports")
        elif i < 505:
            place = ("shop", "orders")
        else:
            place = (f"team{i % 40}", f"svc{i % 13}")
        places[i] = place
        text = _words(i, 40) + " detail " + _words(10_000 + i, 250)  # ~2.5 KB each, unique per cluster
        if 499 <= i < 504:
            text = "panic: " + text
        for n in range(1 + i % 7):
            rows.append({"ts": str(start_ns + (i * 5 + n) * S), "labels": {"namespace": place[0], "app": place[1]},
                         "line": f"{text} attempt {n}"})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return places


def one_line(path: Path, ts_ns: int, line: str) -> Path:
    path.write_text(json.dumps({"ts": str(ts_ns), "labels": {"namespace": "prod", "app": "x"}, "line": line}) + "\n")
    return path


def hourly(tmp_path: Path, data: Path, hour: int, env: dict) -> tuple[int, dict]:
    report = tmp_path / f"r{hour}.json"
    result = CliRunner().invoke(cli, ["run", "--source", f"file:{data}", "--schedule", "hourly",
                                      "--from", str(T0 + hour * H), "--to", str(T0 + (hour + 1) * H),
                                      "--state", str(tmp_path / "s.db"), "--digest-dir", str(tmp_path / "d"),
                                      "--report-json", str(report)], env=env, catch_exceptions=False)
    return result.exit_code, json.loads(report.read_text())


def places_of(clusters: list[dict]) -> Counter:
    return Counter(f"{c['labels']['namespace']}/{c['labels']['app']}" for c in clusters)


def check_rollup_line(text: str, rolled: list[dict], *, quote: str = "`") -> None:
    """The line says exactly how many clusters it stands for, and where each named group's count is true.
    ``quote``: what wraps a place name (a code span in markdown and Slack; nothing in text/plain)."""
    total = int(ROLLUP.search(text).group(1))
    assert total == len(rolled)
    actual = places_of(rolled)
    if quote:
        named = re.findall(rf"(\d+) in {re.escape(quote)}([^{re.escape(quote)}]+){re.escape(quote)}", text)
    else:
        named = re.findall(r"(\d+) in (?!\d+ other place)([^\s,()`]+)", text)
    assert named, text
    for count, place in named:
        assert actual[place] == int(count), (place, count, actual[place])
    other = re.search(r"(\d+) in (\d+) other place", text)
    rest = {p: n for p, n in actual.items() if p not in {place for _, place in named}}
    if other:
        assert int(other.group(1)) == sum(rest.values()) and int(other.group(2)) == len(rest)
    else:
        assert not rest


def test_600_new_clusters_one_message_per_channel_and_a_true_rollup(tmp_path):
    with FakeSlack() as slack, SmtpServer() as smtp:
        env = {"TRIAGE_SLACK__WEBHOOK_URL": slack.url, "TRIAGE_EMAIL__HOST": "127.0.0.1",
               "TRIAGE_EMAIL__PORT": str(smtp.port), "TRIAGE_EMAIL__TLS": "none",
               "TRIAGE_EMAIL__FROM": "triage@example.com", "TRIAGE_EMAIL__TO": '["oncall@example.com"]',
               "TRIAGE_DIGEST__GRAFANA_URL": "https://grafana.example"}
        code, primed = hourly(tmp_path, one_line(tmp_path / "a.jsonl", T0 + S, "startup noise 1"), 0, env)
        assert code == 0 and primed["prime"] and slack.posts == 0 and smtp.messages == []

        flood(tmp_path / "b.jsonl", T0 + H)
        code, report = hourly(tmp_path, tmp_path / "b.jsonl", 1, env)
        assert code == 0
        clusters = report["clusters"]
        total = len(clusters)
        assert total == 600 and all(c["status"] == "new" for c in clusters)
        by_fp = {c["fingerprint"]: c for c in clusters}

        # Slack: at most 3 posts, every one accepted within Slack's limits
        assert slack.rejected == [] and 1 <= len(slack.accepted) <= 3
        sections = [b["text"]["text"] for m in slack.accepted for b in m["blocks"] if b["type"] == "section"]
        carded = [fp for text in sections for fp in FINGERPRINT.findall(text)]
        assert len(carded) == len(set(carded)) <= 20
        line = next(t for t in sections if ROLLUP.search(t))
        rolled = [c for c in clusters if "slack" in c["rolled_up"]]
        assert len(carded) + len(rolled) == total and not set(carded) & {c["fingerprint"] for c in rolled}
        check_rollup_line(line, rolled)
        assert "Open them in Grafana Explore" in line and "full list: the digest file" in line
        # ranked: the five Go panics come first among equals in status
        panics = {c["fingerprint"] for c in clusters if c["template"].startswith("panic:")}
        assert len(panics) == 5 and set(carded[:5]) == panics

        # e-mail: one message under 200 KB, with the same cap and a true roll-up
        assert len(smtp.messages) == 1
        _, content = smtp.messages[0]
        assert len(content) < 200_000, len(content)
        message = message_from_bytes(content)
        text = next(p for p in message.walk() if p.get_content_type() == "text/plain").get_payload(decode=True).decode()
        html = next(p for p in message.walk() if p.get_content_type() == "text/html").get_payload(decode=True).decode()
        mailed_rolled = [c for c in clusters if "email" in c["rolled_up"]]
        mailed_cards = [c for c in clusters if "email" in c["reported_to"] and "email" not in c["rolled_up"]]
        assert len(mailed_cards) + len(mailed_rolled) == total and len(mailed_cards) <= 20
        assert f"and {len(mailed_rolled)} more" in text and f"and {len(mailed_rolled)} more" in html
        check_rollup_line(text[ROLLUP.search(text).start():], mailed_rolled, quote="")  # text/plain: no markdown
        for card in mailed_cards:
            assert card["fingerprint"] in text

        # the file digest: the same cap, the same roll-up, and the full list below it
        digest = Path(report["digest_path"]).read_text()
        filed_rolled = [c for c in clusters if "file" in c["rolled_up"]]
        assert digest.count("\n### ") == total - len(filed_rolled) == 20
        check_rollup_line(digest[digest.index("**…**"):], filed_rolled)
        for c in filed_rolled:
            assert f"`{c['fingerprint']}`" in digest

        assert all(set(c["reported_to"]) == {"file", "slack", "email"} for c in clusters)
        with sqlite3.connect(tmp_path / "s.db") as conn:
            left = conn.execute("SELECT COUNT(*) FROM ledger WHERE status IN ('pending', 'sending')").fetchone()[0]
            rolled_rows = conn.execute("SELECT channel, COUNT(*) FROM ledger WHERE status = 'rolled_up' "
                                       "GROUP BY channel").fetchall()
        assert left == 0
        assert dict(rolled_rows) == {"file": len(filed_rolled), "slack": len(rolled), "email": len(mailed_rolled)}
        posts, mails = len(slack.accepted), len(smtp.messages)

        # the next run sends none of them again: one new problem, one card, no roll-up, nothing "pending"
        code, later = hourly(tmp_path, one_line(tmp_path / "c.jsonl", T0 + 2 * H + S, "brand new problem here"), 2, env)
        assert code == 0 and len(slack.accepted) == posts + 1 and len(smtp.messages) == mails + 1
        newest = json.dumps(slack.accepted[-1])
        assert FINGERPRINT.findall(newest) == [later["clusters"][0]["fingerprint"]]
        assert "more" not in newest and "pending since" not in newest and not set(by_fp) & set(FINGERPRINT.findall(newest))
    print(f"\n{total} new clusters: {posts} Slack post(s), {sum(len(json.dumps(m)) for m in slack.accepted[:posts])} bytes; "
          f"e-mail {len(content)} bytes; cards slack {len(carded)} email {len(mailed_cards)} file 20")


def test_a_split_slack_digest_whose_second_post_fails_resends_only_the_unsent_posts(tmp_path):
    with FakeSlack() as slack:
        env = {"TRIAGE_SLACK__WEBHOOK_URL": slack.url, "TRIAGE_SLACK__MAX_RETRIES": "0",
               "TRIAGE_DIGEST__MAX_CARDS": "30", "TRIAGE_RUN__AUTO_PRIME": "false"}
        flood(tmp_path / "b.jsonl", T0 + H, clusters=40)
        slack.fail_from = 1  # the first post is accepted, every later one fails
        code, first = hourly(tmp_path, tmp_path / "b.jsonl", 1, env)
        assert code == 4 and len(slack.accepted) == 1 and slack.posts == 2
        delivered = FINGERPRINT.findall(json.dumps(slack.accepted[0]))
        assert delivered and {c["fingerprint"] for c in first["clusters"] if "slack" in c["reported_to"]} == set(delivered)
        slack.fail_from = None
        code, second = hourly(tmp_path, one_line(tmp_path / "c.jsonl", T0 + 2 * H + S, "nothing 1 new"), 2, env)
        assert code == 0
        resent = FINGERPRINT.findall(json.dumps(slack.accepted[1:]))
        assert not set(delivered) & set(resent), "the accepted post is not sent again"
        rolled = re.findall(r"and (\d+) more", json.dumps(slack.accepted[1:]))
        new_fp = second["clusters"][0]["fingerprint"]
        # everything not in the first post arrives now: as cards, or counted in the roll-up line
        assert len(set(resent) - {new_fp}) + sum(int(n) for n in rolled) == 40 - len(delivered)
        with sqlite3.connect(tmp_path / "s.db") as conn:
            assert conn.execute("SELECT COUNT(*) FROM ledger WHERE channel = 'slack' AND status NOT IN "
                                "('sent', 'rolled_up')").fetchone()[0] == 0


def test_the_webhook_gets_the_whole_report_after_the_other_channels(tmp_path):
    from tests.llmstub import StubLlama  # any local HTTP server that records POST bodies will do

    with FakeSlack() as slack, StubLlama() as hook:
        slack.fail_always = 500
        env = {"TRIAGE_WEBHOOK__URL": hook.url + "/hook", "TRIAGE_SLACK__WEBHOOK_URL": slack.url,
               "TRIAGE_SLACK__MAX_RETRIES": "0"}
        data = one_line(tmp_path / "a.jsonl", T0 + S, "payment 1 failed")
        report_path = tmp_path / "r.json"
        result = CliRunner().invoke(cli, ["run", "--source", f"file:{data}", "--from", str(T0), "--to", str(T0 + H),
                                          "--state", str(tmp_path / "s.db"), "--digest-dir", str(tmp_path / "d"),
                                          "--report-json", str(report_path)], env=env, catch_exceptions=False)
    report = json.loads(report_path.read_text())
    sent = hook.requests[0]
    assert result.exit_code == 4 and sent["exit_code"] == 4 == report["exit_code"]
    assert [c["fingerprint"] for c in sent["clusters"]] == [c["fingerprint"] for c in report["clusters"]] != []
    assert sent["clusters"][0]["reported_to"] == ["file", "webhook"] == report["clusters"][0]["reported_to"]
    assert {d["channel"]: d["ok"] for d in sent["deliveries"]} == {"file": True, "slack": False}


def test_an_email_stays_under_200_kb_even_when_the_cap_allows_more_than_fits(tmp_path):
    with SmtpServer() as smtp:
        env = {"TRIAGE_EMAIL__HOST": "127.0.0.1", "TRIAGE_EMAIL__PORT": str(smtp.port), "TRIAGE_EMAIL__TLS": "none",
               "TRIAGE_EMAIL__FROM": "triage@example.com", "TRIAGE_EMAIL__TO": '["oncall@example.com"]',
               "TRIAGE_DIGEST__MAX_CARDS": "150", "TRIAGE_RUN__AUTO_PRIME": "false"}
        flood(tmp_path / "b.jsonl", T0 + H, clusters=150)
        code, report = hourly(tmp_path, tmp_path / "b.jsonl", 1, env)
        assert code == 0 and len(smtp.messages) == 1
        content = smtp.messages[0][1]
        assert len(content) < 200_000, len(content)
        clusters = report["clusters"]
        rolled = [c for c in clusters if "email" in c["rolled_up"]]
        assert rolled, "150 cards of ~2.5 KB do not fit: some move into the roll-up"
        text = next(p for p in message_from_bytes(content).walk()
                    if p.get_content_type() == "text/plain").get_payload(decode=True).decode()
        check_rollup_line(text[ROLLUP.search(text).start():], rolled, quote="")
        assert all("email" in c["reported_to"] for c in clusters)
    print(f"\n150 cards allowed: e-mail {len(content)} bytes with {150 - len(rolled)} cards, {len(rolled)} rolled up")
