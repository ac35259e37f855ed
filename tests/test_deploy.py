"""cronjobs/, the Dockerfile and the example config, checked offline (no cluster, no Docker engine)."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner

from triage import config
from triage.cli import cli

ROOT = Path(__file__).resolve().parent.parent
CRONJOBS = ROOT / "cronjobs"
K8S_VERSION = "1.34.0"
NAMESPACED = {"PersistentVolumeClaim", "CronJob", "ConfigMap", "Secret"}


def render_kustomization(folder: Path) -> list[dict]:
    """What `kustomize build` makes of our kustomization (the features it uses), rendered in Python."""
    spec = yaml.safe_load((folder / "kustomization.yaml").read_text())
    docs = [doc for name in spec["resources"] for doc in yaml.safe_load_all((folder / name).read_text()) if doc]
    renames = {}
    for generator in spec.get("configMapGenerator", []):
        data = {}
        for entry in generator["files"]:
            key, _, path = entry.partition("=") if "=" in entry else (Path(entry).name, "", entry)
            data[key] = (folder / path).read_text()
        digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:10]
        renames[generator["name"]] = f"{generator['name']}-{digest}"
        docs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": renames[generator["name"]]},
                     "data": data})
    images = {image["name"]: f"{image['newName']}:{image['newTag']}" for image in spec.get("images", [])}
    labels = {k: v for entry in spec.get("labels", []) for k, v in entry["pairs"].items()}
    rendered = []
    for doc in docs:
        doc = copy.deepcopy(doc)
        if doc["kind"] in NAMESPACED and spec.get("namespace"):
            doc["metadata"]["namespace"] = spec["namespace"]
        doc["metadata"].setdefault("labels", {}).update(labels)
        for container in _containers(doc):
            container["image"] = images.get(container["image"], container["image"])
        for volume in _pod(doc).get("volumes", []) if _pod(doc) else []:
            if "configMap" in volume:
                volume["configMap"]["name"] = renames.get(volume["configMap"]["name"], volume["configMap"]["name"])
        rendered.append(doc)
    return rendered


def _pod(doc: dict) -> dict | None:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return None


def _containers(doc: dict) -> list[dict]:
    pod = _pod(doc)
    return pod["containers"] if pod else []


@pytest.fixture(scope="module")
def rendered() -> list[dict]:
    return render_kustomization(CRONJOBS)


def test_every_rendered_manifest_is_valid_for_the_pinned_kubernetes(rendered):
    kinds = sorted(doc["kind"] for doc in rendered)
    assert kinds == ["ConfigMap", "CronJob", "CronJob", "Namespace", "PersistentVolumeClaim"]
    for doc in rendered:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_secret_template_is_valid_and_holds_no_real_value():
    doc = yaml.safe_load((CRONJOBS / "secret.example.yaml").read_text())
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    assert all("REPLACE" in value for value in doc["stringData"].values())


def test_cronjobs_run_hardened_on_the_heavy_node_and_share_the_state(rendered):
    jobs = {doc["metadata"]["name"]: doc for doc in rendered if doc["kind"] == "CronJob"}
    assert set(jobs) == {"triage-hourly", "triage-nightly"}
    minutes = set()
    for job in jobs.values():
        spec = job["spec"]
        assert spec["concurrencyPolicy"] == "Forbid" and spec["timeZone"] and spec["startingDeadlineSeconds"] > 0
        assert spec["jobTemplate"]["spec"]["activeDeadlineSeconds"] > 0 and "backoffLimit" in spec["jobTemplate"]["spec"]
        minutes.add(spec["schedule"].split()[0])
        pod = _pod(job)
        assert pod["nodeSelector"] == {"hardware": "heavy"}
        assert {"key": "heavy", "operator": "Equal", "value": "true", "effect": "NoSchedule"} in pod["tolerations"]
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        container = pod["containers"][0]
        assert container["image"] == "ghcr.io/example/triage:0.1.0"
        hardening = container["securityContext"]
        assert hardening == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                             "capabilities": {"drop": ["ALL"]}}
        assert container["resources"]["requests"] and container["resources"]["limits"]
        claims = [v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v]
        assert claims == ["triage-state"]
        assert any(v.get("emptyDir") is not None for v in pod["volumes"]), "a writable /tmp"
    assert len(minutes) == 2, "hourly and nightly start at different minutes"


@pytest.mark.parametrize("name", ["triage-hourly", "triage-nightly"])
def test_container_args_are_accepted_by_the_real_cli(rendered, name):
    job = next(doc for doc in rendered if doc["metadata"]["name"] == name)
    args = _containers(job)[0]["args"]
    context = cli.make_context("triage", list(args), resilient_parsing=False)
    command = cli.get_command(context, args[0])
    parsed = command.make_context(args[0], list(args[1:]), parent=context)
    assert parsed.params["schedule"] == name.split("-")[1]


def test_the_cluster_config_loads_and_its_prompt_is_the_shipped_one(rendered):
    configmap = next(doc for doc in rendered if doc["kind"] == "ConfigMap")
    path = Path("/nonexistent-dir/triage.toml")
    data = tomllib.loads(configmap["data"]["triage.toml"])
    assert data["llm"]["mode"] == "remote" and data["state"]["path"].startswith("/var/lib/triage")
    assert configmap["data"]["card.j2"] == (ROOT / "prompts" / "card.j2").read_text(), \
        "cronjobs/config/prompts/card.j2 must be a copy of prompts/card.j2"


def test_the_example_config_loads_and_names_every_setting():
    cfg = config.load(ROOT / "triage.example.toml", {})
    assert cfg.sources == ["loki"]
    text = (ROOT / "triage.example.toml").read_text()
    missing = []
    for dotted in _all_fields(config.Config):
        section, _, key = dotted.rpartition(".")
        block = text if not section else _section_text(text, section)
        if not re.search(rf"^#? ?\[?\[?{re.escape(key)}\]?\]? ?=?", block, re.M) and f"[[{key}]]" not in block:
            missing.append(dotted)
    assert missing == []


def _all_fields(model, prefix: str = "") -> list[str]:
    fields = []
    for name, field in model.model_fields.items():
        if name == "config_file":
            continue
        key = field.alias or name
        annotation = field.annotation
        if isinstance(annotation, type) and hasattr(annotation, "model_fields") and key != "mute":
            fields.extend(_all_fields(annotation, f"{prefix}{key}."))
        else:
            fields.append(prefix + key)
    return fields


def _section_text(text: str, section: str) -> str:
    match = re.search(rf"^\[{re.escape(section)}\]\n(.*?)(?=^\[|\Z)", text, re.M | re.S)
    return match.group(1) if match else ""


def test_config_show_masks_secrets(tmp_path):
    secret_file = tmp_path / "hook"
    secret_file.write_text("https://hooks.slack.com/services/T/B/SECRETVALUE\n")
    result = CliRunner().invoke(cli, ["config", "show"], env={
        "TRIAGE_SLACK__WEBHOOK_URL_FILE": str(secret_file), "TRIAGE_LOKI__PASSWORD": "hunter2",
        "TRIAGE_EMAIL__PASSWORD": "p4ss"})
    assert result.exit_code == 0
    assert "SECRETVALUE" not in result.output and "hunter2" not in result.output and "p4ss" not in result.output
    assert result.output.count('"***"') == 3


def test_a_secret_given_twice_is_an_error(tmp_path):
    secret_file = tmp_path / "pw"
    secret_file.write_text("x")
    with pytest.raises(config.ConfigError, match="both set"):
        config.load(None, {"TRIAGE_LOKI__PASSWORD": "a", "TRIAGE_LOKI__PASSWORD_FILE": str(secret_file)}, cwd=tmp_path)


@pytest.fixture
def world_path():
    """A folder an unprivileged user can reach (pytest's tmp_path sits under a 0700 folder)."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="triage-image-", dir="/tmp"))
    os.chmod(path, 0o755)
    yield path
    for child in [path, *path.rglob("*")]:
        if child.is_dir():
            os.chmod(child, 0o755)
    shutil.rmtree(path, ignore_errors=True)


def test_image_install_and_entrypoint_replayed_as_a_non_root_user(world_path):
    """What the Dockerfile does, minus Docker: install the built wheel (not the checkout), copy the
    prompts, and run the entrypoint as an unprivileged user with a read-only install."""
    tmp_path = world_path
    wheel_dir = tmp_path / "wheel"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(wheel_dir), str(ROOT)], check=True, capture_output=True)
    site = tmp_path / "opt" / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site),
                    str(next(wheel_dir.glob("*.whl")))], check=True, capture_output=True)
    shutil.copytree(ROOT / "prompts", tmp_path / "opt" / "prompts")
    # The job's dependencies, copied where the unprivileged user can read them (the test venv may sit
    # in a folder only its owner can enter); not the checkout, not the LLM or bench extras.
    deps_dir = tmp_path / "deps"
    for source in (p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()):
        shutil.copytree(source, deps_dir, dirs_exist_ok=True, symlinks=True,
                        ignore=shutil.ignore_patterns("xllamacpp*", "drain3*", "triage*", "__editable__*", "_pytest",
                                                      "pytest*", "hypothesis*", "aiosmtpd*", "kubernetes_validate*"))
    deps = [str(deps_dir)]
    work = tmp_path / "work"
    work.mkdir()
    os.chmod(tmp_path, 0o755)
    for path in [tmp_path / "opt", *(tmp_path / "opt").rglob("*"), deps_dir, *deps_dir.rglob("*")]:
        if not path.is_symlink():
            os.chmod(path, 0o555 if path.is_dir() else 0o444)
    os.chmod(work, 0o777)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": os.pathsep.join([str(site), *deps]), "HOME": str(work),
           "TRIAGE_LLM__MODE": "remote", "TRIAGE_LLM__URL": "http://127.0.0.1:9",
           "TRIAGE_LLM__PROMPTS_DIR": str(tmp_path / "opt" / "prompts"), "PYTHONDONTWRITEBYTECODE": "1"}
    prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
    entry = [*prefix, sys.executable, "-c", "from triage.cli import main; main()"]
    version = subprocess.run([*entry, "--version"], capture_output=True, text=True, env=env, cwd=work)
    assert version.returncode == 0 and "0.1.0" in version.stdout, version.stderr
    run = subprocess.run([*entry, "run", "--source", "demo", "--since", "30m", "--state", str(work / "s.db"),
                          "--digest-dir", str(work / "d"), "--report-json", str(work / "r.json")],
                         capture_output=True, text=True, env=env, cwd=work)
    assert run.returncode == 0, run.stderr
    report = json.loads((work / "r.json").read_text())
    assert report["lines"] > 0 and report["llm"]["fallbacks"] > 0, "no model in the image: cards fall back"
    assert Path(report["digest_path"]).read_text().startswith("# triage digest")
