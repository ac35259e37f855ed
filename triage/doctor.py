"""``triage doctor``: check every configured endpoint and file, one line per check."""

from __future__ import annotations

import os
import re
import smtplib
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from triage.config import Config


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


def run_checks(cfg: Config, environ: dict[str, str], *, send_test: bool = False) -> list[Check]:
    checks = [_state(cfg)]
    if "loki" in cfg.sources:
        checks.append(_loki(cfg))
    checks.extend(_llm(cfg, environ))
    if cfg.pushgateway.url:
        checks.append(_get("pushgateway", f"{cfg.pushgateway.url.rstrip('/')}/-/ready", "ready"))
    otlp = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if otlp:
        checks.append(_otlp(otlp, bool(environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))))
    if cfg.email.host:
        checks.append(_smtp(cfg))
    if cfg.slack.webhook_url:
        checks.append(_slack(cfg.slack.webhook_url, send_test))
    if cfg.webhook.url:
        checks.append(_webhook(cfg.webhook.url, send_test))
    return checks


def _state(cfg: Config) -> Check:
    from triage.errors import StateError
    from triage.state.db import StateStore

    path = cfg.state.path
    folder = path.parent if path.parent != Path("") else Path(".")
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not os.access(existing, os.W_OK):
        return Check("state", False, f"{folder} is not writable")
    if not path.exists():
        return Check("state", True, f"{path} does not exist yet; it will be created (folder writable)")
    if not os.access(path, os.W_OK):
        return Check("state", False, f"{path} is not writable")
    try:
        store = StateStore.snapshot(path)
        version = store.schema_version()
        runs = store.run_count()
        store.close()
    except StateError as err:
        return Check("state", False, str(err))
    return Check("state", True, f"{path} writable, schema {version}, {runs} run(s) recorded")


def _loki(cfg: Config) -> Check:
    loki = cfg.loki
    session = requests.Session()
    if loki.tenant:
        session.headers["X-Scope-OrgID"] = loki.tenant
    if loki.token:
        session.headers["Authorization"] = f"Bearer {loki.token}"
    elif loki.username is not None:
        session.auth = (loki.username, loki.password or "")
    verify = str(loki.ca_file) if loki.ca_file else True  # per request: REQUESTS_CA_BUNDLE beats session.verify
    display = re.sub(r"//[^/@]*@", "//***@", loki.url)
    try:
        ready = session.get(f"{loki.url}/ready", timeout=min(loki.timeout_s, 10), verify=verify)
        end = time.time_ns()
        query = session.get(f"{loki.url}/loki/api/v1/query_range", timeout=loki.timeout_s, verify=verify, params={
            "query": loki.query, "start": str(end - 300 * 10**9), "end": str(end), "limit": "1", "direction": "forward"})
    except requests.RequestException as err:
        return Check("loki", False, f"{display} unreachable: {type(err).__name__}")
    if query.status_code != 200:
        return Check("loki", False, f"{display}: the query was refused: HTTP {query.status_code} {query.text.strip()[:200]}")
    state = "ready" if ready.status_code == 200 else f"/ready answered HTTP {ready.status_code}"
    tenant = f", tenant {loki.tenant}" if loki.tenant else ""
    return Check("loki", True, f"{display} {state}, query allowed{tenant}")


def _llm(cfg: Config, environ: dict[str, str]) -> list[Check]:
    mode = cfg.llm.effective_mode()
    if mode == "off":
        return [Check("llm", True, "off (cards show raw templates)")]
    if mode == "remote":
        from triage.summarize.llama import LlamaClient, LlmError

        client = LlamaClient(cfg.llm.url, timeout_s=10, api_key=cfg.llm.api_key)
        try:
            client.health()
        except LlmError as err:
            return [Check("llm", False, str(err))]
        info = client.info()
        return [Check("llm", True, f"{cfg.llm.url} healthy, model {info.model or 'unknown'}, {info.slots} slot(s)")]
    from triage.summarize.models import DEFAULT_MODEL, MODELS, default_cache_dir

    spec = MODELS.get(cfg.llm.model or DEFAULT_MODEL)
    if spec is None:
        return [Check("llm", False, f"llm.model {cfg.llm.model!r} is not an embedded model")]
    cache = cfg.llm.cache_dir or default_cache_dir(environ)
    model = cache / spec.filename
    stamp = model.with_name(model.name + ".sha256")
    checks = []
    try:
        import xllamacpp  # noqa: F401

        checks.append(Check("llm", True, "embedded llama-server available (xllamacpp)"))
    except ImportError:
        checks.append(Check("llm", False, "embedded mode needs the xllamacpp package (pip install 'triage[llm]')"))
    if model.exists() and stamp.exists() and stamp.read_text().strip() == spec.sha256:
        checks.append(Check("model cache", True, f"{model} verified ({spec.size:,} bytes)"))
    else:
        checks.append(Check("model cache", True, f"{model} not downloaded yet: the first run fetches it "
                                                  f"({spec.size // 1_000_000} MB)"))
    return checks


