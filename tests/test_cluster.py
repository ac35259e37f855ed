"""Grouping a human expects, stable ids, and the `triage cluster` contract."""

import io
import json
import subprocess
import sys

import pytest

from triage.cluster.masking import tokenize
from triage.cluster.miner import Miner
from triage.clusterkeys import ClusterSettings, cluster_stream


def keys_of(lines, fmt="lines"):
    out = io.StringIO()
    cluster_stream(io.BytesIO("".join(line + "\n" for line in lines).encode()), out, fmt, ClusterSettings())
    return out.getvalue().split("\n")[:-1]


@pytest.mark.parametrize("text, tokens", [
    ("connect to 10.1.2.3:5432 failed after 30s", ["connect", "to", "<*>", "failed", "after", "<*>"]),
    ("request 3fa85f64-5717-4562-b3fc-2c963f66afa6 took 120ms", ["request", "<*>", "took", "<*>"]),
    ("pod checkout-7d9f8b6c5-x2k4p restarted", ["pod", "checkout-<*>", "restarted"]),
    ("size=123, user=bob", ["size=<*>,", "user=bob"]),
    ("at 2026-11-23T07:00:00.123Z sha 9f86d081884c7d65", ["at", "<*>", "sha", "<*>"]),
    ("addr fe80::1ff:fe23:4567:890a down", ["addr", "<*>", "down"]),
])
def test_masking(text, tokens):
    assert tokenize(text) == tokens


GROUPS = [
    # (lines that must share one key, lines that must each get another key)
    (["Failed password for root from 10.0.0.1 port 22 ssh2", "Failed password for root from 10.9.9.9 port 4711 ssh2"],
     ["Accepted password for root from 10.0.0.1 port 22 ssh2"]),
    (['{"level":"error","msg":"payment failed","order":1}', '{"level":"error","msg":"payment failed","order":2,"extra":true}'],
     ['{"level":"error","msg":"refund failed","order":1}']),
    (["level=error msg=\"db timeout\" after=3s", "level=error msg=\"db timeout\" after=14s"],
     ["level=error msg=\"cache timeout\" after=3s"]),
    (["job 17 finished in 20ms", "job 9120 finished in 1.5s"], ["job 17 started"]),
    # JSON with varying keys clusters on its message field
    (['{"msg":"cache miss","key":"user:1"}', '{"level":"warn","msg":"cache miss","shard":3,"extra":{"a":1}}'],
     ['{"msg":"cache hit","key":"user:1"}']),
    # Go panics: goroutine numbers and argument pointers vary, the panic and top frame do not
    (["panic: runtime error: invalid memory address or nil pointer dereference\n\ngoroutine 7 [running]:\n"
      "main.(*Server).handle(0xc000010000)\n\t/src/server.go:42 +0x1d",
      "panic: runtime error: invalid memory address or nil pointer dereference\n\ngoroutine 913 [running]:\n"
      "main.(*Server).handle(0xc0000aa000)\n\t/src/server.go:42 +0x1d"],
     ["panic: runtime error: invalid memory address or nil pointer dereference\n\ngoroutine 7 [running]:\n"
      "main.(*Cache).get(0xc000010000)\n\t/src/cache.go:9 +0x1d"]),
    # request ids, durations, sizes with units and quoted values
    (['request_id=ab12cd34ef56 took 1.25 s path="/api/v1/orders/991"',
      'request_id=ff0099aa8877 took 310 ms path="/api/v1/orders/12"'], ['request_id=ab12cd34ef56 failed path="/x"']),
    (["GET /healthz 200 in 3ms", "GET /healthz 200 in 12ms"], ["GET /healthz 503 in 3ms retrying upstream"]),
]


@pytest.mark.parametrize("same, other", GROUPS)
def test_expected_grouping(same, other):
    keys = keys_of([json.dumps({"labels": {}, "line": line}) for line in same + other], "jsonl")
    assert len(set(keys[: len(same)])) == 1
    assert keys[len(same)] != keys[0]


def test_same_words_in_two_apps_are_two_problems():
    entries = [json.dumps({"ts": 1, "labels": {"namespace": "prod", "app": app}, "line": "connection refused"})
               for app in ("checkout", "payments", "checkout")]
    keys = keys_of(entries, "jsonl")
    assert keys[0] == keys[2] != keys[1]


