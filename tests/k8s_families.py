"""The problem families of the adversarial Kubernetes corpus, one function per family.

Each function renders one log entry of one problem in the real format of the component that
writes it (the format is named in the decorator's ``fmt``). Everything that varies between two
entries of a family is a value that does not change what the problem is: ids (with and without
digits), pod names, addresses, paths, free text, list lengths, optional JSON/logfmt fields and
their order. Families that must stay apart sit next to each other and say so.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.k8s_values import VOCABULARY, Values, dt, iso_z, klog_header, millis


@dataclass(frozen=True)
class Ctx:
    ts: int                      # ns since the epoch
    namespace: str
    pod: str                     # the pod label of the entry ("" for node services)
    node: str
    subjects: tuple[str, ...]    # pods a node/control-plane component talks about
    thread: int                  # the writer's pid / thread id, stable per pod


@dataclass(frozen=True)
class Family:
    id: str
    namespace: str
    app: str
    owner: str                   # deployment | statefulset | daemonset | cronjob | static | node
    weight: float
    fmt: str
    render: Callable[[Values, Ctx], str]
    twin: str | None = None      # same text as another family, told apart only by labels
    digitless: bool | None = None  # pod names of the owner carry no digit
    subject_app: str | None = None
    subject_digitless: bool | None = None
    multiline: bool = False
    container: str = field(default="")


FAMILIES: list[Family] = []


def family(id, namespace, app, owner, weight, fmt, **kw):
    def wrap(fn):
        FAMILIES.append(Family(id, namespace, app, owner, weight, fmt, fn, **kw))
        return fn
    return wrap


def _q(text: str) -> str:
    """A klog/logfmt quoted value: Go's %q of the text."""
    return json.dumps(text)


def _compact(obj: dict) -> str:
    return json.dumps(obj, separators=(",", ":"))


# ----------------------------------------------------------------- kubelet, control plane (klog)

@family("kubelet-probe-refused", "kube-system", "kubelet", "node", 6, "klog structured",
        subject_app="cart")
def kubelet_probe(v: Values, c: Ctx) -> str:
    ip, port = v.ip(), v.choice([8080, 8081, 9000, 3000])
    path = v.choice(["healthz", "readyz", "health/ready", "actuator/health/readiness", "api/ping"])
    output = f'Get "http://{ip}:{port}/{path}": dial tcp {ip}:{port}: connect: connection refused'
    return (klog_header("I", c.ts, c.thread, "prober.go:107") + '"Probe failed" probeType='
            f'{_q(v.choice(["Readiness", "Liveness", "Startup"]))} pod={_q("shop/" + v.choice(c.subjects))} '
            f'podUID={_q(v.uuid())} containerName="cart" probeResult="failure" output={_q(output)}')


@family("kubelet-crashloop", "kube-system", "kubelet", "node", 5, "klog structured",
        subject_app="checkout")
def kubelet_crashloop(v: Values, c: Ctx) -> str:
    pod, uid = v.choice(c.subjects), v.uuid()
    back = v.choice(["10s", "20s", "40s", "1m20s", "2m40s", "5m0s"])
    err = (f'failed to "StartContainer" for "checkout" with CrashLoopBackOff: "back-off {back} restarting failed '
           f'container=checkout pod={pod}_shop({uid})"')
    return (klog_header("E", c.ts, c.thread, "pod_workers.go:1301") + f'"Error syncing pod, skipping" err={_q(err)} '
            f'pod={_q("shop/" + pod)} podUID={_q(uid)}')


# The measured case: one OOM problem across pods whose generated names carry no digit.
@family("kubelet-oomkilled-search", "kube-system", "kubelet", "node", 5, "klog event recorder",
        subject_app="search", subject_digitless=True)
def kubelet_oom(v: Values, c: Ctx) -> str:
    message = (f"Memory cgroup out of memory: Killed process {v.int(100, 99999)} (java) total-vm:{v.int(4, 9) * 1048576}kB, "
               f"anon-rss:{v.int(1900000, 2100000)}kB, file-rss:{v.int(0, 30000)}kB, shmem-rss:0kB, UID:1000 "
               f"pgtables:{v.int(4000, 6000)}kB oom_score_adj:{v.choice([984, 985, 999, -997])}")
    return (klog_header("I", c.ts, c.thread, "event.go:389") + f'"Event occurred" object={_q("search/" + v.choice(c.subjects))} '
            f'fieldPath="" kind="Pod" apiVersion="v1" type="Warning" reason="OOMKilling" message={_q(message)}')


