"""Build a source adapter from its ``--source`` value and the config."""

from __future__ import annotations

from pathlib import Path

from triage import __version__
from triage.config import Config
from triage.errors import UsageError
from triage.source import Source
from triage.timeparse import timedelta_to_ns


def build_source(spec: str, cfg: Config, tracer=None) -> Source:
    if spec == "demo":
        from triage.source.demo import DemoSource

        return DemoSource()
    if spec.startswith("file:"):
        from triage.source.file import FileSource

        path = Path(spec[5:]).expanduser()
        if not path.is_file():
            raise UsageError(f"--source {spec}: no such file")
        return FileSource(spec, path)
    if spec == "loki":
        from triage.source.loki import LokiAuth, LokiSource

        loki = cfg.loki
        if loki.ca_file is not None and not loki.ca_file.is_file():
            raise UsageError(f"loki.ca_file {loki.ca_file}: no such file")
        source = LokiSource(
            loki.url,
            loki.query,
            page_limit=loki.page_limit,
            split_ns=timedelta_to_ns(loki.split),
            concurrency=loki.concurrency,
            timeout_s=loki.timeout_s,
            max_retries=loki.max_retries,
            auth=LokiAuth(loki.tenant, loki.username, loki.password, loki.token, loki.ca_file),
            user_agent=f"triage/{__version__}",
            tracer=tracer,
            settle_ns=timedelta_to_ns(loki.settle),
        )
        source.max_pull = loki.max_pull  # a window holding more is counted inside Loki (triage/loki_tally.py)
        return source
    raise UsageError(f"unknown source {spec!r} (use loki, file:PATH or demo)")