def test_a_word_position_becomes_variable_after_three_values_and_the_oldest_id_survives():
    miner = Miner("v")
    alice = miner.add("user alice logged in from web", ("prod",))
    bob = miner.add("user bob logged in from web", ("prod",))
    assert bob.fingerprint != alice.fingerprint, "two values are not yet proof of a variable"
    carol = miner.add("user carol logged in from web", ("prod",))
    assert carol.fingerprint == alice.fingerprint and carol.template == "user <*> logged in from web"
    assert miner.resolve(bob.fingerprint) == alice.fingerprint
    aliases = miner.aliases()
    assert bob.fingerprint in aliases and set(aliases.values()) == {alice.fingerprint} and len(aliases) == 2
    assert miner.add("user dave logged in from web", ("prod",)).fingerprint == alice.fingerprint


def test_a_masked_value_beside_a_word_proves_the_position_variable():
    miner = Miner("v")
    first = miner.add("invalid user admin from host ssh2")
    assert miner.add("invalid user test9 from host ssh2").fingerprint == first.fingerprint


@pytest.mark.parametrize("lines", [
    ["cupsd startup succeeded", "cupsd shutdown succeeded", "cupsd restart succeeded"],
    ["Starting TrustedInstaller initialization.", "Starting TrustedInstaller finalization."],
    ["payment failed: card declined", "payment failed: card expired"],
])
def test_messages_one_meaningful_word_apart_stay_apart(lines):
    miner = Miner("v")
    assert len({miner.add(line).fingerprint for line in lines}) == len(lines)


def test_restored_miner_keeps_ids_and_generalised_templates():
    miner = Miner("v")
    for name in ("alice", "bob", "carol"):
        root = miner.add(f"user {name} logged in from web", ("prod",))
    restored = Miner("v")
    restored.restore(root.fingerprint, ("prod",), root.template)
    assert restored.add("user zoe logged in from web", ("prod",)).fingerprint == root.fingerprint
    fresh = Miner("v")
    assert fresh.add("user alice logged in from web", ("prod",)).fingerprint == root.fingerprint, "deterministic ids"


