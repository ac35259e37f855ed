"""``triage cluster``: stdin entries -> one cluster key per entry (the benchmark contract).

Standard library and ``triage.cluster`` only, so the command starts fast and small.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import BinaryIO, TextIO

from triage.cluster.miner import Miner, grouping_version
from triage.errors import UsageError
from triage.extract import extract
from triage.records import LogRecord
from triage.redact import RULES_VERSION, redact

DEFAULT_GROUP_BY: tuple[tuple[str, ...], ...] = (("namespace",), ("app", "service_name", "container"))


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    group_by: tuple[tuple[str, ...], ...] = DEFAULT_GROUP_BY
    redact: bool = True
    redact_emails: bool = True
    redact_ips: bool = False

    @classmethod
    def from_config(cls, cfg) -> ClusterSettings:
        return cls(tuple(cfg.group_positions()), cfg.redact.enabled, cfg.redact.emails, cfg.redact.ips)

    def version(self) -> str:
        return grouping_version(self.group_by, f"{RULES_VERSION}:{self.redact}:{self.redact_emails}:{self.redact_ips}")


def cluster_stream(stdin: BinaryIO, stdout: TextIO, input_format: str, settings: ClusterSettings) -> None:
    miner = Miner(settings.version())
    out = []
    for number, raw in enumerate(stdin, start=1):
        text = raw.decode("utf-8", "replace")
        if text.endswith("\n"):
            text = text[:-1]
        record = _jsonl_record(text, number) if input_format == "jsonl" else LogRecord(0, {}, text)
        event = extract(record)
        if settings.redact:
            event = redact(event, emails=settings.redact_emails, ips=settings.redact_ips)
        group = tuple(next((event.labels[n] for n in position if event.labels.get(n)), "")
                      for position in settings.group_by) if event.labels else ()
        out.append(miner.add(event.message, group).fingerprint)
        if len(out) >= 4096:
            stdout.write("\n".join(out) + "\n")
            out.clear()
    if out:
        stdout.write("\n".join(out) + "\n")
    stdout.flush()


def _jsonl_record(text: str, number: int) -> LogRecord:
    from triage.source.file import _entry_to_record

    try:
        entry = json.loads(text)
    except json.JSONDecodeError as err:
        raise UsageError(f"stdin:{number}: not JSON: {err.msg}") from None
    if isinstance(entry, dict) and "ts" not in entry:
        entry = {**entry, "ts": 0}
    return _entry_to_record(entry, f"stdin:{number}")
