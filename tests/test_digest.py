"""The digest as each channel renders it: escaping per target, times, headings, what varies, the day, links."""

from __future__ import annotations

import json
import re
import email.policy
from email import message_from_bytes

from triage.digest import DigestInput, code_block, code_span
from triage.digest.cards import build_outgoing, headline
from triage.digest.day import day_facts, sparkline
from triage.digest.escape import md_prose, slack_prose
from triage.digest.explore import line_filters, logql
from triage.digest.heading import shorten
from triage.digest.html import render_html
from triage.digest.markdown import render_digest
from triage.digest.plain import render_text
from triage.digest.slack_blocks import card_blocks, intro_blocks
from triage.digest.times import lifetime, when
from triage.digest.varies import WildcardTally, distinct_shapes, from_messages
from triage.extract import extract
from triage.records import ClusterWindow, Event, Finding, LogRecord, SourceStatus, Status, Window
from triage.summarize.schema import CardText, sanitize
from triage.summarize.stage import Summary

S = 10**9
MIN = 60 * S
H = 3600 * S
NOW = 1796115600 * S  # 2026-12-01T09:00:00Z
WINDOW = Window(NOW - H - MIN, NOW - MIN)

# What a small model really writes about a TLS failure and an OOM kill: identifiers with underscores,
# values in parentheses. Sanitising used to turn these into "SSLdohandshake" and "\(rss=1019Mi limit=1Gi\)".
PROSE = "SSL_do_handshake() failed (rss=1019Mi limit=1Gi) for client_id in *both* pods"


def cluster(app: str, template: str, lines: list[str], *, first_ns: int | None = None, level_lines: bool = True,
            count: int | None = None) -> ClusterWindow:
    c = ClusterWindow(f"fp{abs(hash((app, template))) % 10**8:08d}", template, {"namespace": "prod", "app": app},
                      ("prod", app))
    for index, line in enumerate(lines):
        c.add(Event(WINDOW.from_ns + (index + 1) * MIN, {"namespace": "prod", "app": app, "pod": f"{app}-6d4cf56db6-x2k4p"},
                    "error", line, line), app)
    if first_ns is not None:
        c.first_ns = first_ns
    if count is not None:
        c.count = count
    return c


def finding(c: ClusterWindow, status: Status = Status.NEW, first_seen_ns: int | None = None) -> Finding:
    return Finding(c, status, False, first_seen_ns or c.first_ns, c.last_ns)


def digest_input(findings: list[Finding], summaries: dict | None = None, **extra) -> DigestInput:
    return DigestInput(run_id="run1", schedule=extra.pop("schedule", "hourly"), window=WINDOW, generated_ns=NOW,
                       sources=[SourceStatus("loki", True, 10)], lines=sum(f.cluster.count for f in findings),
                       cards=findings, more=0, clusters_total=len(findings), by_status={}, muted=0,
                       state_path="state/triage.db", summaries=summaries or {}, llm_model="qwen-0.5b",
                       prompt_version="abc123", **extra)


def ai(title: str, what: str = PROSE, cause: str = "The upstream certificate expired.",
       step: str = "Check the certificate (kubectl get certificate).") -> Summary:
    return Summary("llm", CardText.model_construct(title=title, what_happened=what, likely_cause=cause, next_step=step),
                   "qwen-0.5b", "abc123")


CHECKOUT = cluster("checkout", "payment authorization failed: context deadline exceeded",
                   ['level=error msg="payment authorization failed" upstream=payments:8080 '
                    'error="context deadline exceeded" elapsed=28717ms'] * 2)
GATEWAY = cluster("api-gateway", "SSL_do_handshake() failed (SSL: error:<*>:SSL routines::certificate verify failed)",
                  ["2026/11/23 07:01:00 [error] 12#0: *9912 SSL_do_handshake() failed (SSL: error:0A000086:SSL "
                   "routines::certificate verify failed) while SSL handshaking to upstream"])


