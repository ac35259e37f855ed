"""Problem families of data stores and application runtimes (see tests/k8s_families.py)."""

from __future__ import annotations

import json

from tests.k8s_families import Ctx, _compact, _q, family
from tests.k8s_values import VOCABULARY, Values, dt, iso_z, millis

# ----------------------------------------------------------------- PostgreSQL, MySQL, Redis


def _pg(c: Ctx, pid: int, level: str, text: str) -> str:
    d = dt(c.ts)
    return f"{d:%Y-%m-%d %H:%M:%S}.{millis(c.ts)} UTC [{pid}] {level}:  {text}"


# PostgreSQL's stderr log: the ERROR line, then DETAIL/STATEMENT lines of the same backend pid
# (a log shipper with a multiline rule joins them into one entry).
@family("postgres-duplicate-key", "shop", "postgres", "statefulset", 5, "PostgreSQL stderr", multiline=True)
def pg_dup(v: Values, c: Ctx) -> str:
    pid = v.int(100, 65000)
    key = v.choice([str(v.int(1, 10**7)), v.order_id(), v.uuid(), v.letters(8)])
    lines = [_pg(c, pid, "ERROR", 'duplicate key value violates unique constraint "orders_pkey"'),
             _pg(c, pid, "DETAIL", f"Key (id)=({key}) already exists.")]
    if v.r.random() < 0.6:
        lines.append(_pg(c, pid, "STATEMENT", "INSERT INTO orders (id, customer_id, total_cents) VALUES ($1, $2, $3)"))
    return "\n".join(lines)


@family("postgres-deadlock", "shop", "postgres", "statefulset", 2, "PostgreSQL stderr", multiline=True)
def pg_deadlock(v: Values, c: Ctx) -> str:
    pid, other = v.int(100, 65000), v.int(100, 65000)
    tx1, tx2 = v.int(10**5, 10**8), v.int(10**5, 10**8)
    return "\n".join([
        _pg(c, pid, "ERROR", "deadlock detected"),
        _pg(c, pid, "DETAIL", f"Process {pid} waits for ShareLock on transaction {tx1}; blocked by process {other}.\n"
                              f"\tProcess {other} waits for ShareLock on transaction {tx2}; blocked by process {pid}."),
        _pg(c, pid, "HINT", "See server log for query details."),
        _pg(c, pid, "CONTEXT", f'while updating tuple ({v.int(0, 9999)},{v.int(1, 80)}) in relation "inventory"'),
    ])


@family("mysql-aborted-connection", "shop", "mysql", "statefulset", 3, "MySQL 8 error log")
def mysql(v: Values, c: Ctx) -> str:
    conn = v.int(8, 900000)
    reason = "Got timeout reading communication packets"
    return (f"{iso_z(c.ts, 6)} {conn} [Note] [MY-010914] [Server] Aborted connection {conn} to db: "
            f"'{v.choice(['shop', 'catalog', 'legacy_orders'])}' user: '{v.choice(['app', 'reporting', 'svc_' + v.letters(4)])}' "
            f"host: '{v.ip()}' ({reason}).")


def _redis(c: Ctx, role: str, text: str) -> str:
    d = dt(c.ts)
    return f"1:{role} {d:%d %b %Y %H:%M:%S}.{millis(c.ts)} # {text}"


# A replica's SYNC failure: two causes, one word apart, in the same pods.
@family("redis-sync-refused", "shop", "redis", "statefulset", 3, "Redis server log")
def redis_refused(v, c):
    return _redis(c, "S", "Error condition on socket for SYNC: Connection refused")


@family("redis-sync-reset", "shop", "redis", "statefulset", 2, "Redis server log")
def redis_reset(v, c):
    return _redis(c, "S", "Error condition on socket for SYNC: Connection reset by peer")


# ----------------------------------------------------------------- Kafka, Elasticsearch, RabbitMQ

def _log4j(c: Ctx, level: str) -> str:
    d = dt(c.ts)
    return f"[{d:%Y-%m-%d %H:%M:%S},{millis(c.ts)}] {level} "