@family("apiserver-handler-timeout", "kube-system", "kube-apiserver", "static", 4, "klog structured")
def apiserver_timeout(v: Values, c: Ctx) -> str:
    ns = v.choice(["shop", "payments", "search", "monitoring", "kube-system", "argocd"])
    resource = v.choice(["pods", "configmaps", "secrets", "events", "endpoints"])
    query = v.choice([f"?labelSelector=app%3D{v.choice(VOCABULARY)}&limit=500", "?limit=500&resourceVersion=0",
                      f"?fieldSelector=spec.nodeName%3D{c.node}", f"?watch=true&resourceVersion={v.int(10**6, 10**8)}", ""])
    err = f'timeout or abort while handling: method=GET URI="/api/v1/namespaces/{ns}/{resource}{query}" audit-ID="{v.uuid()}"'
    return klog_header("E", c.ts, 1, "timeout.go:140") + f'"Unhandled Error" err={_q(err)} logger="UnhandledError"'


@family("controller-manager-quota", "kube-system", "kube-controller-manager", "static", 3, "klog structured",
        subject_app="reports")
def quota(v: Values, c: Ctx) -> str:
    pod = v.choice(c.subjects)
    rs = pod.rsplit("-", 1)[0]
    used = v.int(30, 40) * 128
    err = (f'sync "analytics/{rs}" failed with pods "{pod}" is forbidden: exceeded quota: compute-resources, '
           f"requested: limits.memory={v.choice([256, 512, 1024])}Mi, used: limits.memory={used}Mi, limited: limits.memory=4Gi")
    return klog_header("E", c.ts, 1, "replica_set.go:560") + f'"Unhandled Error" err={_q(err)} logger="UnhandledError"'


# kube-scheduler's FitError: a run of "<n> <reason>" clauses whose number and order vary with the
# state of the nodes, one of them a braced taint.
@family("scheduler-no-fit", "kube-system", "kube-scheduler", "static", 3, "klog structured", subject_app="reports")
def scheduler(v: Values, c: Ctx) -> str:
    reasons = ["node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }", "Insufficient memory",
               "Insufficient cpu", "node(s) didn't match Pod's node affinity/selector",
               "node(s) had volume node affinity conflict"]
    chosen = v.r.sample(reasons, v.int(1, 4))
    counts = [v.int(1, 3) for _ in chosen]
    total = sum(counts)
    clauses = ", ".join(f"{n} {r}" for n, r in sorted(zip(counts, chosen)))
    err = (f"0/{total} nodes are available: {clauses}. preemption: 0/{total} nodes are available: "
           f"{total} Preemption is not helpful for scheduling.")
    return (klog_header("E", c.ts, 1, "schedule_one.go:1055") + '"Unable to schedule pod; no fit; waiting" '
            f'pod={_q("analytics/" + v.choice(c.subjects))} err={_q(err)}')


# CronJob runs: the job name ends in the scheduled time in minutes since the epoch (8 digits).
@family("controller-manager-backoff-limit", "kube-system", "kube-controller-manager", "static", 2, "klog event recorder")
def backoff(v: Values, c: Ctx) -> str:
    job = f"{v.choice(['db-backup', 'report-export', 'search-reindex'])}-{(c.ts // 60_000_000_000) // 60 * 60}"
    return (klog_header("I", c.ts, 1, "event.go:389") + f'"Event occurred" object={_q("ops/" + job)} fieldPath="" kind="Job" '
            'apiVersion="batch/v1" type="Warning" reason="BackoffLimitExceeded" message="Job has reached the specified backoff limit"')


@family("cronjob-pg-dump-auth", "ops", "db-backup", "cronjob", 2, "pg_dump stderr")
def pg_dump(v: Values, c: Ctx) -> str:
    host = f"postgres-{v.int(0, 2)}.postgres.shop.svc.cluster.local"
    return (f'pg_dump: error: connection to server at "{host}" ({v.ip()}), port 5432 failed: '
            'FATAL:  password authentication failed for user "backup"')


@family("cert-manager-webhook", "cert-manager", "cert-manager", "deployment", 2, "klog structured (logr)")
def cert_manager(v: Values, c: Ctx) -> str:
    err = ('Internal error occurred: failed calling webhook "webhook.cert-manager.io": failed to call webhook: Post '
           '"https://cert-manager-webhook.cert-manager.svc:443/validate?timeout=30s": context deadline exceeded')
    key = f"{v.choice(['shop', 'payments', 'search', 'web'])}/{v.choice([v.slug(1, 2), 'api-' + v.letters(4)])}-tls"
    return (klog_header("E", c.ts, 1, "controller.go:157") + f'"re-queuing item due to error processing" err={_q(err)} '
            f'logger="cert-manager.controller" key={_q(key)}')