def rendered_all(data: DigestInput) -> dict[str, str]:
    outgoing = build_outgoing(data)
    slack = json.dumps([*intro_blocks(outgoing), *(b for c in outgoing.cards for b in card_blocks(c))],
                       ensure_ascii=False)
    return {"markdown": render_digest(data), "html": render_html(outgoing), "text": render_text(outgoing),
            "slack": slack}


# ---------------------------------------------------------------------------- 1. sanitize and escape


def test_sanitize_keeps_prose_and_strips_only_what_can_act():
    assert sanitize(PROSE) == PROSE
    assert sanitize("see [docs](https://x.y/z) and www.a.b now") == "see docs and (link removed) now"
    assert sanitize("<@U123> hi <!here> <b>bold</b> @here") == "hi bold here"
    assert "\x1b" not in sanitize("red \x1b[31m text")


def test_markdown_escapes_only_what_markdown_acts_on():
    escaped = md_prose(PROSE)
    assert "SSL_do_handshake() failed (rss=1019Mi limit=1Gi) for client_id" in escaped, "no \\( or \\_"
    assert r"\*both\*" in escaped
    assert md_prose("a [link](x) <b> & `code` ~~s~~ _it_") == r"a \[link\](x) &lt;b&gt; &amp; \`code\` \~\~s\~\~ \_it\_"


def test_slack_prose_cannot_pair_into_formatting_or_ping():
    text = slack_prose("*bold* _it_ ~s~ `c` <!channel> @here SSL_do_handshake")
    assert "*bold*" not in text and "_it_" not in text and "~s~" not in text and "`c`" not in text
    assert "<!channel>" not in text and "@here" not in text and "SSL_do_handshake" in text


def test_model_text_with_underscores_and_parentheses_reads_verbatim_in_every_channel():
    out = rendered_all(digest_input([finding(GATEWAY)], {GATEWAY.fingerprint: ai("api-gateway: TLS to upstream fails")}))
    assert "SSL_do_handshake() failed (rss=1019Mi limit=1Gi) for client_id" in out["markdown"]
    unwrapped = out["text"]
    assert PROSE in unwrapped and "\\" not in unwrapped.split("Sample:")[0], "plain text shows no escapes"
    assert "api-gateway: 🤖 TLS to upstream fails" in unwrapped, "the app is not said twice"
    assert "SSL_do_handshake() failed (rss=1019Mi limit=1Gi) for client_id in *both* pods" in out["html"]
    assert "SSL_do_handshake() failed (rss=1019Mi limit=1Gi) for client_id" in out["slack"]


def test_a_headline_made_of_log_text_cannot_ping_from_the_slack_header():
    hostile = cluster("web", "<!channel> everything is on fire <*>", ["<!channel> everything is on fire 1"])
    outgoing = build_outgoing(digest_input([finding(hostile)]))
    header = intro_blocks(outgoing)[0]["text"]["text"]
    assert "<!channel>" not in header and "everything is on fire" in header


def test_code_span_fence_outgrows_backticks_inside():
    assert code_span("a ``b`` c") == "```a ``b`` c```"
    assert code_span("`x`") == "`` `x` ``"
    assert code_span("line\nbreak") == "`line break`"


def test_code_block_fence_outgrows_backticks_and_clips():
    block = code_block("```\ninside\n```")
    assert block.startswith("````text\n") and block.endswith("\n````")
    long = code_block("\n".join(f"l{i}" for i in range(40)))
    assert "more lines" in long and long.count("\n") < 20


def test_control_and_bidi_characters_are_neutralised():
    assert "\x1b" not in code_span("\x1b[31mred") and "\u202e" not in code_block("abc\u202edef")


# ---------------------------------------------------------------------------- 2. text/plain and HTML


def test_text_plain_has_no_markdown_syntax():
    out = rendered_all(digest_input([finding(CHECKOUT), finding(GATEWAY)], {GATEWAY.fingerprint: ai("TLS fails")}))
    assert "```" not in out["text"] and "**" not in out["text"] and "\\" not in out["text"].split("Sample:")[0]
    assert "checkout: payment authorization failed: context deadline exceeded" in out["text"]
    assert "🤖 What happened: " + PROSE in out["text"], "one line per fact: the client wraps it, not us"


