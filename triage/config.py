"""Configuration: one pydantic model, loaded from TOML, then ``TRIAGE_*`` variables, then flags.

``load`` is the only place that merges the three layers; it takes the environment as an
argument so that tests never touch ``os.environ``. A bad value becomes a ``ConfigError`` that
names the field and the layer it came from (``loki.timeout_s in /etc/triage.toml: ...``).
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from triage.errors import ConfigError
from triage.timeparse import parse_duration

ENV_PREFIX = "TRIAGE_"
CONFIG_ENV = "TRIAGE_CONFIG"
DEFAULT_CONFIG_NAME = "triage.toml"


def _duration(value: Any) -> Any:
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class LokiConfig(Section):
    url: str = "http://localhost:3100"
    password_file: Path | None = None
    token_file: Path | None = None
    query: str = '{namespace=~".+"} |~ "(?i)(error|fatal|panic|exception)"'
    tenant: str | None = None
    username: str | None = None
    password: str | None = None
    token: str | None = None
    ca_file: Path | None = None
    page_limit: int = Field(5000, ge=1, le=100_000)
    split: Duration = timedelta(hours=1)
    concurrency: int = Field(4, ge=1, le=64)
    timeout_s: float = Field(30, gt=0)
    delay: Duration = timedelta(minutes=1)
    # The part of a window younger than this is read again by the next run (Loki accepts
    # out-of-order writes, agents re-send after a 429); each entry is still counted once.
    settle: Duration = timedelta(minutes=10)
    max_retries: int = Field(4, ge=0, le=20)
    # A window holding more entries is not pulled whole: Loki counts the known templates (0: never).
    max_pull: int = Field(2_000_000, ge=0)
    # Entries per cluster kept (and shown on cards) when counts come from the state or from Loki.
    sample_limit: int = Field(20, ge=1, le=1000)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("split")
    @classmethod
    def _split(cls, value: timedelta) -> timedelta:
        if value < timedelta(seconds=1):
            raise ValueError("must be at least 1s")
        return value


class LlmConfig(Section):
    mode: Literal["auto", "embedded", "remote", "off"] = "auto"
    url: str = ""
    model: str = ""  # name sent to a remote server (default: the server's); the embedded model id
    api_key: str | None = None
    cache_dir: Path | None = None  # default $XDG_CACHE_HOME/triage/models
    prompts_dir: Path | None = None  # default: prompts/ shipped with triage
    timeout_s: float = Field(120, gt=0)
    max_clusters: int = Field(20, ge=0)
    max_tokens: int = Field(20000, ge=0)
    deadline_s: float = Field(600, gt=0)
    answer_tokens: int = Field(320, ge=32, le=4096)
    slots: int = Field(0, ge=0, le=16)  # embedded server slots; 0 = 1, or 2 on 4+ cores
    ctx_per_slot: int = Field(4096, ge=512)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _remote_needs_url(self) -> LlmConfig:
        if self.mode == "remote" and not self.url:
            raise ValueError("llm.mode is remote but llm.url is empty")
        return self

    def effective_mode(self) -> str:
        if self.mode == "auto":
            return "remote" if self.url else "embedded"
        return self.mode


class RedactConfig(Section):
    enabled: bool = True
    emails: bool = True
    ips: bool = False


class DetectConfig(Section):
    quiet_period: Duration = timedelta(hours=24)
    spike_factor: float = Field(5, gt=0)
    spike_min_count: int = Field(20, ge=1)
    spike_min_history: Duration = timedelta(hours=6)
    spike_lookback: Duration = timedelta(days=7)
    spike_cooldown: Duration = timedelta(hours=6)
    report_muted_spikes: bool = True  # a muted cluster that spikes is reported all the same


class RunConfig(Section):
    max_catchup: Duration = timedelta(hours=24)
    prime_lookback: Duration = timedelta(days=7)
    auto_prime: bool = True
    # Processes that prepare entries (extract, redact, tokens) in a big run; 0: the CPUs the job may use
    # (affinity and cgroup quota), 1: all in the job's own process.
    workers: int = Field(0, ge=0)


class StateConfig(Section):
    path: Path = Path("state/triage.db")
    retention: Duration = timedelta(days=30)
    # A state on NFS/SMB/CephFS/... is refused: flock there may lock on one host only. True runs anyway, warning.
    allow_network_fs: bool = False


class DigestConfig(Section):
    dir: Path = Path("state/digests")
    keep: int = Field(500, ge=1)
    max_cards: int = Field(20, ge=1)
    send_when_quiet: bool = False
    grafana_url: str | None = None
    grafana_datasource_uid: str | None = None


class SlackConfig(Section):
    webhook_url: str | None = None
    webhook_url_file: Path | None = None
    timeout_s: float = Field(10, gt=0)
    max_retries: int = Field(4, ge=0, le=20)

    @field_validator("webhook_url")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        if value and not value.startswith(("https://", "http://")):
            raise ValueError("must be an https:// Slack incoming-webhook URL")
        return value


class EmailConfig(Section):
    host: str | None = None
    port: int | None = Field(None, ge=1, le=65535)
    tls: Literal["starttls", "ssl", "none"] = "starttls"
    ca_file: Path | None = None
    username: str | None = None
    password: str | None = None
    password_file: Path | None = None
    from_: str | None = Field(None, alias="from")
    to: list[str] = Field(default_factory=list)
    timeout_s: float = Field(30, gt=0)

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)

    @model_validator(mode="after")
    def _complete(self) -> EmailConfig:
        if self.host and (not self.from_ or not self.to):
            raise ValueError("email.host is set, so email.from and email.to are needed too")
        return self

    def effective_port(self) -> int:
        return self.port or (465 if self.tls == "ssl" else 587)


class WebhookConfig(Section):
    url: str | None = None
    timeout_s: float = Field(10, gt=0)


class PushgatewayConfig(Section):
    url: str = ""  # empty: no push
    job: str = "triage"
    timeout_s: float = Field(5, gt=0)


class MuteEntry(Section):
    fingerprint: str
    until: str | None = None  # RFC3339; none = until unmuted
    reason: str | None = None


GroupPosition = str | list[str]


class Config(Section):
    sources: list[str] = Field(default_factory=lambda: ["loki"])
    group_by: list[GroupPosition] = Field(
        default_factory=lambda: ["namespace", ["app", "service_name", "container"]]
    )
    loki: LokiConfig = Field(default_factory=LokiConfig)
    llm: LlmConfig = Field(default_factory=LlmConfig)
    redact: RedactConfig = Field(default_factory=RedactConfig)
    detect: DetectConfig = Field(default_factory=DetectConfig)
    run: RunConfig = Field(default_factory=RunConfig)
    state: StateConfig = Field(default_factory=StateConfig)
    digest: DigestConfig = Field(default_factory=DigestConfig)
    slack: SlackConfig = Field(default_factory=SlackConfig)
    email: EmailConfig = Field(default_factory=EmailConfig)
    webhook: WebhookConfig = Field(default_factory=WebhookConfig)
    pushgateway: PushgatewayConfig = Field(default_factory=PushgatewayConfig)
    new_channels_primed: bool = True
    mute: list[MuteEntry] = Field(default_factory=list)
    config_file: Path | None = Field(None, exclude=True)

    def channels(self) -> list[str]:
        """Configured delivery channels; ``file`` always is."""
        configured = ["file"]
        if self.slack.webhook_url:
            configured.append("slack")
        if self.email.host:
            configured.append("email")
        if self.webhook.url:
            configured.append("webhook")
        return configured

    @field_validator("sources")
    @classmethod
    def _sources(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("needs at least one source (loki, file:PATH or demo)")
        for spec in value:
            if spec not in ("loki", "demo") and not (spec.startswith("file:") and len(spec) > 5):
                raise ValueError(f"unknown source {spec!r} (use loki, file:PATH or demo)")
        return value

    @field_validator("group_by")
    @classmethod
    def _group_by(cls, value: list[GroupPosition]) -> list[GroupPosition]:
        for position in value:
            if isinstance(position, list) and not position:
                raise ValueError("a position may not be an empty list")
        return value

    def group_positions(self) -> list[tuple[str, ...]]:
        return [(p,) if isinstance(p, str) else tuple(p) for p in self.group_by]


# Paths given in a config file are relative to that file's folder.
_FILE_RELATIVE_PATHS = (("state", "path"), ("digest", "dir"), ("loki", "ca_file"), ("llm", "cache_dir"),
                        ("llm", "prompts_dir"), ("loki", "password_file"), ("loki", "token_file"),
                        ("slack", "webhook_url_file"), ("email", "password_file"), ("email", "ca_file"))
# Secrets that may come from a file (a Kubernetes Secret mounted as a file) as <key>_file.
SECRET_FILE_KEYS = (("loki", "password"), ("loki", "token"), ("slack", "webhook_url"), ("email", "password"))


def find_config_file(explicit: Path | None, environ: Mapping[str, str], cwd: Path) -> Path | None:
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"--config {explicit}: no such file")
        return explicit
    if environ.get(CONFIG_ENV):
        path = Path(environ[CONFIG_ENV])
        if not path.is_file():
            raise ConfigError(f"{CONFIG_ENV}={path}: no such file")
        return path
    candidate = cwd / DEFAULT_CONFIG_NAME
    try:
        return candidate if candidate.is_file() else None
    except PermissionError:
        raise ConfigError(f"{candidate}: cannot check for a config file (permission denied)") from None


def load(
    config_file: Path | None,
    environ: Mapping[str, str],
    overrides: Mapping[str, Any] | None = None,
    cwd: Path | None = None,
) -> Config:
    """Merge file < environment < overrides (dotted keys, e.g. ``{"loki.url": ...}``)."""
    cwd = cwd or Path.cwd()
    path = find_config_file(config_file, environ, cwd)
    merged: dict[str, Any] = {}
    origin: dict[tuple[str, ...], str] = {}
    if path is not None:
        file_data = _read_toml(path)
        for keys in _FILE_RELATIVE_PATHS:
            _resolve_relative(file_data, keys, path.parent)
        _merge(merged, file_data, origin, str(path), ())
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        keys = tuple(part.lower() for part in name[len(ENV_PREFIX):].split("__"))
        _set_dotted(merged, keys, _env_value(raw))
        origin[keys] = f"environment variable {name}"
    for dotted, value in (overrides or {}).items():
        keys = tuple(dotted.split("."))
        _set_dotted(merged, keys, value)
        origin[keys] = "command line"
    merged["config_file"] = path
    _read_secret_files(merged, origin)
    try:
        return Config.model_validate(merged)
    except ValidationError as err:
        raise ConfigError(_describe(err, origin)) from None


def _read_secret_files(merged: dict, origin: dict) -> None:
    for section, key in SECRET_FILE_KEYS:
        values = merged.get(section)
        if not isinstance(values, dict) or values.get(f"{key}_file") in (None, ""):
            continue
        where = origin.get((section, f"{key}_file"), "config")
        if values.get(key) not in (None, ""):
            raise ConfigError(f"{section}.{key} and {section}.{key}_file are both set ({where}); give one")
        path = Path(str(values[f"{key}_file"])).expanduser()
        try:
            values[key] = path.read_text(encoding="utf-8").strip()
        except OSError as err:
            raise ConfigError(f"{section}.{key}_file in {where}: cannot read {path}: {err.strerror}") from None
        origin[(section, key)] = f"{section}.{key}_file {path}"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML: {err}") from None


def _resolve_relative(data: dict[str, Any], keys: tuple[str, str], base: Path) -> None:
    section = data.get(keys[0])
    if isinstance(section, dict) and isinstance(section.get(keys[1]), str):
        value = Path(section[keys[1]]).expanduser()
        section[keys[1]] = str(value if value.is_absolute() else base / value)


def _env_value(raw: str) -> Any:
    # Lists and tables come as JSON (TRIAGE_SOURCES='["loki","demo"]'); everything else is a string
    # that pydantic coerces to the field's type.
    if raw.strip().startswith(("[", "{")):
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, RecursionError):
            return raw
    return raw


def _merge(target: dict, data: dict, origin: dict, where: str, prefix: tuple[str, ...]) -> None:
    for key, value in data.items():
        keys = prefix + (key,)
        if isinstance(value, dict) and isinstance(target.get(key, {}), dict):
            _merge(target.setdefault(key, {}), value, origin, where, keys)
        else:
            target[key] = value
            origin[keys] = where


def _set_dotted(target: dict, keys: tuple[str, ...], value: Any) -> None:
    for key in keys[:-1]:
        nested = target.get(key)
        if not isinstance(nested, dict):
            nested = target[key] = {}
        target = nested
    target[keys[-1]] = value


def _describe(err: ValidationError, origin: Mapping[tuple[str, ...], str]) -> str:
    first = err.errors()[0]
    loc = tuple(str(part) for part in first["loc"])
    field = ".".join(part for part in loc if not part.isdigit()) or "config"
    where = None
    for size in range(len(loc), 0, -1):
        where = origin.get(loc[:size])
        if where:
            break
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown setting"
    message = message.removeprefix("Value error, ")
    more = f" (and {len(err.errors()) - 1} more problem(s))" if len(err.errors()) > 1 else ""
    return f"{field}{f' in {where}' if where else ''}: {message}{more}"


SECRET_KEYS = {("loki", "password"), ("loki", "token"), ("slack", "webhook_url"), ("email", "password"),
               ("llm", "api_key")}


def render_toml(cfg: Config) -> str:
    """The effective configuration as TOML, with every secret shown as ***."""
    data = cfg.model_dump(mode="json", by_alias=True, exclude={"config_file"})
    lines = [f"# effective configuration (file: {cfg.config_file or 'none'})"]
    sections = []
    for key, value in data.items():
        if isinstance(value, dict):
            sections.append((key, value))
        elif key == "mute":
            continue
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    for section, values in sections:
        lines.append(f"\n[{section}]")
        for key, value in values.items():
            if (section, key) in SECRET_KEYS and value:
                value = "***"
            if value is None:
                lines.append(f"# {key} = (unset)")
            else:
                lines.append(f"{key} = {_toml_value(value)}")
    for mute in data.get("mute") or []:
        lines.append("\n[[mute]]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in mute.items() if value is not None)
    return "\n".join(lines) + "\n"


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, str) and re.fullmatch(r"P(?:\d+D)?(?:T[\d.]+[HMS](?:[\d.]+[MS])?(?:[\d.]+S)?)?", value):
        return json.dumps(_iso_to_duration(value))
    return json.dumps(value, ensure_ascii=False)


def _iso_to_duration(value: str) -> str:
    """pydantic dumps timedeltas as ISO 8601 ("PT1H"); show them the way they are written here ("1h")."""
    from triage.timeparse import format_duration_ns

    match = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?", value)
    if not match:
        return value
    days, hours, minutes, seconds = (float(part or 0) for part in match.groups())
    total_s = days * 86400 + hours * 3600 + minutes * 60 + seconds
    return format_duration_ns(int(total_s * 1_000_000_000))
