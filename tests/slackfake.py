"""A local Slack incoming-webhook server that enforces what Slack enforces and records what it accepted."""

from __future__ import annotations

import json
import threading
from tests.localserver import LocalServer, QuietHandler


class FakeSlack(LocalServer):
    def __init__(self):
        self.accepted: list[dict] = []
        self.rejected: list[tuple[int, str]] = []
        self.fail_next: list[tuple[int, dict]] = []  # (status, headers) for the next requests
        self.fail_always: int | None = None
        self.fail_from: int | None = None  # accept this many posts, then answer 500 to every later one
        self.posts = 0  # POSTs received, failed ones included
        self.on_accept = None  # called with the number of accepted posts, before the 200 goes back
        self._lock = threading.Lock()
        self._start_server()

    @property
    def url(self) -> str:
        return self.base_url + "/services/T000/B000/XXXX"

    def texts(self) -> str:
        return json.dumps(self.accepted)

    def _handler(self):
        fake = self

        class Handler(QuietHandler):
            def _reply(self, status: int, body: str, headers: dict | None = None):
                self.send_body(status, body.encode(), "text/plain", headers)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with fake._lock:
                    fake.posts += 1
                    if fake.fail_from is not None and len(fake.accepted) >= fake.fail_from:
                        return self._reply(500, "internal_error")
                    if fake.fail_always:
                        return self._reply(fake.fail_always, "internal_error")
                    if fake.fail_next:
                        status, headers = fake.fail_next.pop(0)
                        return self._reply(status, "rate_limited" if status == 429 else "internal_error", headers)
                try:
                    payload = json.loads(body)
                except ValueError:
                    return self._reply(400, "invalid_payload")
                problem = _invalid(payload)
                if problem:
                    fake.rejected.append((400, problem))
                    return self._reply(400, problem)
                with fake._lock:
                    fake.accepted.append(payload)
                    accepted = len(fake.accepted)
                if fake.on_accept is not None:
                    fake.on_accept(accepted)
                return self._reply(200, "ok")

        return Handler


def _invalid(payload: dict) -> str | None:
    blocks = payload.get("blocks")
    if not payload.get("text") and not blocks:
        return "no_text"
    if blocks is None:
        return None
    if len(blocks) > 50:
        return "invalid_blocks: more than 50 blocks"
    if len(payload.get("text", "")) > 40_000:
        return "msg_too_long"
    # Slack also refuses blocks holding too much text in total (undocumented; ~12,000 measured to fail)
    if sum(len(b.get("text", {}).get("text", "")) + sum(len(e.get("text", "")) for e in b.get("elements", ()))
           for b in blocks) > 12_000:
        return "msg_blocks_too_long"
    for block in blocks:
        kind = block.get("type")
        if kind == "header" and len(block["text"]["text"]) > 150:
            return "invalid_blocks: header text over 150"
        if kind == "section" and len(block["text"]["text"]) > 3000:
            return "invalid_blocks: section text over 3000"
        if kind not in ("header", "section", "divider", "context"):
            return f"invalid_blocks: unknown type {kind}"
    return None
