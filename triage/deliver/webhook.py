"""Generic JSON webhook: POSTs the run's report JSON, for other tools."""

from __future__ import annotations

import requests

from triage.deliver import DeliveryResult


class WebhookChannel:
    name = "webhook"

    def __init__(self, url: str, *, timeout_s: float = 10.0):
        self.url = url
        self.timeout_s = timeout_s

    def send_report(self, report_json: dict) -> DeliveryResult:
        try:
            response = requests.post(self.url, json=report_json, timeout=self.timeout_s)
        except requests.RequestException as err:
            return DeliveryResult(self.name, False, f"request failed: {type(err).__name__}")
        if 200 <= response.status_code < 300:
            return DeliveryResult(self.name, True)
        return DeliveryResult(self.name, False, f"HTTP {response.status_code} {response.text.strip()[:200]}")