# ----------------------------------------------------------------- DNS, proxies

@family("coredns-upstream-timeout", "kube-system", "coredns", "deployment", 5, "CoreDNS errors plugin")
def coredns(v: Values, c: Ctx) -> str:
    name = v.choice([v.external_host(), v.service_host(v.choice(["shop", "payments"])) + "." + v.choice(["ec2.internal", "eu-west-1.compute.internal"])])
    return (f"[ERROR] plugin/errors: 2 {name}. {v.choice(['A', 'AAAA'])}: read udp {v.ip()}:{v.port()}->"
            f"{v.ip('10.0')}:53: i/o timeout")


def _nginx(v: Values, c: Ctx, what: str) -> str:
    d = dt(c.ts)
    host = v.choice(["shop.example.com", "api.example.com", "m.example.com"])
    path = v.url_path()
    worker = v.int(20, 40)
    tail = f', referrer: "https://{host}/{v.slug(1, 3)}"' if v.r.random() < 0.4 else ""
    return (f'{d:%Y/%m/%d %H:%M:%S} [error] {worker}#{worker}: *{v.int(1, 9_999_999)} {what}, client: {v.ip("10.0")}, '
            f'server: {host}, request: "{v.choice(["GET", "POST", "PUT"])} {path} HTTP/1.1", upstream: '
            f'"http://{v.ip()}:8080{path}", host: "{host}"{tail}')


@family("nginx-upstream-timeout", "ingress-nginx", "ingress-nginx", "deployment", 7, "nginx error log")
def nginx_timeout(v, c):
    return _nginx(v, c, "upstream timed out (110: Connection timed out) while reading response header from upstream")


# The pair one meaningful word apart: refused / reset by peer.
@family("nginx-connect-refused", "ingress-nginx", "ingress-nginx", "deployment", 4, "nginx error log")
def nginx_refused(v, c):
    return _nginx(v, c, "connect() failed (111: Connection refused) while connecting to upstream")


@family("nginx-reset-by-peer", "ingress-nginx", "ingress-nginx", "deployment", 3, "nginx error log")
def nginx_reset(v, c):
    return _nginx(v, c, "recv() failed (104: Connection reset by peer) while reading response header from upstream")


def _envoy(v: Values, c: Ctx, code: int, flags: str, details: str, failure: str) -> str:
    upstream = v.service_host("shop")
    return (f'[{iso_z(c.ts)}] "{v.choice(["GET", "POST"])} {v.url_path()} HTTP/1.1" {code} {flags} {details} - "{failure}" '
            f'{v.int(0, 900)} {v.int(19, 120)} {v.int(1, 30000)} - "{v.ip("10.0")}" "{v.choice(["Go-http-client/1.1", "okhttp/4.12.0", "Mozilla/5.0"])}" '
            f'"{v.uuid()}" "{upstream}:8080" "{v.ip()}:8080" outbound|8080||{upstream} - {v.ip("10.96")}:8080 '
            f'{v.ip()}:{v.port()} - default')


# Istio's default text access log; one app, two response flags: two problems.
@family("envoy-503-UF", "shop", "checkout", "deployment", 4, "Istio/Envoy access log", container="istio-proxy")
def envoy_uf(v, c):
    return _envoy(v, c, 503, "UF", "upstream_reset_before_response_started{remote_connection_failure}",
                  "delayed_connect_error:_Connection_refused")


@family("envoy-504-UT", "shop", "checkout", "deployment", 3, "Istio/Envoy access log", container="istio-proxy")
def envoy_ut(v, c):
    return _envoy(v, c, 504, "UT", "response_timeout", "-")


@family("haproxy-server-down", "edge", "haproxy", "deployment", 1, "HAProxy health check")
def haproxy(v: Values, c: Ctx) -> str:
    active = v.int(0, 3)
    return (f'[WARNING]  ({v.int(7, 9)}) : Server be_{v.choice(["api", "web", "grpc"])}/{v.choice(["api", "web", "srv"])}{v.int(1, 6)} '
            f'is DOWN, reason: Layer4 connection problem, info: "Connection refused", check duration: {v.int(0, 3)}ms. '
            f"{active} active and 0 backup servers left. {v.int(0, 40)} sessions active, 0 requeued, 0 remaining in queue.")


# ----------------------------------------------------------------- etcd, containerd, Prometheus, Argo CD