def test_html_wraps_samples_and_uses_inline_css_with_a_status_badge():
    html = rendered_all(digest_input([finding(CHECKOUT)]))["html"]
    assert "<style" not in html and "white-space:pre-wrap" in html and "overflow-wrap:anywhere" in html
    assert re.search(r'background:#c62828;color:#ffffff[^>]*>🆕 NEW<', html), "a coloured badge"
    assert ">error</span>" in html, "the severity"
    assert '<meta name="viewport"' in html


# ---------------------------------------------------------------------------- 3. times


def test_times_are_human_with_relative_time():
    assert when(NOW - 12 * MIN, NOW) == "08:48:00 UTC (12 min ago)"
    assert when(NOW - 30 * H, NOW) == "2026-11-30 03:00:00 UTC (1 d 6 h ago)"
    assert lifetime(NOW - 12 * MIN, NOW - 2 * MIN, NOW - MIN, NOW) == "started 08:48:00 UTC (12 min ago), still happening"
    assert lifetime(NOW - 5 * H, NOW - 2 * H, NOW, NOW) == \
        "started 04:00:00 UTC (5 h ago), for 3 h, last seen 07:00:00 UTC (2 h ago)"
    assert lifetime(NOW - 30 * H, NOW - 2 * MIN, NOW - MIN, NOW, window_first_ns=NOW - 50 * MIN) == \
        "since 08:10:00 UTC (50 min ago), still happening · first seen 2026-11-30 03:00:00 UTC (1 d 6 h ago)"


def test_no_nanosecond_timestamp_in_any_channel():
    c = cluster("checkout", "payment <*> failed", ["payment 1 failed", "payment 2 failed"],
                first_ns=WINDOW.from_ns + 123456789)
    for name, text in rendered_all(digest_input([finding(c)])).items():
        assert not re.search(r"\d{2}:\d{2}:\d{2}\.\d", text), name
        assert not re.search(r"\d{4}-\d{2}-\d{2}T\d{2}", text), name


# ---------------------------------------------------------------------------- 4. headings


def test_template_is_shortened_at_a_token_boundary_never_inside_a_placeholder():
    template = "worker pool rejected task because queue capacity <*> was reached after <*> retries on " + "node " * 20
    short = shorten(template, 50)
    assert short.endswith(" …") and len(short) <= 50 and template.startswith(short[:-2])
    assert "<*" not in short.replace("<*>", "")
    assert shorten("x" * 37 + "<*>" + "y" * 40, 40) == "x" * 37 + " …", "the placeholder is not cut"


def test_two_apps_with_the_same_words_get_two_headings():
    template = "context deadline exceeded while calling inventory (timeout <*>, attempt <*>)"
    cart = cluster("cart", template, ["context deadline exceeded while calling inventory (timeout 5s, attempt 2)"])
    checkout = cluster("checkout", template, ["context deadline exceeded while calling inventory (timeout 5s, attempt 3)"])
    cards = build_outgoing(digest_input([finding(cart), finding(checkout)])).cards
    assert [c.heading for c in cards] == [f"cart: {template}", f"checkout: {template}"]


# ---------------------------------------------------------------------------- 5. what varies


def test_what_varies_counts_distinct_values_per_wildcard():
    tally = WildcardTally("login failed for user=<*> from <*>")
    for index in range(400):
        tally.add(f"login failed for user={[198, 125, 328][index % 3] if index < 300 else 1000 + index} from 10.0.0.1")
    (user,) = tally.varying()  # the address never varied
    assert user.text() == "user: 198, 125, 328 … 103 distinct"
    assert from_messages("payment <*> failed", ["payment 1 failed", "payment 2 failed"])[0].text(True) == "payment: 1, 2"


