"""Render what users see as pictures: the markdown digest, the HTML e-mail (and its text/plain part) and the
Slack payload, at desktop (1200 px) and phone (390 px) width, with headless Chromium.

    .venv/bin/python bench/render_digests.py [--out bench/out/render]

Runs real triage runs on the demo source against the repository's own test doubles (the stub LLM,
the local Slack server, aiosmtpd): a manual run to seed the state, hourly runs, then a nightly.
The last hourly message with cards and the nightly message are captured from each channel.
Markdown is turned into HTML by a small CommonMark subset below (no package is installed for it),
and the Slack payload by a rough Block Kit approximation: both are for looking at, not for fidelity.
Not run by make test.
"""

from __future__ import annotations

import argparse
import html
import itertools
import json
import re
import shutil
import subprocess
import sys
import tempfile
from email import message_from_bytes, policy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from click.testing import CliRunner  # noqa: E402

from tests.llmstub import StubLlama  # noqa: E402
from tests.slackfake import FakeSlack  # noqa: E402
from tests.test_delivery import SmtpServer  # noqa: E402
from triage.cli import cli  # noqa: E402

S = 10**9
H = 3600 * S
DAY0 = 1795420800 * S  # 2026-11-24T06:00:00Z

# What a small model writes, underscores, parentheses and a stray number included.
ANSWERS = [
    {"title": "checkout: payment authorization times out", "what_happened":
     "Calls from checkout to the payments service hit their context deadline (payments:8080) before an answer came.",
     "likely_cause": "The payments service is slow or saturated, so authorization requests wait past the client_timeout.",
     "next_step": "Check the payments pods' latency and restarts (kubectl -n prod get pods -l app=payments)."},
    {"title": "api-gateway: upstream connections reset", "what_happened":
     "The gateway's connections to its upstream were reset before any headers came back.",
     "likely_cause": "The upstream pods are restarting or refusing connections (connection_failure).",
     "next_step": "Check the upstream deployment's readiness probes and recent restarts."},
    {"title": "payments: provider rejects card authorizations", "what_happened":
     "The payment provider answered authorization requests with an error. The timeout is set to 1796106252 seconds.",
     "likely_cause": "The provider (stripe) is degraded or rejecting the merchant's credentials.",
     "next_step": "Check the provider's status page and the payments_gateway error rate."},
]


class CyclingStub(StubLlama):
    """The stub LLM: the answer of ANSWERS whose app the prompt names, else the next one."""

    def __init__(self):
        self._answers = itertools.cycle(ANSWERS)
        super().__init__()

    @property
    def answer(self):
        prompt = self.requests[-1]["messages"][1]["content"] if self.requests else ""
        for answer in ANSWERS:
            if f'App "{answer["title"].split(":")[0]}"' in prompt:
                return answer
        app = re.search(r'App "([^"]+)"', prompt)
        return {**next(self._answers), "title": f"{app.group(1) if app else 'service'}: requests keep failing"}

    @answer.setter
    def answer(self, value):
        pass


def run(args: list[str], env: dict) -> dict:
    report = Path(env["_dir"]) / "report.json"
    result = CliRunner().invoke(cli, ["run", *args, "--report-json", str(report)],
                                env={k: v for k, v in env.items() if not k.startswith("_")}, catch_exceptions=False)
    if result.exit_code not in (0, 3, 4):
        raise SystemExit(result.output)
    return json.loads(report.read_text())


