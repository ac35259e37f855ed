from __future__ import annotations

import os
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """No test sees the developer's TRIAGE_* settings or writes outside its tmp_path."""
    for name in list(os.environ):
        if name.startswith("TRIAGE_") or name.startswith("OTEL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TRIAGE_LLM__MODE", "off")  # LLM tests turn it on against the shared server or a stub
    monkeypatch.chdir(tmp_path)
    yield


@pytest.fixture
def fake_loki():
    from tests.lokifake import FakeLoki

    with FakeLoki() as fake:
        yield fake
