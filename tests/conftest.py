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


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def pushgateway(tmp_path_factory):
    """The real Prometheus Pushgateway (Debian prometheus-pushgateway), on 127.0.0.1 with a free port."""
    import shutil
    import subprocess
    import time

    import requests

    binary = shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")
    assert binary, "prometheus-pushgateway is not installed (make test installs it with apt-get)"
    port = _free_port()
    # Debian's build persists to /var/lib/prometheus/pushgateway.data by default, shared by every
    # instance on the machine: give this one a file of its own so no earlier push leaks in.
    persistence = tmp_path_factory.mktemp("pushgateway") / "pushgateway.data"
    process = subprocess.Popen([binary, f"--web.listen-address=127.0.0.1:{port}", f"--persistence.file={persistence}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/-/ready", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=10)


# Property-based tests: ~100 examples per target in make test, 10,000 in make stress.
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("default", max_examples=100, deadline=None)
settings.register_profile("stress", max_examples=10_000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("TRIAGE_HYPOTHESIS_PROFILE", "default"))


def world_readable_runtime(dest: Path) -> str:
    """Copy triage and its dependencies where an unprivileged user can read them, for tests that run the
    job as uid 65534 (the test venv may sit in a folder only its owner can enter). Returns PYTHONPATH."""
    import shutil
    import sys

    src = dest / "src"
    shutil.copytree(Path(__file__).resolve().parent.parent / "triage", src / "triage",
                    ignore=shutil.ignore_patterns("__pycache__"))
    deps = dest / "deps"
    for source in (p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()):
        shutil.copytree(source, deps, dirs_exist_ok=True, symlinks=True,
                        ignore=shutil.ignore_patterns("xllamacpp*", "drain3*", "triage*", "__editable__*", "_pytest",
                                                      "pytest*", "hypothesis*", "aiosmtpd*", "kubernetes_validate*"))
    for path in [dest, *dest.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
    return f"{src}:{deps}"