def capture(out: Path) -> dict[str, str]:
    pages: dict[str, str] = {}
    work = Path(tempfile.mkdtemp(prefix="triage-render-"))
    with CyclingStub() as stub, FakeSlack() as slack, SmtpServer() as smtp:
        env = {"_dir": str(work), "TRIAGE_LLM__MODE": "auto", "TRIAGE_LLM__URL": stub.url,
               "TRIAGE_SLACK__WEBHOOK_URL": slack.url, "TRIAGE_EMAIL__HOST": "127.0.0.1",
               "TRIAGE_EMAIL__PORT": str(smtp.port), "TRIAGE_EMAIL__TLS": "none",
               "TRIAGE_EMAIL__FROM": "triage@example.com", "TRIAGE_EMAIL__TO": '["oncall@example.com"]',
               "TRIAGE_DIGEST__GRAFANA_URL": "https://grafana.example.com", "TRIAGE_DIGEST__MAX_CARDS": "6"}
        common = ["--source", "demo", "--state", str(work / "s.db"), "--digest-dir", str(work / "d")]
        run([*common, "--from", str(DAY0), "--to", str(DAY0 + 12 * H), "--schedule", "manual"], env)
        hourly = None
        for hour in range(12, 24):
            before = (len(slack.accepted), len(smtp.messages))
            report = run([*common, "--from", str(DAY0 + hour * H), "--to", str(DAY0 + (hour + 1) * H),
                          "--schedule", "hourly"], env)
            if len(slack.accepted) > before[0] and len(smtp.messages) > before[1]:
                hourly = (report, slack.accepted[before[0]:], smtp.messages[-1][1])
        before = (len(slack.accepted), len(smtp.messages))
        nightly_report = run([*common, "--from", str(DAY0), "--to", str(DAY0 + 24 * H), "--schedule", "nightly"], env)
        nightly = (nightly_report, slack.accepted[before[0]:], smtp.messages[-1][1] if len(smtp.messages) > before[1]
                   else None)
    for name, captured in (("hourly", hourly), ("nightly", nightly)):
        if captured is None:
            continue
        report, payloads, mail = captured
        markdown = Path(report["digest_path"]).read_text()
        (out / f"{name}.md").write_text(markdown)
        pages[f"{name}-markdown"] = page(markdown_to_html(markdown), "markdown digest")
        (out / f"{name}-slack.json").write_text(json.dumps(payloads, indent=1, ensure_ascii=False))
        pages[f"{name}-slack"] = slack_to_html(payloads)
        if mail:
            message = message_from_bytes(mail, policy=policy.default)
            html_part = next(p for p in message.walk() if p.get_content_type() == "text/html").get_content()
            text_part = next(p for p in message.walk() if p.get_content_type() == "text/plain").get_content()
            (out / f"{name}-email.txt").write_text(f"Subject: {message['Subject']}\n\n{text_part}")
            pages[f"{name}-email"] = html_part
            pages[f"{name}-email-text"] = page(f"<pre style='white-space:pre-wrap'>{html.escape(text_part)}</pre>",
                                               "text/plain part")
    shutil.rmtree(work, ignore_errors=True)
    return pages


# ---------------------------------------------------------------------------- markdown (a CommonMark subset)