@family("kafka-fetcher-not-leader", "data", "kafka", "statefulset", 4, "Kafka log4j", multiline=True)
def kafka_fetcher(v: Values, c: Ctx) -> str:
    topic = v.choice(["orders", "payments.events", "search-clicks", f"cdc.shop.{v.choice(VOCABULARY)}"])
    return (_log4j(c, "ERROR") + f"[ReplicaFetcher replicaId={v.int(0, 5)}, leaderId={v.int(0, 5)}, fetcherId={v.int(0, 3)}] "
            f"Error for partition {topic}-{v.int(0, 47)} at offset {v.int(0, 10**9)} (kafka.server.ReplicaFetcherThread)\n"
            "org.apache.kafka.common.errors.NotLeaderOrFollowerException: "
            "The server is not the leader for that topic-partition.")


@family("kafka-offset-commit-failed", "shop", "orders-consumer", "deployment", 3, "Kafka client log4j")
def kafka_commit(v: Values, c: Ctx) -> str:
    return (_log4j(c, "WARN") + f"[Consumer clientId=consumer-orders-{v.int(1, 12)}, groupId=orders] Offset commit failed on "
            f"partition orders-{v.int(0, 23)} at offset {v.int(0, 10**8)}: The coordinator is not aware of this member. "
            "(org.apache.kafka.clients.consumer.internals.ConsumerCoordinator)")


@family("elasticsearch-high-watermark", "logging", "elasticsearch", "statefulset", 2, "Elasticsearch ECS JSON")
def es_watermark(v: Values, c: Ctx) -> str:
    node = c.pod
    free = f"{v.int(1, 20)}.{v.int(0, 9)}gb"
    message = (f"high disk watermark [90%] exceeded on [{v.base62(22)}][{node}][/usr/share/elasticsearch/data] "
               f"free: {free}[{v.int(5, 9)}.{v.int(0, 9)}%], shards will be relocated away from this node; currently "
               f"relocating away shards totalling [{v.int(0, 10**10)}] bytes; the node is expected to continue to exceed "
               "the high disk watermark when these relocations are complete")
    entry = {"@timestamp": iso_z(c.ts), "log.level": "WARN", "message": message, "ecs.version": "1.2.0",
             "service.name": "ES_ECS", "event.dataset": "elasticsearch.server",
             "process.thread.name": f"elasticsearch[{node}][management][T#{v.int(1, 5)}]",
             "log.logger": "org.elasticsearch.cluster.routing.allocation.DiskThresholdMonitor",
             "elasticsearch.cluster.uuid": v.base62(22), "elasticsearch.node.id": v.base62(22),
             "elasticsearch.node.name": node, "elasticsearch.cluster.name": "logs"}
    return json.dumps(entry)  # ES writes ", " and ": " separators


@family("rabbitmq-client-closed", "data", "rabbitmq", "statefulset", 3, "RabbitMQ 3.9+ log", multiline=True)
def rabbitmq(v: Values, c: Ctx) -> str:
    d = dt(c.ts)
    pid = f"<0.{v.int(200, 99999)}.{v.int(0, 9)}>"
    user = v.choice(["orders-svc", "notifier", "billing", f"app-{v.letters(5)}"])
    return (f"{d:%Y-%m-%d %H:%M:%S}.{(c.ts // 1000) % 1_000_000:06d}+00:00 [warning] {pid} closing AMQP connection {pid} "
            f"({v.ip()}:{v.port()} -> {v.ip()}:5672, vhost: '{v.choice(['/', 'prod', 'shop'])}', user: '{user}'):\n"
            "client unexpectedly closed TCP connection")


# ----------------------------------------------------------------- JVM: Spring Boot / logback

def _spring(v: Values, c: Ctx, exc: str, frames: list[str]) -> str:
    head = (f"{iso_z(c.ts)} ERROR 1 --- [orders-api] [nio-8080-exec-{v.int(1, 200)}] o.a.c.c.C.[.[.[/].[dispatcherServlet]    : "
            f"Servlet.service() for servlet [dispatcherServlet] in context with path [] threw exception "
            f"[Request processing failed: {exc}: could not execute statement] with root cause\n\n{exc}: could not execute statement")
    shown = frames[: v.int(4, len(frames))]
    return head + "".join(f"\n\tat {f}" for f in shown) + f"\n\t... {v.int(40, 120)} common frames omitted"


_APP_FRAMES = ["com.example.orders.OrderRepository.save(OrderRepository.java:41)",
               "com.example.orders.OrderService.place(OrderService.java:88)",
               "com.example.orders.OrderController.create(OrderController.java:57)",
               "java.base/jdk.internal.reflect.DirectMethodHandleAccessor.invoke(DirectMethodHandleAccessor.java:103)"]


