"""Extract finds which language a stack trace is in with one search of the text before matching it
line by line (triage/extract.py, ``_stack_signature``): the search must never change the signature.
Texts mix the lines of Java (``at pkg.Class.method(File.java:12)``, ``Caused by:``), Python
(``Traceback (most recent call last):``, ``File "...", line N, in f``) and Go (``panic: ...``,
``goroutine 1 [running]:``) traces, with the whitespace and near-misses real logs hold."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from triage import extract

LINES = [
    "java.lang.IllegalStateException: pool exhausted", "Caused by: java.io.IOException: broken pipe",
    "\tat com.shop.cart.CartService.add(CartService.java:88)", "    at java.base/java.lang.Thread.run(Thread.java:833)",
    "at  org.apache.kafka.Consumer.poll(Consumer.java:1)", "\tat", "at (x)", "    ... 12 more", "rate at 5(s)",
    "Traceback (most recent call last):", '  File "/app/worker.py", line 214, in handle', "    reserve(item)",
    "inventory.stock.StockError: insufficient stock", "KeyError: 'sku'", "During handling of the above exception",
    "panic: runtime error: index out of range [3] with length 3", "fatal error: concurrent map writes",
    "goroutine 1 [running]:", "main.main()", "\tmain.go:12 +0x1d", "  panic: nested", "panic:", "panic: ",
    "level=error msg=\"request failed\"", '{"msg": "boom", "level": "error"}', "", " ", "\x1c", "\u00a0panic: x",
]


def _reference(text: str) -> str | None:
    lines = [line.rstrip() for line in text.strip("\n").split("\n")]
    return extract._java_signature(lines) or extract._python_signature(lines) or extract._go_signature(lines)


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(LINES), min_size=2, max_size=9), st.sampled_from(["\n", "\n\n", "\r\n"]))
def test_the_language_search_gives_the_signature_every_line_by_line_match_gives(lines, newline):
    text = newline.join(lines)
    assert extract._stack_signature(text) == _reference(text)
