"""File channel: the markdown digest as ``<UTC time>-<schedule>.md`` in ``digest.dir``."""

from __future__ import annotations

import logging
from pathlib import Path

from triage.deliver import DeliveryResult
from triage.fileio import write_atomic
from triage.timeparse import format_ns

log = logging.getLogger(__name__)


class FileChannel:
    name = "file"

    def __init__(self, directory: Path, keep: int):
        self.directory = directory
        self.keep = keep
        self.last_path: Path | None = None

    def path_for(self, generated_ns: int, schedule: str, run_id: str) -> Path:
        stamp = format_ns(generated_ns - generated_ns % 1_000_000_000).replace(":", "").replace("-", "")
        return self.directory / f"{stamp}-{schedule}-{run_id[:8]}.md"

    def send(self, digest: str, *, generated_ns: int, schedule: str, run_id: str) -> DeliveryResult:
        path = self.path_for(generated_ns, schedule, run_id)
        try:
            write_atomic(path, digest)
        except OSError as err:
            return DeliveryResult(self.name, False, f"cannot write {path}: {err.strerror}")
        self.last_path = path
        self._rotate()
        return DeliveryResult(self.name, True)

    def _rotate(self) -> None:
        digests = sorted(self.directory.glob("*.md"))
        for old in digests[: max(0, len(digests) - self.keep)]:
            try:
                old.unlink()
            except OSError as err:
                log.warning("could not remove old digest %s: %s", old, err.strerror)
