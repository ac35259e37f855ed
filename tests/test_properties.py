"""Property-based tests: bad input never raises anything but our documented errors, and escaping holds."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from triage import config
from triage.cluster.masking import tokenize
from triage.clusterkeys import ClusterSettings, cluster_stream
from triage.deliver.slack import code, code_block as slack_block, escape
from triage.digest import code_block, code_span
from triage.errors import ConfigError, UsageError
from triage.extract import extract
from triage.records import LogRecord
from triage.redact import redact
from triage.source.file import load_records
from triage.timeparse import parse_duration_ns, parse_time_ns

ANY_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=400)
NASTY = st.one_of(ANY_TEXT, st.text(alphabet="\x00\n\r\t `<>{}[]\"'=:@&|#*_\\", max_size=80),
                  st.integers(0, 60).map(lambda depth: "[" * depth + "]" * depth),
                  st.integers(0, 2000).map(lambda depth: '{"a":' * depth + "1" + "}" * depth),
                  st.just("x" * 100_000))


@given(ANY_TEXT)
def test_durations_and_times_raise_only_value_errors(text):
    for parse in (parse_duration_ns, parse_time_ns):
        try:
            assert parse(text) >= 0 or parse is parse_time_ns
        except ValueError:
            pass


@given(st.lists(st.one_of(NASTY, st.dictionaries(st.sampled_from(["ts", "line", "labels", "x"]),
                                                 st.one_of(NASTY, st.integers(), st.none(), st.booleans()),
                                                 max_size=4).map(json.dumps)), max_size=6))
def test_file_source_yields_records_or_a_usage_error(tmp_path_factory, lines):
    path = Path(tmp_path_factory.mktemp("f")) / "in.jsonl"
    path.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass"))
    try:
        for record in load_records(path):
            assert isinstance(record.line, str) and isinstance(record.ts_ns, int)
    except UsageError as err:
        assert "\n" not in str(err).strip()


@given(st.dictionaries(st.sampled_from(["TRIAGE_LOKI__URL", "TRIAGE_LOKI__TIMEOUT_S", "TRIAGE_SOURCES",
                                        "TRIAGE_GROUP_BY", "TRIAGE_DETECT__SPIKE_FACTOR", "TRIAGE_LOKI__SPLIT",
                                        "TRIAGE_EMAIL__TO", "TRIAGE_LLM__MODE", "TRIAGE_NOSUCH__KEY"]),
                       st.one_of(st.text(max_size=30), st.just("[]"), st.just("{}"), st.just("[1, 2]")), max_size=4))
def test_config_loads_or_names_the_bad_field(env):
    try:
        config.load(None, env, cwd=Path("/nonexistent"))
    except ConfigError as err:
        assert re.match(r"^[\w.]+( in [^:]+)?: ", str(err)) or "both set" in str(err)


@given(NASTY, st.dictionaries(st.sampled_from(["namespace", "app", "pod", "level"]), ANY_TEXT, max_size=4))
def test_extraction_and_redaction_never_raise(line, labels):
    event = redact(extract(LogRecord(0, labels, line)))
    assert isinstance(event.message, str) and "\n" not in event.message


@given(st.lists(NASTY, min_size=1, max_size=12))
def test_cluster_keys_are_deterministic_one_per_line(lines):
    data = "\n".join(line.replace("\n", " ") for line in lines) + "\n"
    outputs = []
    for _ in range(2):
        out = io.StringIO()
        cluster_stream(io.BytesIO(data.encode("utf-8", "surrogatepass")), out, "lines", ClusterSettings())
        outputs.append(out.getvalue())
    assert outputs[0] == outputs[1]
    assert len(outputs[0].split("\n")) - 1 == len(lines)


@given(NASTY)
def test_markdown_escaping_invariants(text):
    span = code_span(text)
    assert "\n" not in span
    fence = re.match(r"^`+", span).group(0)
    assert span.endswith(fence) and fence not in span[len(fence):-len(fence)].strip()
    block = code_block(text)
    opening = re.match(r"^`{3,}", block).group(0)
    assert block.endswith("\n" + opening)
    assert ("\n" + opening) not in block[len(opening):-len(opening) - 1], "content cannot close the fence"


@given(NASTY)
def test_slack_text_never_forms_a_mention_or_link(text):
    for rendered in (escape(text), code(text), slack_block(text)):
        assert "<" not in rendered and ">" not in rendered
        assert not re.search(r"@(channel|here|everyone)\b", rendered, re.I)


# Lines as real components print them, with every digit free: the key of a line may not depend on
# the values of its digits, nor on the shape cache of `triage cluster` (which keys lines by their
# digits turned to 0). Templates modelled on klog, nginx, JSON and logfmt bodies, pod names, card
# numbers, dates and ids.
_DIGIT_TEMPLATES = [
    "E1201 06:52:32.153219    1234 kubelet.go:2345] \"Error syncing pod\" err=\"exit 1\" pod=\"default/web-7d9f8b6c1d-x2k9p\"",
    "2026/12/01 06:52:32 [error] 31#31: *1234 upstream timed out (110: Connection timed out), client: 10.0.3.4",
    '{"level":"error","ts":1733036000.12,"msg":"request failed","status":503,"order":"ord-0917"}',
    "level=error msg=\"payment failed\" card=\"4111 1111 1111 1111\" amount=1299",
    "pod db-backup-29001440-x8kq2 OOMKilled after 2048 MiB at 2026-12-01 06:52:32,153",
    "user 1234 paid with 5500-0000-0000-0004 order 0001 id 3fa85f64-5717-4562-b3fc-2c963f66afa6",
    "ERROR [main] c.e.Svc - job 77 failed: timeout after 30s on redis-0:6379 (attempt 3/5)",
    # generated names whose owner holds digits: Tomcat's thread pools, an app named with a version
    "ERROR [http-nio-8080-exec-18] c.s.checkout.CartService - failed to load cart 42",
    "readiness probe of oauth2-proxy-5d8f7b9c6-x2k9p failed: HTTP probe failed with statuscode: 503",
]


@given(st.sampled_from(_DIGIT_TEMPLATES), st.randoms(use_true_random=False))
def test_keys_depend_neither_on_digit_values_nor_on_the_shape_cache(template, rnd):
    variants = [re.sub(r"\d", lambda _: str(rnd.randrange(10)), template) for _ in range(4)]
    if template.startswith("{"):
        variants = [re.sub(r'(?<=[:,\[ ])0+(?=\d)', "", v) for v in variants]  # JSON numbers keep no leading zero
    lines = (template, *variants)

    def keys(cache: bool) -> list[str]:
        out = io.StringIO()
        cluster_stream(io.BytesIO("".join(line + "\n" for line in lines).encode()), out, "lines", ClusterSettings(),
                       shape_cache=cache)
        return out.getvalue().split()

    assert keys(True) == keys(False)
    tokens = {tuple(tokenize(redact(extract(LogRecord(0, {}, line), with_level=False)).message)) for line in lines}
    assert len(tokens) == 1, tokens