@family("etcd-apply-too-long", "kube-system", "etcd", "static", 5, "etcd zap JSON")
def etcd_slow(v: Values, c: Ctx) -> str:
    entry = {"level": "warn", "ts": iso_z(c.ts, 6).replace("Z", "+0000"), "caller": "etcdserver/util.go:170",
             "msg": "apply request took too long", "took": v.duration(), "expected-duration": "100ms"}
    if v.r.random() < 0.7:
        entry["prefix"] = v.choice(["read-only range ", "", "read-only txn "])
    pod = f"{v.choice(['cart', 'search', 'payments'])}-{v.kube_hash()}-{v.kube_suffix()}"
    entry["request"] = v.choice([f'key:"/registry/pods/shop/{pod}" ', f'key:"/registry/leases/kube-node-lease/{c.node}" ',
                                 'key:"/registry/events/" range_end:"/registry/events0" count_only:true '])
    if v.r.random() < 0.8:
        entry["response"] = f"range_response_count:{v.int(0, 3)} size:{v.int(5, 9000)}"
    return _compact(entry)


@family("etcd-peer-unhealthy", "kube-system", "etcd", "static", 2, "etcd zap JSON")
def etcd_peer(v: Values, c: Ctx) -> str:
    return _compact({"level": "warn", "ts": iso_z(c.ts, 6).replace("Z", "+0000"), "caller": "rafthttp/probing_status.go:68",
                     "msg": "prober detected unhealthy status", "round-tripper-name": v.choice(["ROUND_TRIPPER_RAFT_MESSAGE", "ROUND_TRIPPER_SNAPSHOT"]),
                     "remote-peer-id": v.hex(16), "rtt": v.choice(["0s", f"{v.int(1, 9)}.{v.int(100, 999)}ms"]),
                     "error": f"dial tcp 10.0.{v.int(0, 3)}.{v.int(2, 250)}:2380: connect: connection refused"})


@family("containerd-pull-not-found", "kube-system", "containerd", "node", 3, "containerd logrus logfmt")
def containerd(v: Values, c: Ctx) -> str:
    repo = v.choice(["registry.example.com/shop/cart", "ghcr.io/acme/checkout", "docker.io/library/redis",
                     f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/{v.choice(VOCABULARY)}"])
    tag = v.choice(["latest", f"v1.{v.int(0, 30)}.{v.int(0, 9)}", f"main-{v.hex(7)}", v.letters(7), f"sha-{v.hex(12)}"])
    ref = f"{repo}:{tag}"
    ts = iso_z(c.ts, 9)
    error = (f'rpc error: code = NotFound desc = failed to pull and unpack image "{ref}": failed to resolve reference '
             f'"{ref}": {ref}: not found')
    return f'time="{ts}" level=error msg={_q(f"PullImage {_q(ref)} failed")} error={_q(error)}'


@family("prometheus-append-failed", "monitoring", "prometheus", "statefulset", 3, "Prometheus go-kit logfmt")
def prometheus(v: Values, c: Ctx) -> str:
    target = f"http://{v.ip()}:{v.choice([8080, 9102, 9100, 9113])}/{v.choice(['metrics', 'actuator/prometheus', 'stats/prometheus'])}"
    got = v.choice(["INVALID", "EOF", "#", v.letters(5)])
    return (f"ts={iso_z(c.ts)} caller=scrape.go:1351 level=warn component=\"scrape manager\" "
            f"scrape_pool={v.choice(['kubernetes-pods', 'serviceMonitor/shop/cart/0', 'kubernetes-service-endpoints'])} "
            f'target={target} msg="Append failed" err={_q(f"expected label value, got {_q(got)}")}')


@family("argocd-partial-sync", "argocd", "argocd-application-controller", "statefulset", 2, "Argo CD logrus logfmt")
def argocd(v: Values, c: Ctx) -> str:
    app = v.choice(["shop-cart", "shop-checkout", "payments", "search-api", f"preview-{v.letters(6)}"])
    kinds = v.r.sample(["Deployment.apps", "Service", "ConfigMap", "Ingress.networking.k8s.io"], v.int(1, 3))
    reasons = ", ".join(f'{k} "{app}" is invalid' for k in kinds)
    msg = f"Partial sync operation to {v.hex(40, 0.0)} failed: one or more objects failed to apply, reason: {reasons}"
    fields = [f'time="{iso_z(c.ts, 0)}"', "level=info", f"msg={_q(msg)}", f"application=argocd/{app}"]
    if v.r.random() < 0.5:
        fields.append(f"dest-namespace={v.choice(['shop', 'payments', 'search'])}")
    if v.r.random() < 0.5:
        fields.append('dest-server="https://kubernetes.default.svc"')
    return " ".join(fields)
