from datetime import timedelta
from pathlib import Path

import pytest

from triage import config
from triage.errors import ConfigError, ExitCode


def test_defaults_match_the_interface():
    cfg = config.load(None, {}, cwd=Path("/nonexistent"))
    assert cfg.sources == ["loki"]
    assert cfg.loki.page_limit == 5000 and cfg.loki.split == timedelta(hours=1) and cfg.loki.concurrency == 4
    assert cfg.loki.delay == timedelta(minutes=1) and cfg.loki.timeout_s == 30
    assert cfg.state.path == Path("state/triage.db") and cfg.digest.dir == Path("state/digests")
    assert cfg.group_positions() == [("namespace",), ("app", "service_name", "container")]
    assert cfg.detect.spike_factor == 5 and cfg.detect.quiet_period == timedelta(hours=24)


def test_file_then_environment_then_flags(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('[loki]\nurl = "http://file:3100"\ntimeout_s = 10\nsplit = "30m"\n[state]\npath = "s/x.db"\n')
    env = {"TRIAGE_LOKI__TIMEOUT_S": "20", "TRIAGE_SOURCES": '["demo", "loki"]'}
    cfg = config.load(path, env, {"loki.url": "http://flag:3100"})
    assert cfg.loki.url == "http://flag:3100"
    assert cfg.loki.timeout_s == 20
    assert cfg.loki.split == timedelta(minutes=30)
    assert cfg.sources == ["demo", "loki"]
    assert cfg.state.path == tmp_path / "s" / "x.db", "relative to the config file's folder"


def test_bad_value_names_field_and_origin(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text("[loki]\ntimeout_s = -1\n")
    with pytest.raises(ConfigError) as err:
        config.load(path, {})
    assert str(err.value).startswith(f"loki.timeout_s in {path}:")
    assert err.value.exit_code == ExitCode.USAGE
    with pytest.raises(ConfigError, match="loki.split in environment variable TRIAGE_LOKI__SPLIT: invalid duration"):
        config.load(None, {"TRIAGE_LOKI__SPLIT": "soon"}, cwd=tmp_path)
    with pytest.raises(ConfigError, match="loki.url in command line: must start with http"):
        config.load(None, {}, {"loki.url": "loki:3100"}, cwd=tmp_path)


def test_unknown_keys_and_bad_toml_are_errors(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text("[loki]\nurll = 'x'\n")
    with pytest.raises(ConfigError, match="loki.urll in .*: unknown setting"):
        config.load(path, {})
    path.write_text("[loki\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        config.load(path, {})


def test_explicit_missing_config_is_an_error_and_implicit_one_is_found(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        config.load(tmp_path / "missing.toml", {})
    with pytest.raises(ConfigError, match="TRIAGE_CONFIG"):
        config.load(None, {"TRIAGE_CONFIG": str(tmp_path / "nope.toml")})
    (tmp_path / "triage.toml").write_text('sources = ["demo"]\n')
    assert config.load(None, {}, cwd=tmp_path).sources == ["demo"]


def test_bad_source_is_rejected():
    with pytest.raises(ConfigError, match="sources.*unknown source 'kafka'"):
        config.load(None, {}, {"sources": ["kafka"]}, cwd=Path("/nonexistent"))