# Two exception types with the same message, thrown from the same code: two problems.
_SPRING_CAUSES = {
    "spring-data-integrity": (3, "org.springframework.dao.DataIntegrityViolationException", [
        "org.springframework.orm.jpa.vendor.HibernateJpaDialect.convertHibernateAccessException(HibernateJpaDialect.java:290)",
        "org.springframework.orm.jpa.vendor.HibernateJpaDialect.translateExceptionIfPossible(HibernateJpaDialect.java:241)"]),
    "spring-constraint-violation": (2, "org.hibernate.exception.ConstraintViolationException", [
        "org.hibernate.exception.internal.SQLStateConversionDelegate.convert(SQLStateConversionDelegate.java:95)",
        "org.hibernate.exception.internal.StandardSQLExceptionConverter.convert(StandardSQLExceptionConverter.java:56)"]),
}
for _id, (_weight, _exc, _frames) in _SPRING_CAUSES.items():
    family(_id, "shop", "orders-api", "deployment", _weight, "Spring Boot 3 console + Java trace", multiline=True)(
        lambda v, c, exc=_exc, frames=_frames + _APP_FRAMES: _spring(v, c, exc, frames))


# ----------------------------------------------------------------- Go: zap, logrus, panics

@family("zap-publish-refused", "payments", "payments-api", "deployment", 5, "Go zap JSON")
def zap_publish(v: Values, c: Ctx) -> str:
    head = {"level": "error", "ts": round(c.ts / 1e9, 6), "caller": "events/publisher.go:142",
            "msg": "failed to publish event",
            "error": f"kafka: client has run out of available brokers to talk to: dial tcp {v.ip()}:9092: connect: connection refused"}
    extra = {"topic": v.choice(["payments.events", "payments.refunds"]), "key": v.order_id(), "attempt": v.int(1, 5),
             "trace_id": v.hex(32), "customer": v.email(), "partition": v.int(0, 11)}
    fields = v.r.sample(list(extra), v.int(1, len(extra)))  # call sites add different fields in different orders
    entry = {**head, **{k: extra[k] for k in fields}}
    if v.r.random() < 0.3:
        entry["stacktrace"] = ("github.com/acme/payments/events.(*Publisher).Publish\n\t/app/events/publisher.go:142\n"
                               "github.com/acme/payments/api.(*Server).charge\n\t/app/api/charge.go:77")
    return _compact(entry)


def _no_msg(v: Values, code: str) -> str:
    # A payment worker that logs a bare event record: no msg/message key; the error code names the problem.
    fields = {"error_code": code, "amount_cents": v.int(100, 250000), "currency": v.choice(["EUR", "USD", "GBP", "CHF"]),
              "customer": v.choice([v.order_id(), v.email()]), "retry": v.choice([True, False]),
              "card_brand": v.choice(["visa", "mastercard", "amex"]), "request_id": v.uuid()}
    keys = ["error_code"] + v.r.sample([k for k in fields if k != "error_code"], v.int(2, len(fields) - 1))
    v.r.shuffle(keys)
    return _compact({"level": "error", **{k: fields[k] for k in keys}})


@family("json-no-msg-card-declined", "payments", "payments-worker", "deployment", 5, "JSON without a message key")
def card_declined(v, c):
    return _no_msg(v, "CARD_DECLINED")


@family("json-no-msg-insufficient-funds", "payments", "payments-worker", "deployment", 2, "JSON without a message key")
def insufficient(v, c):
    return _no_msg(v, "INSUFFICIENT_FUNDS")


# The measured case: one problem whose bracketed list has 1-6 items.
@family("logrus-reserve-items", "shop", "inventory", "deployment", 6, "Go logrus logfmt")
def reserve(v: Values, c: Ctx) -> str:
    items = ", ".join(f"sku-{v.int(1000, 9999)}" for _ in range(v.int(1, 6)))
    fields = [f'time="{iso_z(c.ts, 0)}"', "level=error",
              f"msg={_q(f'failed to reserve items [{items}] for order {v.int(10000, 999999)}')}"]
    for key, value in v.r.sample([("warehouse", v.choice(["fra-1", "ams-2", "dub-1"])), ("request_id", v.hex(16)),
                                  ("user", v.email())], v.int(0, 3)):
        fields.append(f"{key}={value}")
    return " ".join(fields)