def _inline(text: str) -> str:
    spans: list[str] = []

    def keep(match):
        spans.append(f"<code>{html.escape(match.group(2).strip() if match.group(2).strip() else match.group(2))}</code>")
        return f"\0{len(spans) - 1}\0"

    text = re.sub(r"(`+)(.+?)\1(?!`)", keep, text)
    escapes: list[str] = []

    def escaped(match):
        escapes.append(html.escape(match.group(1)))
        return f"\1{len(escapes) - 1}\1"

    text = re.sub(r"\\([\\`*_\[\]{}()#+\-.!|~<>])", escaped, text)
    text = html.escape(text, quote=False).replace("&amp;lt;", "&lt;").replace("&amp;gt;", "&gt;").replace("&amp;amp;", "&amp;")
    text = re.sub(r"\[([^\]]+)\]\(&lt;(.+?)&gt;\)", r'<a href="\2">\1</a>', text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    text = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", text)
    text = re.sub(r"(?<!\w)_(?!\s)(.+?)(?<!\s)_(?!\w)", r"<em>\1</em>", text)
    text = re.sub("\1(\\d+)\1", lambda m: escapes[int(m.group(1))], text)
    return re.sub("\0(\\d+)\0", lambda m: spans[int(m.group(1))], text)


def markdown_to_html(text: str) -> str:
    out: list[str] = []
    lines = text.split("\n")
    index = 0
    paragraph: list[str] = []
    depth = 0

    def flush():
        if paragraph:
            out.append(f"<p>{_inline(' '.join(paragraph))}</p>")
            paragraph.clear()

    def close_lists(to: int):
        nonlocal depth
        while depth > to:
            out.append("</ul>")
            depth -= 1

    while index < len(lines):
        line = lines[index]
        fence = re.match(r"^(`{3,})(\w*)$", line)
        if fence:
            flush()
            end = index + 1
            while end < len(lines) and lines[end] != fence.group(1):
                end += 1
            out.append(f"<pre><code>{html.escape(chr(10).join(lines[index + 1:end]))}</code></pre>")
            index = end + 1
            continue
        item = re.match(r"^( *)- (.*)$", line)
        if item:
            flush()
            level = len(item.group(1)) // 2 + 1
            while depth < level:
                out.append("<ul>")
                depth += 1
            close_lists(level)
            out.append(f"<li>{_inline(item.group(2))}</li>")
        elif line.startswith("#"):
            flush()
            close_lists(0)
            hashes = len(line) - len(line.lstrip("#"))
            out.append(f"<h{hashes}>{_inline(line[hashes:].strip())}</h{hashes}>")
        elif line.strip() == "---":
            flush()
            close_lists(0)
            out.append("<hr>")
        elif line.startswith("> "):
            flush()
            close_lists(0)
            out.append(f"<blockquote>{_inline(line[2:])}</blockquote>")
        elif not line.strip():
            flush()
            close_lists(0)
        else:
            paragraph.append(line)
        index += 1
    flush()
    close_lists(0)
    return "\n".join(out)


GITHUB_CSS = """body{font:15px/1.5 -apple-system,'Segoe UI',Helvetica,Arial,sans-serif;max-width:880px;margin:0 auto;padding:16px;color:#1f2328}
code{font:85% ui-monospace,Menlo,monospace;background:#eff1f3;padding:.1em .3em;border-radius:4px}
pre{background:#f6f8fa;padding:12px;overflow:auto;border-radius:6px}pre code{background:none;padding:0}
blockquote{margin:0;padding:0 1em;color:#59636e;border-left:.25em solid #d1d9e0}hr{border:0;border-top:1px solid #d1d9e0}
h3{font-size:1.1em}"""


def page(body: str, title: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><meta name='viewport' content='width=device-width'>"
            f"<title>{title}</title><style>{GITHUB_CSS}</style></head><body>{body}</body></html>")


# ---------------------------------------------------------------------------- Slack (a rough Block Kit look)


def _mrkdwn(text: str) -> str:
    blocks: list[str] = []
    text = re.sub(r"```(.*?)```", lambda m: blocks.append(m.group(1)) or f"\0{len(blocks) - 1}\0", text, flags=re.S)
    spans: list[str] = []
    text = re.sub(r"`([^`]+)`", lambda m: spans.append(m.group(1)) or f"\1{len(spans) - 1}\1", text)
    text = re.sub(r"<(https?://[^|>]+)\|([^>]+)>", r'<a href="\1">\2</a>', text)
    text = re.sub(r"(?<![\w*])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![\w*])", r"<b>\1</b>", text)
    text = re.sub(r"(?<!\w)_(?!\s)([^_\n]+?)(?<!\s)_(?!\w)", r"<i>\1</i>", text)
    text = re.sub(r"(?<!\w)~(?!\s)([^~\n]+?)(?<!\s)~(?!\w)", r"<s>\1</s>", text)
    text = text.replace("\n", "<br>")
    text = re.sub("\1(\\d+)\1", lambda m: f"<code class='s'>{spans[int(m.group(1))]}</code>", text)
    return re.sub("\0(\\d+)\0", lambda m: f"<pre class='s'>{blocks[int(m.group(1))]}</pre>", text)


SLACK_CSS = """body{font:15px/1.46 Lato,'Helvetica Neue',Arial,sans-serif;color:#1d1c1d;margin:0;padding:12px}
.msg{border-left:4px solid #e8e8e8;padding:4px 12px;margin:0 0 16px}.hdr{font-size:18px;font-weight:900;margin:6px 0}
code.s{font:12px Monaco,Menlo,monospace;color:#e01e5a;background:#f6f6f6;border:1px solid #ddd;border-radius:3px;padding:1px 3px}
pre.s{font:12px/1.5 Monaco,Menlo,monospace;background:#f8f8f8;border:1px solid #ddd;border-radius:4px;padding:8px;white-space:pre-wrap;word-break:break-word;margin:4px 0}
.ctx{font-size:12px;color:#616061}hr{border:0;border-top:1px solid #e8e8e8}a{color:#1264a3}"""


def slack_to_html(payloads: list[dict]) -> str:
    parts = []
    for payload in payloads:
        blocks = []
        for block in payload["blocks"]:
            kind = block["type"]
            if kind == "header":
                blocks.append(f"<div class='hdr'>{html.escape(block['text']['text'])}</div>")
            elif kind == "divider":
                blocks.append("<hr>")
            elif kind == "section":
                blocks.append(f"<div>{_mrkdwn(block['text']['text'])}</div>")
            elif kind == "context":
                blocks.append(f"<div class='ctx'>{' '.join(_mrkdwn(e['text']) for e in block['elements'])}</div>")
        parts.append(f"<div class='msg'><div class='ctx'>notification: {html.escape(payload['text'])}</div>"
                     f"{''.join(blocks)}</div>")
    return (f"<!doctype html><html><head><meta charset='utf-8'><meta name='viewport' content='width=device-width'>"
            f"<style>{SLACK_CSS}</style></head><body>{''.join(parts)}</body></html>")


# ---------------------------------------------------------------------------- pictures


def screenshot(html_path: Path, png: Path, width: int) -> None:
    profile = tempfile.mkdtemp(prefix="chromium-")
    try:
        subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        f"--user-data-dir={profile}", "--hide-scrollbars", f"--screenshot={png}",
                        f"--window-size={width},2600", str(html_path)],
                       check=True, capture_output=True, timeout=120)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "render")
    parser.add_argument("--no-pictures", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, content in capture(args.out).items():
        path = args.out / f"{name}.html"
        path.write_text(content)
        if not args.no_pictures:
            for width in (1200, 390):
                screenshot(path, args.out / f"{name}-{width}.png", width)
        print(path)


if __name__ == "__main__":
    main()
