"""Meta-tests that keep the layout rules of STYLE.md true."""

import ast
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from triage.cli import cli

PACKAGE = Path(__file__).resolve().parent.parent / "triage"
PURE = ["extract.py", "redact.py", "redact_rules.py", "digest/__init__.py", "digest/cards.py", "digest/day.py",
        "digest/escape.py", "digest/explore.py", "digest/heading.py", "digest/html.py", "digest/markdown.py",
        "digest/model.py", "digest/plain.py", "digest/slack_blocks.py", "digest/times.py", "digest/varies.py",
        "summarize/facts.py", "state/detect.py", "state/countplan.py", "state/coverplan.py", "state/window.py", "cluster/masking.py",
        "cluster/miner.py"]
FORBIDDEN = {"requests", "sqlite3", "sqlite_utils", "smtplib", "click", "socket", "subprocess"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("module", PURE)
def test_pure_stages_do_no_io_and_read_no_clock(module):
    path = PACKAGE / module
    source = path.read_text()
    assert not imported_modules(path) & FORBIDDEN
    assert "os.environ" not in source and "datetime.now" not in source and "time.time()" not in source


def test_click_only_in_cli_and_no_print_or_exit_in_the_library():
    for path in PACKAGE.rglob("*.py"):
        if path.name in ("cli.py", "__main__.py", "server_main.py"):  # server_main is a child process's entry
            continue
        source = path.read_text()
        assert "click" not in imported_modules(path), path
        assert not re.search(r"\bsys\.exit\(|(?<![\w.])print\(", source), path


def _leaf_commands(group, path=()):
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            assert command.help and "Example:" in command.help, name
            yield from _leaf_commands(command, path + (name,))
        else:
            yield path + (name,), command


def test_every_command_has_help_with_an_example():
    runner = CliRunner()
    leaves = list(_leaf_commands(cli))
    assert len(leaves) >= 6
    for path, command in leaves:
        assert command.help and "Example:" in command.help, path
        result = runner.invoke(cli, [*path, "--help"])
        assert result.exit_code == 0 and "--config" in result.output and "--state" in result.output, path


def test_exit_codes_are_documented_in_help_and_readme():
    result = CliRunner().invoke(cli, ["--help"])
    readme = (PACKAGE.parent / "README.md").read_text()
    for code in ("0", "1", "2", "3", "4", "5", "130", "143"):
        assert re.search(rf"^\s+{code}\s", result.output, re.M), code
        assert f"| {code} |" in readme
