"""Where a run's llama-server comes from: a remote URL, or the embedded one started for the run."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from triage.config import LlmConfig
from triage.summarize.llama import LlamaClient, LlmError
from triage.summarize.models import DEFAULT_MODEL, MODELS, ModelError, default_cache_dir, ensure_model

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LlmSession:
    client: LlamaClient
    model: str
    slots: int
    embedded: bool


class LlmProvider:
    def __init__(self, cfg: LlmConfig, environ: dict[str, str], *, log_dir: Path | None = None,
                 progress: Callable[[str], None] | None = None):
        self.cfg = cfg
        self.environ = environ
        self.log_dir = log_dir
        self.progress = progress or (lambda text: log.info("%s", text))

    @property
    def mode(self) -> str:
        return self.cfg.effective_mode()

    def known_model(self) -> str | None:
        """The model name a session will report, when it is known without asking a server."""
        if self.mode == "remote":
            return self.cfg.model or None
        return self.cfg.model or DEFAULT_MODEL

    @contextlib.contextmanager
    def session(self) -> Iterator[LlmSession]:
        """Yields a healthy server; raises ModelError or LlmError when none can be had."""
        if self.mode == "remote":
            client = LlamaClient(self.cfg.url, timeout_s=self.cfg.timeout_s, model=self.cfg.model or None,
                                 api_key=self.cfg.api_key)
            client.health()
            info = client.info()
            yield LlmSession(client, self.cfg.model or info.model or "unknown", info.slots, embedded=False)
            return
        from triage.summarize.embedded import EmbeddedServer

        model_id = self.cfg.model or DEFAULT_MODEL
        spec = MODELS.get(model_id)
        if spec is None:
            raise ModelError(f"llm.model {model_id!r} is not an embedded model (have: {', '.join(MODELS)})")
        cache_dir = self.cfg.cache_dir or default_cache_dir(self.environ)
        model_path = ensure_model(spec, cache_dir, progress=self.progress)
        cores = os.cpu_count() or 2
        slots = self.cfg.slots or (2 if cores >= 4 else 1)
        log_path = (self.log_dir / "llama-server.log") if self.log_dir else None
        server = EmbeddedServer(model_path, slots=slots, ctx_per_slot=self.cfg.ctx_per_slot, threads=cores,
                                log_path=log_path)
        with server:
            url = server.start()
            client = LlamaClient(url, timeout_s=self.cfg.timeout_s)
            try:
                client.health()
            except LlmError as err:
                raise ModelError(str(err)) from None
            yield LlmSession(client, model_id, slots, embedded=True)
