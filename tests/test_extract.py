"""Golden table: what each kind of entry clusters on."""

import pytest

from triage.extract import extract
from triage.records import LogRecord

JAVA = """ERROR [main] c.s.CartService - failed to load cart 42
java.lang.NullPointerException: Cannot invoke "Item.getSku()" because "item" is null
\tat com.shop.checkout.CartService.total(CartService.java:97)
\tat com.shop.checkout.Controller.submit(Controller.java:142)
\tat java.base/java.lang.Thread.run(Thread.java:1583)"""

JAVA_BARE = """java.net.SocketTimeoutException: Read timed out
\tat java.base/java.net.SocketInputStream.read(SocketInputStream.java:168)
\tat org.postgresql.core.PGStream.receive(PGStream.java:455)
Caused by: java.io.IOException: broken pipe
\tat java.base/sun.nio.ch.IOUtil.write(IOUtil.java:1)"""

PYTHON = """Traceback (most recent call last):
  File "/app/worker.py", line 214, in handle
    reserve(item)
  File "/app/stock.py", line 57, in reserve
    raise StockError("no stock")
inventory.stock.StockError: insufficient stock for SKU-1"""

GO = """panic: runtime error: index out of range [5] with length 3

goroutine 42 [running]:
github.com/shop/search/rank.(*Scorer).Score(0xc000123450, {0xc0001a2000, 0x3, 0x4})
\t/src/rank/scorer.go:77 +0x1d4
main.main()
\t/src/main.go:12 +0x25"""


@pytest.mark.parametrize("line, message, level", [
    ('{"level":"error","msg":"payment failed","order":7}', "payment failed", "error"),
    ('{"severity":"WARNING","message":"slow query","ms":900}', "slow query", "warn"),
    ('{"level":"error","msg":"call failed","error":"connection refused"}', "call failed: connection refused", "error"),
    ('{"log":{"level":"error"},"event":"oops"}', "oops", "error"),
    ('{"a":1,"b":2}', "(structured entry without a message)", None),
    ('{"b":2,"error_code":"CARD_DECLINED","a":1}', "error_code=CARD_DECLINED", None),
    ('level=error msg="payment failed" order=7 err="timeout"', "payment failed: timeout", "error"),
    ('ts=1 lvl=warn message=retrying attempt=3', "retrying", "warn"),
    ("2026-11-23T07:00:00Z ERROR disk full on /dev/sda1", "2026-11-23T07:00:00Z ERROR disk full on /dev/sda1", "error"),
    ("[warn] something odd", "[warn] something odd", "warn"),
    ("plain message", "plain message", None),
    # kube's event recorder logs every event as "Event occurred": the reason names the problem
    ('I1201 00:00:01.000000       1 event.go:389] "Event occurred" object="search/search-bqvmgzwhn-cwfpv" fieldPath="" '
     'kind="Pod" apiVersion="v1" type="Warning" reason="OOMKilling" message="Memory cgroup out of memory"',
     "Event occurred: OOMKilling", "info"),
    ('E1201 00:00:01.000000       1 pod_workers.go:1301] "Error syncing pod, skipping" err="back-off" reason="x"',
     "Error syncing pod, skipping: back-off", "error"),
    ("{not json at all", "{not json at all", None),
])
def test_single_line_bodies(line, message, level):
    event = extract(LogRecord(0, {}, line))
    assert event.message == message
    assert event.level == level


@pytest.mark.parametrize("trace, signature", [
    (JAVA, 'ERROR [main] c.s.CartService - failed to load cart 42 | java.lang.NullPointerException: '
           'Cannot invoke "Item.getSku()" because "item" is null | at com.shop.checkout.CartService.total'),
    (JAVA_BARE, "java.net.SocketTimeoutException: Read timed out | at org.postgresql.core.PGStream.receive"),
    (PYTHON, 'inventory.stock.StockError: insufficient stock for SKU-1 | File "/app/stock.py", in reserve'),
    (GO, "panic: runtime error: index out of range [5] with length 3 | at github.com/shop/search/rank.(*Scorer).Score"),
])
def test_stack_traces_cluster_on_a_signature_without_line_numbers(trace, signature):
    event = extract(LogRecord(0, {}, trace))
    assert event.message == signature
    assert event.line == trace


def test_line_numbers_do_not_change_the_signature():
    moved = JAVA.replace("CartService.java:97", "CartService.java:101")
    assert extract(LogRecord(0, {}, moved)).message == extract(LogRecord(0, {}, JAVA)).message


def test_level_label_wins():
    assert extract(LogRecord(0, {"level": "error"}, "INFO looks fine")).level == "error"
    assert extract(LogRecord(0, {"detected_level": "warn"}, "x")).level == "warn"


def test_messages_are_one_line_and_bounded():
    event = extract(LogRecord(0, {}, "a\tb\rc " + "x" * 10_000))
    assert "\t" not in event.message and "\r" not in event.message
    assert len(event.message) <= 2000
