"""The README's commands and the CI script work on a fresh Debian machine, where the
interpreter is ``python3`` and neither ``python`` nor ``pip`` exists."""

from __future__ import annotations

import re
import shlex

from foundation_paths import ROOT

SHELL_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _commands(script: str) -> list[list[str]]:
    """Every simple command of a shell text (comments dropped, split at ``&&``, ``;``, ``|``)."""
    commands = []
    for line in script.splitlines():
        words = shlex.split(line, comments=True)
        command: list[str] = []
        for word in [*words, "&&"]:
            if word in ("&&", ";", "|", "||"):
                if command:
                    commands.append(command)
                command = []
            else:
                command.append(word)
    return commands


def _readme_blocks() -> list[str]:
    return SHELL_BLOCK.findall((ROOT / "README.md").read_text())


def _ci_script() -> str:
    return (ROOT / ".ci" / "run").read_text()


def test_every_command_runs_the_interpreter_as_python3() -> None:
    for where, text in [("README.md", "\n".join(_readme_blocks())), (".ci/run", _ci_script())]:
        for command in _commands(text):
            assert command[0] not in ("python", "pip", "pip3"), f"{where}: {shlex.join(command)}"


def test_the_quick_start_is_two_commands_install_and_drill_then_the_tests() -> None:
    quick_start = _readme_blocks()[0]
    lines = [line for line in quick_start.splitlines() if line.strip()]
    assert lines == [
        "python3 -m pip install -e '.[test]' && faultlab drill drills/smoke.yaml",
        "python3 -m pytest",
    ]


def test_ci_runs_lint_types_and_the_readme_test_command() -> None:
    commands = _commands(_ci_script())
    assert ["python3", "-m", "pytest"] in commands
    assert ["python3", "-m", "ruff", "check", "src", "tests", "benchmarks", "examples"] in commands
    assert ["python3", "-m", "mypy"] in commands
    assert ["python3", "-m", "pytest", "-m", "docker"] in commands  # the container tier, a run of its own