def _get(name: str, url: str, what: str) -> Check:
    try:
        response = requests.get(url, timeout=5)
    except requests.RequestException as err:
        return Check(name, False, f"{url} unreachable: {type(err).__name__}")
    if response.status_code == 200:
        return Check(name, True, f"{url.rsplit('/-/', 1)[0]} {what}")
    return Check(name, False, f"{url}: HTTP {response.status_code}")


def _otlp(endpoint: str, traces_endpoint: bool) -> Check:
    url = endpoint if traces_endpoint else endpoint.rstrip("/") + "/v1/traces"
    try:  # an empty export request is valid protobuf; a collector answers 200
        response = requests.post(url, data=b"", headers={"Content-Type": "application/x-protobuf"}, timeout=5)
    except requests.RequestException as err:
        return Check("otlp", False, f"{url} unreachable: {type(err).__name__}")
    if response.status_code < 300:
        return Check("otlp", True, f"{url} accepts OTLP/HTTP")
    return Check("otlp", False, f"{url}: HTTP {response.status_code}")


def _smtp(cfg: Config) -> Check:
    email = cfg.email
    port = email.effective_port()
    context = ssl.create_default_context(cafile=str(email.ca_file) if email.ca_file else None)
    try:
        client = (smtplib.SMTP_SSL(email.host, port, timeout=10, context=context) if email.tls == "ssl"
                  else smtplib.SMTP(email.host, port, timeout=10))
        with client:
            if email.tls == "starttls":
                client.starttls(context=context)
            if email.username:
                client.login(email.username, email.password or "")
    except smtplib.SMTPAuthenticationError as err:
        return Check("smtp", False, f"{email.host}:{port} login refused ({err.smtp_code})")
    except (smtplib.SMTPException, OSError, ssl.SSLError) as err:
        return Check("smtp", False, f"{email.host}:{port}: {type(err).__name__}: {err}"[:200])
    login = " login ok," if email.username else ""
    return Check("smtp", True, f"{email.host}:{port} ({email.tls}),{login} {len(email.to)} recipient(s)")


_SLACK_WEBHOOK = re.compile(r"^https://hooks\.slack(?:-gov)?\.com/services/[A-Z0-9]+/[A-Z0-9]+/[A-Za-z0-9]+$")


def _slack(url: str, send_test: bool) -> Check:
    shape = "looks like a Slack incoming webhook" if _SLACK_WEBHOOK.match(url) else \
        "is not shaped like https://hooks.slack.com/services/T…/B…/…"
    if not send_test:
        return Check("slack", bool(_SLACK_WEBHOOK.match(url)), f"webhook URL {shape} (--send-test posts a message)")
    try:
        response = requests.post(url, json={"text": "triage doctor: test message"}, timeout=10)
    except requests.RequestException as err:
        return Check("slack", False, f"test post failed: {type(err).__name__}")
    return Check("slack", response.status_code == 200, f"test post: HTTP {response.status_code} {response.text[:80]}")


def _webhook(url: str, send_test: bool) -> Check:
    if not url.startswith(("http://", "https://")):
        return Check("webhook", False, f"{url} is not an http(s) URL")
    if not send_test:
        return Check("webhook", True, f"{url} (--send-test posts a test report)")
    try:
        response = requests.post(url, json={"test": True, "tool": "triage doctor"}, timeout=10)
    except requests.RequestException as err:
        return Check("webhook", False, f"test post failed: {type(err).__name__}")
    return Check("webhook", 200 <= response.status_code < 300, f"test post: HTTP {response.status_code}")