def test_a_card_says_what_varies_over_the_window_not_only_the_samples():
    users = [198, 125, 328, 198, 7, 8, 9, 10]
    c = cluster("auth", "login failed for user=<*> from <*>", [f"login failed for user={u} from 10.0.0.1" for u in users])
    card = build_outgoing(digest_input([finding(c)])).cards[0]
    assert card.varying == ("user: 198, 125, 328 … 7 distinct",) and len(card.samples) == 1
    many = cluster("auth", "login failed for user=<*> from <*>", [f"login failed for user={u} from 10.0.0.1"
                                                                    for u in range(100)])
    assert build_outgoing(digest_input([finding(many)])).cards[0].varying == ("user: 0, 1, 2 … 32+ distinct",)


def test_a_second_sample_only_when_it_differs_in_shape():
    def trace(sku, frame="reserve"):
        return (f"Traceback (most recent call last):\n  File \"/app/stock.py\", line 61, in {frame}\n"
                f"    raise StockError(sku)\nStockError: insufficient stock for SKU-{sku}")

    assert distinct_shapes([trace(1), trace(2), trace(3)]) == [trace(1)], "only the SKU differs"
    assert distinct_shapes([trace(1), trace(2), trace(3, "release")]) == [trace(1), trace(3, "release")]
    assert distinct_shapes(["a 1", "a 2"]) == ["a 1"]


# ---------------------------------------------------------------------------- 6. the day


def test_the_day_counts_what_hourly_runs_reported_and_lists_app_and_title():
    spiky = cluster("checkout", "payment authorization failed", ["payment authorization failed"] * 3)
    episodes = [{"fingerprint": spiky.fingerprint, "kind": "spiking", "opened_ns": NOW - 6 * H, "schedule": "hourly",
                 "template": spiky.template, "labels": spiky.group_labels, "title": "Payments time out"},
                {"fingerprint": "fpnew", "kind": "new", "opened_ns": NOW - 5 * H, "schedule": "hourly",
                 "template": "cart <*> not found", "labels": {"namespace": "prod", "app": "cart"}, "title": None}]
    day = day_facts([finding(spiky, Status.ONGOING)], WINDOW, episodes=episodes, previous_total=0, quiet_rows=[],
                    titles={})
    assert [(i.app, i.title) for i in day.spiking_today] == [("checkout", "Payments time out")]
    assert [(i.app, i.title) for i in day.new_today] == [("cart", "cart <*> not found")]
    data = digest_input([], schedule="nightly", nightly=day)
    out = rendered_all(data)
    assert "Spiking today:** 1" in out["markdown"] and "Nothing new" not in out["markdown"]
    assert build_outgoing(data).headline.startswith("triage nightly: 1 new, 1 spiking today — cart: cart <*> not found")


def test_sparklines_keep_their_gaps_and_have_a_scale_in_every_channel():
    assert sparkline([0, 4, 0, 8]) == "·▅·█"
    steady = cluster("checkout", "steady problem", ["steady problem"])
    steady.hist = [3, 0, 0, 6] + [0] * 20
    day = day_facts([finding(steady, Status.ONGOING)], Window(NOW - 24 * H, NOW), episodes=[], previous_total=5,
                    quiet_rows=[], titles={})
    for name, text in rendered_all(digest_input([], schedule="nightly", nightly=day)).items():
        assert "▅··█" in text and "1 h a mark, peak 6" in text, name


# ---------------------------------------------------------------------------- 7. subject


def test_subject_leads_with_the_top_card():
    data = digest_input([finding(CHECKOUT), finding(GATEWAY)], {CHECKOUT.fingerprint: ai("payment authorization failed")})
    assert build_outgoing(data).headline == "triage hourly: 2 new — checkout: payment authorization failed (+1 more)"
    assert headline("hourly", (), "") == "triage hourly: no change"


# ---------------------------------------------------------------------------- 8. Explore links


