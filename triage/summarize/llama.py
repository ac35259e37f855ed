"""HTTP adapter for an OpenAI-compatible llama.cpp server (``llama-server``)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import requests


class LlmError(Exception):
    """One call failed (HTTP error, timeout, connection); the card falls back."""


@dataclass(frozen=True, slots=True)
class Completion:
    content: str
    prompt_tokens: int
    completion_tokens: int
    duration_s: float
    response_id: str | None
    model: str | None
    predicted_per_second: float | None
    prompt_per_second: float | None


@dataclass(frozen=True, slots=True)
class ServerInfo:
    slots: int
    model: str | None


class LlamaClient:
    def __init__(self, base_url: str, *, timeout_s: float, model: str | None = None,
                 session: requests.Session | None = None, api_key: str | None = None):
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.model = model
        self._session = session or requests.Session()
        if api_key:
            self._session.headers["Authorization"] = f"Bearer {api_key}"

    def health(self) -> None:
        try:
            response = self._session.get(f"{self.base_url}/health", timeout=min(self.timeout_s, 10))
        except requests.RequestException as err:
            raise LlmError(f"llama-server {self.base_url} unreachable: {_reason(err)}") from None
        if response.status_code != 200:
            raise LlmError(f"llama-server {self.base_url} not healthy: HTTP {response.status_code} "
                           f"{response.text.strip()[:120]}")

    def info(self) -> ServerInfo:
        """Slots and model name from ``/props`` (llama-server); 1 slot when the server does not say."""
        try:
            response = self._session.get(f"{self.base_url}/props", timeout=min(self.timeout_s, 10))
            props = response.json() if response.status_code == 200 else {}
        except (requests.RequestException, ValueError):
            props = {}
        slots = props.get("total_slots") if isinstance(props, dict) else None
        model = None
        if isinstance(props, dict):
            model = props.get("model_alias") or props.get("model_path")
        if model and "/" in model:
            model = model.rsplit("/", 1)[-1]
        return ServerInfo(slots=slots if isinstance(slots, int) and slots > 0 else 1, model=model)

    def chat(self, messages: list[dict], *, schema: dict, max_tokens: int, timeout_s: float | None = None) -> Completion:
        body = {
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": 0.2,
            "response_format": {"type": "json_schema", "json_schema": {"name": "card", "schema": schema, "strict": True}},
        }
        if self.model:
            body["model"] = self.model
        started = time.perf_counter()
        try:
            response = self._session.post(f"{self.base_url}/v1/chat/completions", json=body,
                                          timeout=timeout_s or self.timeout_s)
        except requests.Timeout:
            raise LlmError(f"no answer within {timeout_s or self.timeout_s:g}s") from None
        except requests.RequestException as err:
            raise LlmError(f"request failed: {_reason(err)}") from None
        duration_s = time.perf_counter() - started
        if response.status_code != 200:
            raise LlmError(f"HTTP {response.status_code}: {response.text.strip()[:200]}")
        try:
            data = response.json()
            content = data["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise LlmError("the server's answer is not an OpenAI chat completion") from None
        usage = data.get("usage") or {}
        timings = data.get("timings") or {}
        return Completion(
            content=content if isinstance(content, str) else "",
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            duration_s=duration_s,
            response_id=data.get("id"),
            model=data.get("model"),
            predicted_per_second=timings.get("predicted_per_second"),
            prompt_per_second=timings.get("prompt_per_second"),
        )

    def metrics_text(self) -> str | None:
        try:
            response = self._session.get(f"{self.base_url}/metrics", timeout=5)
        except requests.RequestException:
            return None
        return response.text if response.status_code == 200 else None


def _reason(err: Exception) -> str:
    text = str(err)
    for marker in ("Connection refused", "Connection reset", "timed out", "Name or service not known"):
        if marker in text:
            return marker
    return text.splitlines()[0][:160] if text else type(err).__name__
