"""Start and stop the embedded llama-server (PyPI ``xllamacpp``) for one run."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests

from triage.summarize.models import ModelError

log = logging.getLogger(__name__)


class EmbeddedServer:
    """A llama-server child process on a free 127.0.0.1 port; ``url`` once started."""

    def __init__(self, model_path: Path, *, slots: int, ctx_per_slot: int, threads: int | None = None,
                 log_path: Path | None = None, startup_timeout_s: float = 120.0,
                 sleep: Callable[[float], None] = time.sleep):
        self.model_path = model_path
        self.slots = slots
        self.ctx_per_slot = ctx_per_slot
        self.threads = threads or os.cpu_count() or 2
        self.log_path = log_path
        self.startup_timeout_s = startup_timeout_s
        self._sleep = sleep
        self._process: subprocess.Popen | None = None
        self.url: str | None = None

    def start(self) -> str:
        try:
            import xllamacpp  # noqa: F401  (fail here, clearly, rather than in the child)
        except ImportError:
            raise ModelError("the embedded llama-server needs the xllamacpp package (pip install xllamacpp)") from None
        log_file = self.log_path.open("ab") if self.log_path else subprocess.DEVNULL
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "triage.summarize.server_main", str(self.model_path), "0", str(self.slots),
                 str(self.ctx_per_slot), str(self.threads)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log_file, text=True,
                start_new_session=True,  # Ctrl-C on the terminal reaches the job, which stops the server
            )
        finally:
            if self.log_path:
                log_file.close()
        address = self._process.stdout.readline().strip()
        if not address.startswith("http"):
            self.stop()
            raise ModelError(f"the embedded llama-server did not start (see {self.log_path or 'its log'})")
        self.url = address
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{address}/health", timeout=2).status_code == 200:
                    return address
            except requests.RequestException:
                pass
            if self._process.poll() is not None:
                break
            self._sleep(0.2)
        self.stop()
        raise ModelError(f"the embedded llama-server was not healthy within {self.startup_timeout_s:g}s")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        try:
            process.terminate()
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        finally:
            for stream in (process.stdin, process.stdout):
                if stream:
                    stream.close()

    def __enter__(self) -> EmbeddedServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
