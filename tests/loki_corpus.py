"""A window of Kubernetes error lines with planted problems, for counting inside Loki (issue 18).

Background volume in four apps (logfmt, JSON with quotes and backslashes, nginx-style plain text,
multi-line Java traces) and planted problems whose counts must come out exact whether the window is
pulled or counted by Loki: a frequent one with entries on exact minute edges, a JSON one, a Python
traceback, a rare Go panic (too rare for any sample), a line with ``<html>`` text (Loki patterns
cannot hold ``<name>`` literally), and the same words in two apps.
"""

from __future__ import annotations

import random
import uuid

S = 10**9
MINUTE = 60 * S

STREAMS = {
    "checkout": [{"namespace": "prod", "app": "checkout", "pod": f"checkout-7d9f8b6c5-{p}"} for p in ("x2k4p", "q8r2m")],
    "payments": [{"namespace": "prod", "app": "payments", "pod": "payments-5c6d7-abc12"}],
    "gateway": [{"namespace": "prod", "app": "api-gateway", "pod": "api-gateway-66f-zz9k1"}],
    "inventory": [{"namespace": "staging", "app": "inventory", "pod": "inventory-59b-lmn78"}],
}

# marker (a string only this problem's lines hold) -> (stream, share of the window's entries or a fixed count)
PLANTED = {
    "certificate expired": ("checkout", 0.012),
    "ledger write failed": ("payments", 0.008),
    "StockReservationError": ("inventory", 0.004),
    "index out of range [5]": ("gateway", 17),
    "upstream returned <html>": ("gateway", 0.002),
    "connection reset by peer (checkout)": ("checkout", 0.003),
    "connection reset by peer (payments)": ("payments", 0.003),
    # three lines of a template learnt in checkout, in an app whose sample will not hold them
    "connection reset by peer (inventory)": ("inventory", 3),
}


def _background(app: str, rng: random.Random) -> str:
    n = rng.randrange(10**6)
    if app == "checkout":
        return (f'level=error msg="payment declined" order=ord-{n} amount={rng.randrange(1, 999)}.{rng.randrange(100):02d} '
                f'user=u{rng.randrange(10**4)}')
    if app == "payments":
        return ('{"level":"error","msg":"card rejected","code":"' + str(rng.randrange(100, 999)) +
                '","path":"C:\\\\pay\\\\' + str(n) + '","detail":"issuer said \\"no\\""}')
    if app == "gateway":
        return (f"upstream timed out (110: Connection timed out) while reading response header from upstream, "
                f'client: 10.0.{rng.randrange(256)}.{rng.randrange(256)}, server: api, request: "GET /v1/items/{n} HTTP/1.1"')
    return (f"java.lang.IllegalStateException: stock {n} below zero\n\tat com.shop.Stock.take(Stock.java:42)\n"
            "\tat com.shop.Orders.place(Orders.java:118)")


def _planted(marker: str, rng: random.Random) -> str:
    n = rng.randrange(10**6)
    if marker == "certificate expired":
        return f"level=error msg=\"payment gateway certificate expired\" serial={rng.getrandbits(64):016x} retry=false"
    if marker == "ledger write failed":
        return ('{"level":"fatal","msg":"ledger write failed","tx":"' + str(uuid.UUID(int=rng.getrandbits(128))) +
                '","err":"disk \\"/data\\" full","path":"D:\\\\ledger\\\\' + str(n) + '"}')
    if marker == "StockReservationError":
        return ("Traceback (most recent call last):\n  File \"/app/reserve.py\", line 88, in reserve\n"
                f"    take(item_id={n})\nStockReservationError: item {n} has no stock left")
    if marker == "index out of range [5]":
        return ("panic: runtime error: index out of range [5] with length 3\n\ngoroutine 1 [running]:\n"
                f"main.handler(0xc000{n:06x})\n\t/src/main.go:27 +0x1d")
    if marker == "upstream returned <html>":
        return f"upstream returned <html><body>502 Bad Gateway</body></html> for /v1/carts/{n}"
    return f"connection reset by peer while talking to redis-{rng.randrange(3)}:6379"


