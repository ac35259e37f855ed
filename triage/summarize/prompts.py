"""The prompt registry: Jinja2 files in ``prompts/``, each with a ``system`` and a ``user`` block.

A prompt's version is a hash of its source, the sources it includes or extends, and the output
schema, so any change to what the model is asked gives new cache keys and shows in the digest.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import jinja2
from jinja2 import meta

from triage.errors import ConfigError
from triage.summarize.schema import output_schema

SUFFIX = ".j2"
CARD_PROMPT = "card"


def default_prompts_dir() -> Path:
    """``prompts/`` of the source checkout, else the copy installed with the package."""
    checkout = Path(__file__).resolve().parents[2] / "prompts"
    if checkout.is_dir():
        return checkout
    return Path(__file__).resolve().parents[1] / "prompts"


@dataclass(frozen=True, slots=True)
class Prompt:
    name: str
    version: str
    path: Path


@dataclass(frozen=True, slots=True)
class RenderedPrompt:
    system: str
    user: str

    def messages(self) -> list[dict]:
        return [{"role": "system", "content": self.system}, {"role": "user", "content": self.user}]


class PromptRegistry:
    def __init__(self, directory: Path):
        if not directory.is_dir():
            raise ConfigError(f"llm.prompts_dir {directory}: no such directory")
        self.directory = directory
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(directory)),
            undefined=jinja2.StrictUndefined,
            autoescape=False,  # prompts are plain text; data is fenced by the template itself
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self._env.filters["fence"] = fence
        self._env.filters["fence_inline"] = fence_inline

    def names(self) -> list[str]:
        return sorted(p.name[: -len(SUFFIX)] for p in self.directory.glob(f"*{SUFFIX}") if not p.name.startswith("_"))

    def get(self, name: str) -> Prompt:
        path = self.directory / f"{name}{SUFFIX}"
        if not path.is_file():
            raise ConfigError(f"no prompt {name!r} in {self.directory} (have: {', '.join(self.names()) or 'none'})")
        return Prompt(name=name, version=self._version(f"{name}{SUFFIX}"), path=path)

    def source(self, name: str) -> str:
        return self.get(name).path.read_text(encoding="utf-8")

    def render(self, name: str, **context) -> RenderedPrompt:
        try:
            template = self._env.get_template(f"{name}{SUFFIX}")
            parts = {}
            for block in ("system", "user"):
                if block not in template.blocks:
                    raise ConfigError(f"prompt {name!r} has no {{% block {block} %}}")
                parts[block] = "".join(template.blocks[block](template.new_context(context))).strip()
        except jinja2.TemplateError as err:
            raise ConfigError(f"prompt {name!r}: {err}") from None
        return RenderedPrompt(system=parts["system"], user=parts["user"])

    def _version(self, filename: str) -> str:
        digest = hashlib.sha256()
        for source_name in sorted(self._closure(filename, set())):
            digest.update(source_name.encode() + b"\0")
            digest.update((self.directory / source_name).read_bytes() + b"\0")
        digest.update(json.dumps(output_schema(), sort_keys=True).encode())
        return digest.hexdigest()[:10]

    def _closure(self, filename: str, seen: set[str]) -> set[str]:
        if filename in seen:
            return seen
        seen.add(filename)
        try:
            source = (self.directory / filename).read_text(encoding="utf-8")
            referenced = meta.find_referenced_templates(self._env.parse(source))
        except (OSError, jinja2.TemplateSyntaxError) as err:
            raise ConfigError(f"prompt {filename}: {err}") from None
        for other in referenced:
            if other:
                self._closure(other, seen)
        return seen


def fence(text: str, limit: int = 700) -> str:
    """Log text as inert data inside the prompt: clipped, and fenced with a fence it cannot close."""
    text = str(text)
    if len(text) > limit:
        text = text[:limit] + " …"
    text = text.replace("<<<", "‹‹‹").replace(">>>", "›››")
    return f"<<<LOG\n{text}\nLOG>>>"


def fence_inline(text: str, limit: int = 80) -> str:
    """A short field value from a log line, inline: one line, clipped, unable to open or close a fence."""
    text = " ".join(str(text).split())[:limit]
    return text.replace("<<<", "‹‹‹").replace(">>>", "›››")