def test_explore_filters_occur_verbatim_in_the_raw_lines():
    cases = [
        # logfmt: msg and error are two fields in the raw line but one message to the miner
        ("payment authorization failed: context deadline exceeded",
         ['level=error msg="payment authorization failed" order_id=1 error="context deadline exceeded"',
          'level=error msg="payment authorization failed" order_id=2 error="context deadline exceeded"']),
        # a Java stack: the signature joins its parts with triage's own " | "
        ("failed to load cart <*> | java.lang.NullPointerException: Cannot invoke <*> | at com.shop.CartService.total",
         ["ERROR c.s.CartService - failed to load cart 42\njava.lang.NullPointerException: Cannot invoke \"x\"\n"
          "\tat com.shop.CartService.total(CartService.java:88)"]),
        # JSON escapes the quotes of the message
        ('upload failed: Post "https://s3/x": EOF', ['{"msg":"upload failed","error":"Post \\"https://s3/x\\": EOF"}']),
    ]
    for template, samples in cases:
        filters = line_filters(template, samples)
        assert filters, template
        for text in filters:
            assert all(text in sample for sample in samples), (template, text)
            assert " | " not in text
    assert logql({"namespace": "prod", "app": "checkout"}, cases[0][0], cases[0][1]) == \
        '{app="checkout", namespace="prod"} |= "payment authorization failed" |= "context deadline exceeded"'


def test_explore_links_of_a_real_card_select_its_samples():
    for c in (CHECKOUT, GATEWAY):
        for text in line_filters(c.template, c.samples):
            assert all(text in sample for sample in c.samples)


# ---------------------------------------------------------------------------- 10. disclaimer


def test_the_ai_disclaimer_is_said_once_per_digest():
    summaries = {c.fingerprint: ai(f"{c.group_labels['app']} title") for c in (CHECKOUT, GATEWAY)}
    for name, text in rendered_all(digest_input([finding(CHECKOUT), finding(GATEWAY)], summaries)).items():
        assert text.count("AI-written") == 1, name


def test_extract_of_samples_gives_the_severity():
    assert extract(LogRecord(0, {}, CHECKOUT.samples[0])).level == "error"
    assert build_outgoing(digest_input([finding(CHECKOUT)])).cards[0].severity == "error"


def test_email_parts_come_from_the_same_outgoing():
    from triage.deliver.email import EmailChannel

    outgoing = build_outgoing(digest_input([finding(CHECKOUT)]))
    message = EmailChannel("h", 25, tls="none", sender="t@x", recipients=["o@x"]).build(outgoing)
    parsed = message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert parsed["Subject"] == outgoing.headline
    plain = next(p for p in parsed.walk() if p.get_content_type() == "text/plain").get_payload(decode=True).decode()
    assert "```" not in plain and "**" not in plain and "checkout: payment authorization failed" in plain


