"""Property-based tests: bad input never raises anything but our documented errors, and escaping holds."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from triage import config
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