@family("go-panic-index", "edge", "gateway", "deployment", 2, "Go panic + goroutine trace", multiline=True)
def go_panic(v: Values, c: Ctx) -> str:
    length = v.int(0, 8)
    lines = [f"panic: runtime error: index out of range [{length + v.int(0, 4)}] with length {length}", "",
             f"goroutine {v.int(1, 90000)} [running]:",
             f"github.com/acme/gateway/route.(*Table).Match(0xc000{v.hex(6, 0.0)}, {{0xc000{v.hex(6, 0.0)}, 0x{v.hex(2, 0.0)}}})",
             "\t/app/route/table.go:88 +0x1d5",
             f"github.com/acme/gateway/server.(*Server).ServeHTTP(0xc000{v.hex(6, 0.0)}, {{0x1a2b3c0, 0xc000{v.hex(6, 0.0)}}}, 0xc000{v.hex(6, 0.0)})",
             "\t/app/server/server.go:41 +0x7f", "net/http.serverHandler.ServeHTTP({0xc000150000?}, {0x1a2b3c0?, 0xc0002a4000?}, 0x6?)",
             "\t/usr/local/go/src/net/http/server.go:3210 +0x8e"]
    return "\n".join(lines)


# ----------------------------------------------------------------- Python: logging, Django, Celery

def _pylog(c: Ctx, level: str, logger: str) -> str:
    d = dt(c.ts)
    return f"{d:%Y-%m-%d %H:%M:%S},{millis(c.ts)} {level} [{logger}] "


# The measured case: a quoted run of 2-9 free words inside a plain-text message.
@family("search-statement-timeout", "search", "search-api", "deployment", 8, "Python logging", digitless=True)
def statement_timeout(v: Values, c: Ctx) -> str:
    return _pylog(c, "ERROR", "search.api.query") + (f'rejected query "{v.words(2, 9)}" from user {v.int(1, 2_000_000)}: '
                                                     "statement timeout")


@family("django-keyerror", "web", "storefront", "deployment", 3, "Django logging + Python traceback", multiline=True)
def django(v: Values, c: Ctx) -> str:
    d = dt(c.ts)
    path = v.choice([f"/account/{v.slug(1, 2)}/addresses/", f"/checkout/{v.uuid()}/shipping/", f"/u/{v.letters(v.int(4, 12))}/"])
    return "\n".join([
        f"ERROR {d:%Y-%m-%d %H:%M:%S},{millis(c.ts)} log {v.int(7, 40)} {v.int(10**14, 10**15)} Internal Server Error: {path}",
        "Traceback (most recent call last):",
        '  File "/usr/local/lib/python3.12/site-packages/django/core/handlers/exception.py", line 55, in inner',
        "    response = get_response(request)",
        '  File "/app/storefront/views/checkout.py", line 131, in shipping',
        '    address = request.session["shipping_address"]',
        "KeyError: 'shipping_address'"])


@family("celery-task-operational-error", "shop", "celery-worker", "deployment", 3, "Celery worker log + traceback", multiline=True)
def celery(v: Values, c: Ctx) -> str:
    d = dt(c.ts)
    host = f"postgres-{v.int(0, 2)}.postgres.shop.svc.cluster.local"
    err = f'connection to server at "{host}" ({v.ip()}), port 5432 failed: Connection refused'
    task = v.choice(["shop.tasks.sync_inventory", "shop.tasks.send_invoice", "shop.tasks.recalc_prices"])
    return "\n".join([
        f"[{d:%Y-%m-%d %H:%M:%S},{millis(c.ts)}: ERROR/ForkPoolWorker-{v.int(1, 16)}] Task {task}[{v.uuid()}] raised unexpected: "
        f"OperationalError('{err}')",
        "Traceback (most recent call last):",
        '  File "/usr/local/lib/python3.12/site-packages/celery/app/trace.py", line 453, in trace_task',
        "    R = retval = fun(*args, **kwargs)",
        '  File "/usr/local/lib/python3.12/site-packages/psycopg/connection.py", line 119, in connect',
        "    raise last_ex.with_traceback(None)",
        f"psycopg.OperationalError: {err}"])