def test_a_nightly_after_an_hourly_spike_reports_it(tmp_path):
    """The 03:00 hourly posted a spike; the nightly used to say "Nothing new, regressed or spiking today"."""
    from pathlib import Path

    from click.testing import CliRunner

    from triage.cli import cli

    t0 = 1795417200 * S
    line = 'level=error msg="payment authorization failed" order_id={} error="context deadline exceeded"'
    entries = [(t0 + i * 30 * MIN, line.format(i)) for i in range(24)]  # 12 h of a steady 2 an hour
    entries += [(t0 + 12 * H + i * MIN, line.format(1000 + i)) for i in range(50)]  # then 50 in one hour
    data = tmp_path / "in.jsonl"
    data.write_text("".join(json.dumps({"ts": str(ts), "labels": {"namespace": "prod", "app": "checkout"},
                                        "line": text}) + "\n" for ts, text in entries))

    def run(start, end, schedule):
        report = tmp_path / f"{schedule}.json"
        result = CliRunner().invoke(cli, ["run", "--source", f"file:{data}", "--from", str(start), "--to", str(end),
                                          "--schedule", schedule, "--state", str(tmp_path / "s.db"), "--digest-dir",
                                          str(tmp_path / schedule), "--report-json", str(report)],
                                    catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return json.loads(report.read_text())

    run(t0, t0 + 12 * H, "manual")
    hourly = run(t0 + 12 * H, t0 + 13 * H, "hourly")
    assert [c["status"] for c in hourly["clusters"]] == ["spiking"]
    nightly = run(t0 + 13 * H - 24 * H, t0 + 13 * H, "nightly")
    # The nightly's own verdict for the day: the day holds the cluster's first sighting, so under durable
    # detection (state/detect.py: a window read again still calls it new) it is new, and not spiking.
    assert [c["status"] for c in nightly["clusters"]] == ["new"], "the nightly's own verdict for the day"
    digest = Path(nightly["digest_path"]).read_text()
    assert "Nothing new, regressed or spiking today" not in digest
    assert "**Spiking today:** 1\n  - `checkout`: `payment authorization failed: context deadline exceeded`" in digest
    assert "hourly run for 19:00–20:00 UTC" in digest


def test_every_demo_cluster_gets_an_explore_filter_that_selects_its_samples():
    """Each link's filter is tested against the cluster's own raw lines (3 of 8 demo cards used to select nothing)."""
    from triage.cluster.miner import Miner
    from triage.redact import redact
    from triage.source.demo import DemoSource

    miner = Miner("t")
    clusters: dict[str, ClusterWindow] = {}
    for record in DemoSource().fetch(Window(NOW - 3 * H, NOW)):
        event = redact(extract(record))
        group = (record.labels.get("namespace", ""), record.labels.get("app", ""))
        match = miner.add(event.message, group)
        c = clusters.setdefault(match.fingerprint, ClusterWindow(match.fingerprint, match.template, {}, group))
        c.template = match.template
        c.add(event, group[1])
    assert len(clusters) >= 6
    for c in clusters.values():
        c.template = miner.get(c.fingerprint).text if miner.get(c.fingerprint) else c.template
        filters = line_filters(c.template, c.samples)
        assert filters, c.template
        assert all(text in sample for text in filters for sample in c.samples), c.template


# ---------------------------------------------------------------------------- merged: the plan's roll-up, variants


def test_a_card_says_how_many_variants_the_cardinality_guard_merged_in_every_channel():
    guarded = cluster("checkout", "payment <*> failed", ["payment 1 failed", "payment 2 failed"])
    guarded.variants = 3
    for name, text in rendered_all(digest_input([finding(guarded)])).items():
        assert "3 variants merged (cardinality guard)" in text, name
    for name, text in rendered_all(digest_input([finding(CHECKOUT)])).items():
        assert "variants merged" not in text and "variant merged" not in text, name


def test_every_channel_renders_the_delivery_plans_rollup_with_its_exact_counts():
    from triage.deliver.plan import plan_message

    findings = [finding(cluster(app, f"{app} failed number <*> here", [f"{app} failed number {i} here"]))
                for app in ("a", "b", "c") for i in range(1)]
    findings += [finding(cluster("d", f"d problem {i} <*>", [f"d problem {i} x"])) for i in range(4)]
    plan = plan_message("email", findings, 2, full_list="digest.md", grafana_url="https://grafana.example/x")
    assert plan.rollup.total == len(findings) - 2 == 5
    data = digest_input(list(plan.cards), rollup=plan.rollup, rolled=list(plan.rolled))
    outgoing = build_outgoing(data)
    assert outgoing.more == 5 and outgoing.headline.endswith("(+6 more)") and "7 new" in outgoing.headline
    out = rendered_all(data)
    out["slack"] = json.dumps(slack_message(outgoing), ensure_ascii=False)
    by_place = dict(plan.rollup.by_place)
    assert sum(by_place.values()) == 5
    quoted = {"markdown": "`{}`", "slack": "`{}`", "text": "{}", "html": "{}"}
    for name, text in out.items():
        assert "and 5 more new: " in text and "Open them in Grafana Explore" in text, name
        for place, n in by_place.items():
            assert f"{n} in {quoted[name].format(place)}" in text, (name, place)
    assert "`" not in out["text"].split("… and 5 more")[1], "text/plain quotes nothing"
    for rolled in plan.rolled:  # the file digest lists every rolled-up cluster below the line
        assert f"`{rolled.cluster.fingerprint}`" in out["markdown"]


def slack_message(outgoing) -> list[dict]:
    from triage.deliver.slack import build_messages

    return build_messages(outgoing)
