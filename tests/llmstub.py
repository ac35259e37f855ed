"""A stub llama-server on 127.0.0.1 speaking the same API (OpenAI chat completions, /health, /props).

It answers according to ``mode``, so our own parsing, timeout and fallback code runs over a real
socket: good JSON, garbage, HTTP 500, slow answers, or answers that claim other facts.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler

from tests.localserver import LocalServer

GOOD = {"title": "Checkout cannot reach payments", "what_happened": "Payment calls from checkout time out.",
        "likely_cause": "The payments service is slow or down.", "next_step": "Check the payments pods and latency."}


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

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, status: int, body, content_type="application/json"):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path == "/health":
                    return self._send(503 if stub.mode == "unhealthy" else 200, {"status": "ok"})
                if self.path == "/props":
                    return self._send(200, {"total_slots": stub.slots, "model_path": "/models/stub-model.gguf"})
                if self.path == "/metrics":
                    return self._send(200, b"llamacpp:predicted_tokens_seconds 42.5\n", "text/plain")
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