def corpus(t0_ns: int, total: int, seed: int = 18, minutes: int = 60):
    """``(rows, expected)``: (labels, ts_ns, line) rows over ``[t0, t0 + minutes)`` and each planted
    marker's exact number of entries. Some entries sit exactly on minute edges and share nanoseconds."""
    rng = random.Random(seed)
    span = minutes * MINUTE
    rows, expected = [], {}
    planted_total = 0
    for marker, (app, share) in PLANTED.items():
        count = share if isinstance(share, int) else int(total * share)
        expected[marker] = count
        planted_total += count
        app_streams = STREAMS[app]
        for i in range(count):
            # a tenth of the frequent problem's entries fall exactly on a minute edge
            if marker == "certificate expired" and i % 10 == 0:
                ts = t0_ns + (i // 10 % minutes) * MINUTE
            else:
                ts = t0_ns + rng.randrange(span)
            rows.append((app_streams[i % len(app_streams)], ts, _planted(marker, rng)))
    apps = list(STREAMS)
    weights = [0.4, 0.25, 0.25, 0.1]
    for _ in range(total - planted_total):
        app = rng.choices(apps, weights)[0]
        labels = rng.choice(STREAMS[app])
        rows.append((labels, t0_ns + rng.randrange(span), _background(app, rng)))
    return rows, expected


def late_rows(rng: random.Random, start: int, end: int, n: int) -> list[tuple[dict, int, str]]:
    """Entries written late into ``[start, end)`` (an agent re-sending what it buffered after a 429):
    two planted problems and background, for runs that must count them once the window was read."""
    rows = []
    for i in range(n):
        ts = start + rng.randrange(end - start)
        if i % 3 == 0:
            rows.append((STREAMS["checkout"][i % 2], ts,
                         f"level=error msg=\"payment gateway certificate expired\" serial={i:016x} retry=false"))
        elif i % 3 == 1:
            rows.append((STREAMS["payments"][0], ts, f"connection reset by peer while talking to redis-{i % 3}:6379"))
        else:
            rows.append((STREAMS["checkout"][0], ts, f'level=error msg="payment declined" order=ord-{i} amount=1.00 '
                                                     f'user=u{i}'))
    return rows


_KEYS = {"certificate expired": "certificate expired", "ledger write failed": "ledger write failed",
         "StockReservationError": "StockReservationError", "index out of range [5]": "index out of range",
         "upstream returned <html>": "upstream returned"}


def problem_of(text: str, app: str) -> str | None:
    """Which planted problem a cluster is, from its template (or a sample line) and its app."""
    if "connection reset by peer" in text:
        return f"connection reset by peer ({app})"
    return next((marker for marker, key in _KEYS.items() if key in text), None)


def held(entries, start: int, end: int) -> tuple[dict, dict, int]:
    """Per planted problem and per minute, the entries of ``[start, end)``; and how many in all."""
    problems: dict[str, int] = {}
    minutes: dict[int, int] = {}
    total = 0
    for labels, ts, line in entries:
        if start <= ts < end:
            total += 1
            problem = problem_of(line, labels.get("app", ""))
            if problem:
                problems[problem] = problems.get(problem, 0) + 1
            minutes[ts - ts % MINUTE] = minutes.get(ts - ts % MINUTE, 0) + 1
    return problems, minutes, total


def counted_in_state(state) -> tuple[dict, dict, int]:
    """What a state file counted over all its runs, in ``held``'s shape."""
    import json
    import sqlite3

    conn = sqlite3.connect(state)
    names = {fp: problem_of(template, json.loads(labels or "{}").get("app", "")) for fp, template, labels in
             conn.execute("SELECT fingerprint, template, labels FROM clusters")}
    problems: dict[str, int] = {}
    minutes: dict[int, int] = {}
    total = 0
    for fingerprint, bucket, count in conn.execute("SELECT fingerprint, bucket_ns, count FROM counts"):
        total += count
        if names.get(fingerprint):
            problems[names[fingerprint]] = problems.get(names[fingerprint], 0) + count
        minutes[bucket] = minutes.get(bucket, 0) + count
    conn.close()
    return problems, minutes, total
