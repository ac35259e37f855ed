"""A stub llama-server on 127.0.0.1 speaking the same API (OpenAI chat completions, /health, /props).

It answers according to ``mode``, so our own parsing, timeout and fallback code runs over a real
socket: good JSON, garbage, HTTP 500, slow answers, or answers that claim other facts.
"""

from __future__ import annotations

import json
import threading
import time
from tests.localserver import LocalServer, QuietHandler

GOOD = {"title": "Checkout cannot reach payments", "what_happened": "Payment calls from checkout time out.",
        "likely_cause": "The payments service is slow or down.", "next_step": "Check the payments pods and latency."}


# What llama-server's --metrics endpoint looks like: counters and gauges with their TYPE lines.
LLAMACPP_METRICS = (b"# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed.\n"
                    b"# TYPE llamacpp:prompt_tokens_total counter\n"
                    b"llamacpp:prompt_tokens_total 2030\n"
                    b"# HELP llamacpp:predicted_tokens_seconds Average generation throughput in tokens/s.\n"
                    b"# TYPE llamacpp:predicted_tokens_seconds gauge\n"
                    b"llamacpp:predicted_tokens_seconds 42.5\n"
                    b"# HELP llamacpp:kv_cache_usage_ratio KV-cache usage.\n"
                    b"# TYPE llamacpp:kv_cache_usage_ratio gauge\n"
                    b"llamacpp:kv_cache_usage_ratio nan\n")


class StubLlama(LocalServer):
    def __init__(self, mode: str = "good", slots: int = 2, answer: dict | None = None, delay_s: float = 0.0):
        self.mode = mode
        self.slots = slots
        self.answer = answer or GOOD
        self.delay_s = delay_s
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._start_server()

    @property
    def url(self) -> str:
        return self.base_url

    def _handler(self):
        stub = self

        class Handler(QuietHandler):
            def _send(self, status: int, body, content_type="application/json"):
                self.send_body(status, body if isinstance(body, bytes) else json.dumps(body).encode(), content_type)

            def do_GET(self):
                if self.path == "/health":
                    return self._send(503 if stub.mode == "unhealthy" else 200, {"status": "ok"})
                if self.path == "/props":
                    return self._send(200, {"total_slots": stub.slots, "model_path": "/models/stub-model.gguf"})
                if self.path == "/metrics":
                    return self._send(200, LLAMACPP_METRICS, "text/plain")
                return self._send(404, {"error": "not found"})

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                with stub._lock:
                    stub.requests.append(body)
                if stub.delay_s or stub.mode == "slow":
                    time.sleep(stub.delay_s or 2.0)
                if stub.mode == "error":
                    return self._send(500, {"error": {"message": "model crashed"}})
                content = {
                    "garbage": "Sure! Here is what happened: the thing broke.",
                    "wrong_shape": json.dumps({"title": "x"}),
                }.get(stub.mode, json.dumps(stub.answer))
                return self._send(200, {
                    "id": f"chatcmpl-{len(stub.requests)}", "model": "stub-model", "object": "chat.completion",
                    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": 100, "completion_tokens": 40, "total_tokens": 140},
                    "timings": {"predicted_per_second": 40.0, "prompt_per_second": 400.0},
                })

        return Handler
