"""Demo source: realistic Kubernetes error logs, generated deterministically.

Every minute of time has its own seeded generator, so any window yields the same entries for
the minutes it shares with another window (re-runs and overlapping windows agree), and nothing
needs a network or a file. Several namespaces and apps, plain text, JSON and logfmt bodies,
Java/Python/Go stack traces, and problems that come, go and spike over the day.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from triage.records import LogRecord, Window
from triage.source import FetchNotes
from triage.timeparse import NS_PER_S

MINUTE_NS = 60 * NS_PER_S
_HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # what Kubernetes uses for pod-name suffixes


@dataclass(frozen=True, slots=True)
class Problem:
    namespace: str
    app: str
    container: str
    per_hour: float
    render: Callable[[random.Random, int], str]
    level: str = "error"
    active: Callable[[int], bool] = lambda hour: True  # hour = hours since the epoch
    spike: Callable[[int], float] = lambda hour: 1.0


def _ip(rng: random.Random) -> str:
    return f"10.{rng.randrange(0, 255)}.{rng.randrange(0, 255)}.{rng.randrange(1, 255)}"


def _hex(rng: random.Random, size: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(size))


def _uuid(rng: random.Random) -> str:
    h = _hex(rng, 32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def _ms(rng: random.Random) -> str:
    return f"{rng.randrange(5, 30000)}ms"


def _checkout_db_timeout(rng: random.Random, ts: int) -> str:
    return (f'ts={ts // NS_PER_S} level=error msg="payment authorization failed" '
            f'order_id={rng.randrange(100000, 999999)} upstream=payments:8080 '
            f'error="context deadline exceeded" elapsed={_ms(rng)}')


def _checkout_cart_java(rng: random.Random, ts: int) -> str:
    return (f"ERROR [http-nio-8080-exec-{rng.randrange(1, 50)}] c.s.checkout.CartService - "
            f"failed to load cart {_uuid(rng)}\n"
            f"java.lang.NullPointerException: Cannot invoke \"com.shop.cart.Item.getSku()\" because \"item\" is null\n"
            f"\tat com.shop.checkout.CartService.total(CartService.java:{rng.choice([88, 91, 97])})\n"
            f"\tat com.shop.checkout.CheckoutController.submit(CheckoutController.java:142)\n"
            f"\tat java.base/java.lang.Thread.run(Thread.java:1583)")


def _payments_card_declined(rng: random.Random, ts: int) -> str:
    return json.dumps({
        "ts": ts // 1_000_000, "level": "error", "logger": "payments.gateway",
        "msg": "card authorization rejected by provider",
        "provider": rng.choice(["stripe", "adyen"]), "status": 502,
        "request_id": _uuid(rng), "latency_ms": rng.randrange(40, 900),
    })


def _payments_pg_pool(rng: random.Random, ts: int) -> str:
    return json.dumps({
        "ts": ts // 1_000_000, "level": "error", "logger": "payments.db",
        "message": f"could not acquire connection from pool after {rng.randrange(5, 30)}s",
        "pool": "pg-primary", "in_use": 50, "waiting": rng.randrange(1, 200),
    })


def _gateway_upstream(rng: random.Random, ts: int) -> str:
    return (f'{_ip(rng)} - - "POST /api/v1/orders/{rng.randrange(1000, 99999)} HTTP/1.1" 503 '
            f"upstream connect error or disconnect/reset before headers. reset reason: connection failure "
            f"upstream={_ip(rng)}:8080 duration={_ms(rng)}")


def _gateway_tls(rng: random.Random, ts: int) -> str:
    return (f"2026/11/23 {rng.randrange(0, 24):02d}:{rng.randrange(0, 60):02d}:00 [error] "
            f"{rng.randrange(1, 64)}#0: *{rng.randrange(10000, 999999)} SSL_do_handshake() failed "
            f"(SSL: error:0A000086:SSL routines::certificate verify failed) while SSL handshaking to upstream, "
            f"client: {_ip(rng)}, server: api.shop.example")


def _inventory_python(rng: random.Random, ts: int) -> str:
    sku = f"SKU-{rng.randrange(10000, 99999)}"
    return ("Traceback (most recent call last):\n"
            '  File "/app/inventory/worker.py", line 214, in handle\n'
            "    reserve(item)\n"
            f'  File "/app/inventory/stock.py", line {rng.choice([57, 61])}, in reserve\n'
            "    raise StockError(f\"insufficient stock for {sku}\")\n"
            f"inventory.stock.StockError: insufficient stock for {sku}: wanted {rng.randrange(2, 9)}, have {rng.randrange(0, 2)}")


def _inventory_kafka(rng: random.Random, ts: int) -> str:
    return (f"level=error ts={ts // NS_PER_S} caller=consumer.go:{rng.randrange(80, 90)} "
            f'msg="kafka: error while consuming" topic=stock-events partition={rng.randrange(0, 12)} '
            f'offset={rng.randrange(10**6, 10**7)} err="read tcp {_ip(rng)}:{rng.randrange(30000, 60000)}->'
            f'{_ip(rng)}:9092: i/o timeout"')


def _search_go_panic(rng: random.Random, ts: int) -> str:
    return ("panic: runtime error: index out of range [" + str(rng.randrange(3, 9)) + "] with length 3\n\n"
            f"goroutine {rng.randrange(20, 900)} [running]:\n"
            "github.com/shop/search/internal/rank.(*Scorer).Score(0xc000123450, {0xc0001a2000, 0x3, 0x4})\n"
            "\t/src/internal/rank/scorer.go:77 +0x1d4\n"
            "github.com/shop/search/internal/api.(*Handler).Search(0xc0000b6000, {0x9a4f20, 0xc0002c40e0})\n"
            "\t/src/internal/api/handler.go:51 +0x2a5")


def _auth_redis(rng: random.Random, ts: int) -> str:
    return (f"time=\"2026-11-23T{rng.randrange(0, 24):02d}:{rng.randrange(0, 60):02d}:00Z\" level=error "
            f"msg=\"session lookup failed\" err=\"dial tcp {_ip(rng)}:6379: connect: connection refused\" "
            f"user_id={rng.randrange(1, 10**6)}")


def _oom(rng: random.Random, ts: int) -> str:
    return (f"FATAL: worker process {rng.randrange(100, 9999)} exited: out of memory "
            f"(rss={rng.randrange(900, 1024)}Mi limit=1Gi)")


CATALOG: tuple[Problem, ...] = (
    Problem("prod", "checkout", "checkout", 40, _checkout_db_timeout),
    Problem("prod", "checkout", "checkout", 6, _checkout_cart_java),
    Problem("prod", "payments", "payments", 25, _payments_card_declined,
            spike=lambda hour: 12.0 if hour % 24 == 3 else 1.0),
    Problem("prod", "payments", "payments", 8, _payments_pg_pool, active=lambda hour: hour % 6 in (2, 3)),
    Problem("prod", "api-gateway", "envoy", 30, _gateway_upstream),
    Problem("prod", "api-gateway", "nginx", 4, _gateway_tls, active=lambda hour: hour % 48 < 30),
    Problem("staging", "inventory", "worker", 10, _inventory_python),
    Problem("staging", "inventory", "consumer", 12, _inventory_kafka, level="warn"),
    Problem("prod", "search", "search", 2, _search_go_panic, active=lambda hour: hour % 3 == 0),
    Problem("prod", "auth", "auth", 15, _auth_redis, active=lambda hour: hour % 24 >= 12),
    Problem("staging", "reports", "renderer", 1.5, _oom, level="fatal"),
)


def _pods(problem: Problem) -> list[str]:
    seed = int(hashlib.sha256(problem.app.encode()).hexdigest()[:8], 16)
    rng = random.Random(seed)
    replica_set = "".join(rng.choice(_HASH_ALPHABET) for _ in range(10))
    return [f"{problem.app}-{replica_set}-{''.join(rng.choice(_HASH_ALPHABET) for _ in range(5))}" for _ in range(3)]


class DemoSource:
    name = "demo"
    coverage_key = "demo"

    def __init__(self) -> None:
        self.notes = FetchNotes()
        self._pods = {problem.app: _pods(problem) for problem in CATALOG}

    def plan(self, window: Window) -> list[Window]:
        return [window]

    def fetch(self, window: Window) -> Iterator[LogRecord]:
        self.notes = FetchNotes()
        minute = window.from_ns - window.from_ns % MINUTE_NS
        while minute < window.to_ns:
            for record in self._minute(minute):
                if window.contains(record.ts_ns):
                    yield record
            minute += MINUTE_NS

    def _minute(self, minute_ns: int) -> list[LogRecord]:
        records = []
        hour = minute_ns // (3600 * NS_PER_S)
        for index, problem in enumerate(CATALOG):
            if not problem.active(hour):
                continue
            rng = random.Random(f"{minute_ns}:{index}")
            expected = problem.per_hour * problem.spike(hour) / 60.0
            count = int(expected) + (1 if rng.random() < expected - int(expected) else 0)
            for _ in range(count):
                ts = minute_ns + rng.randrange(MINUTE_NS)
                labels = {
                    "namespace": problem.namespace,
                    "app": problem.app,
                    "container": problem.container,
                    "pod": rng.choice(self._pods[problem.app]),
                    "level": problem.level,
                }
                records.append(LogRecord(ts_ns=ts, labels=labels, line=problem.render(rng, ts)))
        records.sort(key=lambda r: r.ts_ns)
        return records