# A validation error printed as a Python dict: a braced run of 1-4 fields with their messages.
@family("signup-validation-dict", "web", "accounts", "deployment", 2, "Python logging")
def signup(v: Values, c: Ctx) -> str:
    problems = {"email": "Enter a valid email address.", "phone": "This field is required.",
                "postcode": "Ensure this field has no more than 10 characters.", "password": "This password is too common."}
    chosen = v.r.sample(list(problems), v.int(1, 4))
    body = ", ".join(f"'{k}': ['{problems[k]}']" for k in chosen)
    return _pylog(c, "WARNING", "accounts.signup") + f"rejected signup from {v.email()}: {{{body}}}"


# The same words in two apps: each app's redis outage is its own problem (told apart by labels).
def _redis_py(v: Values, c: Ctx, namespace: str) -> str:
    return _pylog(c, "ERROR", "cache") + (f"redis.exceptions.ConnectionError: Error 111 connecting to "
                                          f"redis-master.{namespace}.svc.cluster.local:6379. Connection refused.")


@family("redis-py-refused-cart", "shop", "cart", "deployment", 4, "Python logging", twin="redis-py-refused")
def redis_py_cart(v, c):
    return _redis_py(v, c, "shop")


@family("redis-py-refused-recommendations", "shop", "recommendations", "deployment", 2, "Python logging",
        twin="redis-py-refused")
def redis_py_reco(v, c):
    return _redis_py(v, c, "shop")


# ----------------------------------------------------------------- Node.js: pino, winston; Rails

def _pino(v: Values, c: Ctx, err_type: str, code: str, message: str, stack_top: str) -> str:
    entry = {"level": 50, "time": c.ts // 1_000_000, "pid": c.thread, "hostname": c.pod}
    if v.r.random() < 0.7:
        entry["reqId"] = f"req-{v.base62(v.int(1, 6))}"
    if v.r.random() < 0.5:
        entry["req"] = {"method": v.choice(["GET", "POST"]), "url": v.url_path(), "remoteAddress": v.ip("10.0")}
    entry["err"] = {"type": err_type, "message": message, "stack": f"{err_type}: {message}\n    at {stack_top}", "code": code}
    entry["msg"] = message
    return _compact(entry)


# Node's two socket errors, one word apart, in one app.
@family("pino-econnrefused", "web", "web-bff", "deployment", 4, "Node pino JSON")
def pino_refused(v, c):
    addr = f"{v.ip('10.96')}:{v.choice([6379, 5432, 8080])}"
    return _pino(v, c, "Error", "ECONNREFUSED", f"connect ECONNREFUSED {addr}",
                 "TCPConnectWrap.afterConnect [as oncomplete] (node:net:1607:16)")


@family("pino-econnreset", "web", "web-bff", "deployment", 2, "Node pino JSON")
def pino_reset(v, c):
    return _pino(v, c, "Error", "ECONNRESET", "read ECONNRESET", "TCP.onStreamRead (node:internal/stream_base_commons:216:20)")


@family("winston-smtp-rejected", "web", "notifier", "deployment", 3, "Node winston JSON")
def winston(v: Values, c: Ctx) -> str:
    rcpt = v.email()
    entry = {"level": "error", "message": f"Failed to send e-mail to {rcpt}: 550 5.1.1 <{rcpt}>: Recipient address rejected: "
                                          "User unknown in virtual mailbox table",
             "service": "notifier", "timestamp": iso_z(c.ts)}
    if v.r.random() < 0.5:
        entry["template"] = v.choice(["order-confirmation", "password-reset", "weekly-digest"])
    if v.r.random() < 0.5:
        entry["messageId"] = f"<{v.hex(24)}@notifier.{c.namespace}>"
    keys = list(entry)
    v.r.shuffle(keys)  # winston's format.json() keeps insertion order, which differs per call site
    return json.dumps({k: entry[k] for k in keys})


@family("rails-record-not-found", "web", "storefront-rails", "deployment", 3, "Rails tagged logger")
def rails(v: Values, c: Ctx) -> str:
    d = dt(c.ts)
    model = "Order"
    ident = v.choice([str(v.int(1, 10**7)), v.order_id()])
    return (f"E, [{d:%Y-%m-%dT%H:%M:%S}.{(c.ts // 1000) % 1_000_000:06d} #{c.thread}] ERROR -- : [{v.uuid()}] "
            f"ActiveRecord::RecordNotFound (Couldn't find {model} with 'id'={ident}):")
