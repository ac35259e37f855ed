"""Delivery channels. Each one: send(digest) -> DeliveryResult."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    channel: str
    ok: bool
    error: str | None = None
