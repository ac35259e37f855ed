"""``triage cluster``: stdin entries -> one cluster key per entry (the benchmark contract).

Standard library, orjson and ``triage.cluster`` only, so the command starts fast and small.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import BinaryIO, TextIO

import orjson

from triage.cluster.miner import Miner, grouping_version
from triage.extract import extract
from triage.records import LogRecord
from triage.redact import RULES_VERSION, redact_for_grouping
from triage.shape import DIGITS_TO_ZERO

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


_FAST_CACHE_LIMIT = 100_000


def cluster_stream(stdin: BinaryIO, stdout: TextIO, input_format: str, settings: ClusterSettings,
                   shape_cache: bool = True) -> None:
    """Keys are printed when the input ends: a position learned to be variable late in the stream
    merges clusters, and the merged key must apply to the lines before it too. What is kept per
    line is a 4-byte index, so memory grows with clusters, not with the text of the lines."""
    miner = Miner(settings.version(), shape_cache=shape_cache)
    fingerprints: list[str] = []
    index_of: dict[str, int] = {}
    per_line = array("I")
    # Lines that differ only in their digits always get the same tokens: skip extraction,
    # redaction and masking for them.
    # Keyed by the shape's hash, not its bytes: memory stays bounded by the limit, not by line length
    # (a 64-bit hash collision, which would give one line another's key, is not a practical risk).
    seen: dict[int, int] = {}
    for number, raw in enumerate(stdin, start=1):
        shape = hash(raw.translate(DIGITS_TO_ZERO))  # bytes.translate: far cheaper than a regex per line
        slot = seen.get(shape) if shape_cache else None
        if slot is None:
            text = raw.decode("utf-8", "replace")
            if text.endswith("\n"):
                text = text[:-1]
            record = _jsonl_record(text, number) if input_format == "jsonl" else LogRecord(0, {}, text)
            event = extract(record, with_level=False)  # the level takes no part in grouping
            if settings.redact:
                event = redact_for_grouping(event, emails=settings.redact_emails, ips=settings.redact_ips)
            group = tuple(next((event.labels[n] for n in position if event.labels.get(n)), "")
                          for position in settings.group_by) if event.labels else ()
            fingerprint = miner.add(event.message, group).fingerprint
            slot = index_of.get(fingerprint)
            if slot is None:
                slot = index_of[fingerprint] = len(fingerprints)
                fingerprints.append(fingerprint)
            if len(seen) >= _FAST_CACHE_LIMIT:
                seen.clear()
            seen[shape] = slot
        per_line.append(slot)
    final = [miner.resolve(fingerprint) for fingerprint in fingerprints]
    chunk: list[str] = []
    for slot in per_line:
        chunk.append(final[slot])
        if len(chunk) >= 8192:
            stdout.write("\n".join(chunk) + "\n")
            chunk.clear()
    if chunk:
        stdout.write("\n".join(chunk) + "\n")
    stdout.flush()


def _jsonl_record(text: str, number: int) -> LogRecord:
    from triage.source.file import _entry_to_record, lenient_entry

    try:
        entry = orjson.loads(text)
    except orjson.JSONDecodeError:
        entry = lenient_entry(text, f"stdin:{number}")
    if isinstance(entry, dict) and "ts" not in entry:
        entry = {**entry, "ts": 0}
    return _entry_to_record(entry, f"stdin:{number}")