def test_cluster_command_prints_one_key_per_line_including_empty_and_odd_lines():
    lines = ["a 1", "", "a 2", "\x00 nul", "ünïcödé 3", "   "]
    result = subprocess.run([sys.executable, "-m", "triage", "cluster"], input="\n".join(lines) + "\n",
                            capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    keys = result.stdout.split("\n")[:-1]
    assert len(keys) == len(lines)
    assert keys[0] == keys[2]


def test_cluster_command_invalid_utf8_and_no_final_newline():
    result = subprocess.run([sys.executable, "-m", "triage", "cluster"], input=b"ok 1\n\xff\xfe bad 2\nlast 3",
                            capture_output=True, timeout=60)
    assert result.returncode == 0
    assert len(result.stdout.decode().split("\n")[:-1]) == 3


def test_cluster_command_imports_no_heavy_dependency():
    code = ("import sys, io; from triage.cli import main; sys.argv=['triage','cluster']; sys.stdin=io.TextIOWrapper(io.BytesIO(b'x\\n'));\n"
            "try:\n  main()\nexcept SystemExit: pass\n"
            "heavy=[m for m in ('requests','pydantic','jinja2','sqlite_utils','sqlite3') if m in sys.modules]\n"
            "print(','.join(heavy), file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stderr.strip().splitlines()[-1:] in ([], [""]), result.stderr


def test_no_input_grows_one_group_without_bound():
    # Messages that share nothing (free text, random words): the guard caps a group's clusters.
    import random

    rnd = random.Random(5)
    words = ["".join(rnd.choice("bcdfgklmnprstvz") + rnd.choice("aeiou") for _ in range(3)) for _ in range(3000)]
    miner = Miner("v", soft_limit=50, hard_limit=120)
    for _ in range(1500):
        miner.add(" ".join(rnd.choice(words) for _ in range(rnd.randint(5, 30))), ("prod", "api"))
    assert 50 <= len(miner) <= 120
    assert sum(t.variants for t in miner.templates()) > 0, "the merged templates are counted as variants"


def test_a_run_of_free_text_between_fixed_words_is_one_wildcard():
    miner = Miner("v")
    first = miner.add("rejected query select a from user 7: statement timeout")
    for text in ["update t set x", "show tables", "delete from b where c limit 3 4"]:
        match = miner.add(f"rejected query {text} from user 7: statement timeout")
    assert match.fingerprint == first.fingerprint
    assert match.template == "rejected query <*> from user <*>: statement timeout"
    # two lengths are not proof: "for root" / "for invalid user bob" are two problems in sshd
    other = Miner("v")
    root = other.add("Failed password for root from 10.0.0.1 port 22 ssh2")
    assert other.add("Failed password for invalid user bob from 10.0.0.1 port 22 ssh2").fingerprint != root.fingerprint
    assert other.add("Failed password for invalid user amy from 10.0.0.1 port 22 ssh2").fingerprint != root.fingerprint


def test_optional_trailing_fields_and_value_lists_need_two_lengths_only():
    miner = Miner("v")
    a = miner.add('upstream timed out, client: 10.0.0.1, server: shop, request: "GET /x HTTP/1.1", host: "h"')
    b = miner.add('upstream timed out, client: 10.0.0.2, server: shop, request: "GET /x HTTP/1.1", host: "h", '
                  'referrer: "https://shop/"')
    assert a.fingerprint == b.fingerprint
    blocks = Miner("v")
    one = blocks.add("BLOCK* ask 10.0.0.1:50010 to delete blk_-1 blk_2")
    assert blocks.add("BLOCK* ask 10.0.0.1:50010 to delete blk_3 blk_4 blk_5 blk_6").fingerprint == one.fingerprint


def test_one_nginx_problem_in_any_order_of_methods_and_optional_fields_is_one_cluster():
    # ingress-nginx error lines: the request's method varies and `, referrer: "..."` is optional.
    # Learned in some orders, the run went to two places (before `host:` and after `request:`): two
    # generalized roots that each covered the other's lines, two clusters (576 of these 20,160 orders).
    import itertools
    import random

    def line(method, referrer, n):
        text = (f"2026/12/01 00:02:38 [error] 20#20: *27{n} recv() failed (104: Connection reset by peer) while "
                f"reading response header from upstream, client: 10.0.15.{n}, server: shop.example.com, "
                f'request: "{method} /api/v1/x/{n} HTTP/1.1", upstream: "http://10.244.1.6:8080/api/v1/x/{n}", '
                f'host: "shop.example.com"')
        return text + (', referrer: "https://shop.example.com/water"' if referrer else "")

    combos = [(method, referrer) for method in ("GET", "POST", "PUT", "DELETE") for referrer in (False, True)]
    orders = list(itertools.permutations(combos, 6))
    for order in [orders[0], (combos[0], combos[2], combos[1], combos[5], combos[3], combos[4])] + random.Random(3).sample(orders, 300):
        miner = Miner("v")
        keys = {miner.add(line(method, referrer, n)).fingerprint for n, (method, referrer) in enumerate(order)}
        assert len({miner.resolve(key) for key in keys}) == 1, order


@pytest.mark.parametrize("order", [(1, 2, 3), (3, 2, 1), (2, 1), (3, 2), (2, 4)])
def test_an_enumeration_of_same_shaped_clauses_of_any_length_is_one_cluster(order):
    # Argo CD (and Kubernetes aggregate errors) write a list of objects as comma-separated clauses of
    # one shape: `Service "x" is invalid, ConfigMap "x" is invalid`. Their number varies per sync.
    kinds = ["Service", "ConfigMap", "Deployment.apps", "Ingress.networking.k8s.io", "Secret"]
    lines = []
    for round_ in range(4):
        for count in order:
            items = ", ".join(f'{kinds[(round_ + i) % 5]} "shop-cart" is invalid' for i in range(count))
            lines.append(f"Partial sync operation to {round_}f62855eb92 failed: one or more objects failed to apply, "
                         f"reason: {items}")
    assert len(set(keys_of(lines))) == 1
    two, three = (tokenize("reason: " + ", ".join(f'{kind} "a" is invalid' for kind in kinds[:n])) for n in (2, 3))
    assert two == three == ["reason:", "<*>", '"<*>"', "is", "invalid"]
    # clauses that differ in more than one word are no enumeration: two problems stay two
    apart = keys_of(["sync failed: Service x is invalid, ConfigMap y is missing",
                     "sync failed: Service x is invalid, ConfigMap y is forbidden"])
    assert apart[0] != apart[1]


def test_dns_query_types_are_values_next_to_a_dns_name():
    # CoreDNS's errors plugin ("2 example.org. AAAA: read udp ...") and log plugin
    # ("AAAA IN example.org. udp 45 false 4096"), Unbound and BIND write a query's RR type beside the
    # name or the class IN: one upstream problem for A and AAAA queries alike.
    errors = keys_of([f"[ERROR] plugin/errors: 2 {name}. {qtype}: read udp 10.244.1.{i}:4000->10.0.0.10:53: i/o timeout"
                      for i, (name, qtype) in enumerate([("api.stripe.com", "A"), ("rulao-4.internal", "AAAA"),
                                                         ("api.stripe.com", "AAAA"), ("db.svc.cluster.local", "A")])])
    assert len(set(errors)) == 1
    queries = keys_of([f'[INFO] 10.0.0.{i}:5353 - {i} "{qtype} IN example.org. udp 45 false 4096" NOERROR qr,aa,rd 121 0.0001s'
                       for i, qtype in enumerate(["A", "AAAA", "A"])])
    assert len(set(queries)) == 1
    assert tokenize("A connection was refused") == ["A", "connection", "was", "refused"]
    assert tokenize("check A failed, check MX passed")[:2] == ["check", "A"]


def test_a_learned_run_or_position_never_swallows_an_exception_type():
    # Java traces flattened onto one line (a shipper that joins lines, `triage cluster --format lines`):
    # how many frames are shown varies, so a run is learned, and it must not take in the exception's
    # type: two exception types with the same message are two problems (Spring's
    # DataIntegrityViolationException and Hibernate's ConstraintViolationException).
    frames = [f"at com.example.orders.Step{n}.run(Step{n}.java:{n})" for n in range(9)]
    miner = Miner("v")
    keys = {}
    for exc in ("org.springframework.dao.DataIntegrityViolationException", "org.hibernate.exception.ConstraintViolationException"):
        for shown in (2, 4, 6, 8, 3):
            text = (f"ERROR 1 --- [nio-8080-exec-{shown}] Servlet.service() threw exception [Request processing failed: "
                    f"{exc}: could not execute statement] with root cause {exc}: could not execute statement "
                    + " ".join(frames[:shown]) + f" ... {shown * 7} common frames omitted")
            keys.setdefault(exc, set()).add(miner.add(text).fingerprint)
    resolved = {exc: {miner.resolve(k) for k in found} for exc, found in keys.items()}
    assert all(len(found) == 1 for found in resolved.values()), resolved
    assert resolved["org.springframework.dao.DataIntegrityViolationException"] != resolved["org.hibernate.exception.ConstraintViolationException"]
    # nor one position: three exception types with one message are three problems
    other = Miner("v")
    found = {other.add(f"task failed: {exc}: connection to db lost after retries").fingerprint
             for exc in ("ValueError", "psycopg.OperationalError", "java.io.IOException", "TimeoutError")}
    assert len({other.resolve(k) for k in found}) == 4


@pytest.mark.parametrize("order", list(__import__("itertools").permutations([4, 5, 6])))
def test_a_trace_with_a_varying_number_of_frames_is_one_cluster_in_any_order(order):
    # A Java trace flattened onto one line shows 4, 5 or 6 of the same frames. Against a 5-frame
    # template the 4- and 6-frame ones give runs of the same tokens (the run repeats what surrounds it),
    # so distinct runs counted two lengths where three templates came in: the lengths are counted now.
    exc = "org.springframework.dao.DataIntegrityViolationException"
    frames = [f"at com.example.orders.Step{n}.run(Step{n}.java:{n})" for n in range(6)]
    miner = Miner("v")
    keys = [miner.add(f"ERROR 1 --- [exec-10] Servlet.service() threw exception [Request processing failed: {exc}: "
                      f"could not execute statement] with root cause {exc}: could not execute statement "
                      + " ".join(frames[:shown]) + " ... 45 common frames omitted").fingerprint for shown in order]
    assert len({miner.resolve(key) for key in keys}) == 1


@pytest.mark.parametrize("statement_first", [False, True])
def test_an_optional_continuation_line_of_a_flattened_record_is_one_cluster(statement_first):
    # PostgreSQL's stderr log flattened onto one line: an ERROR and its DETAIL, and in some entries a
    # STATEMENT line more, each continuation line starting with the same `<time> [<pid>]` prefix.
    def entry(n, statement):
        prefix = f"2026-12-01 00:00:0{n}.123 UTC [42{n}]"
        text = (f'{prefix} ERROR:  duplicate key value violates unique constraint "orders_pkey" '
                f"{prefix} DETAIL:  Key (id)=({n}) already exists.")
        return text + (f" {prefix} STATEMENT:  INSERT INTO orders (id, total) VALUES ($1, $2)" if statement else "")

    miner = Miner("v")
    first, second = (miner.add(entry(n, statement)) for n, statement in ((1, statement_first), (2, not statement_first)))
    assert miner.resolve(first.fingerprint) == miner.resolve(second.fingerprint)
    other = miner.add("2026-12-01 00:00:03.123 UTC [4244] ERROR:  deadlock detected "
                      "2026-12-01 00:00:03.123 UTC [4244] DETAIL:  Process 1 waits for ShareLock.")
    assert miner.resolve(other.fingerprint) != miner.resolve(first.fingerprint)
