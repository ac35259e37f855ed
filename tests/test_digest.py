from triage.digest import code_block, code_span


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
