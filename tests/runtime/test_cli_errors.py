"""How the ``faultlab`` command reports what went wrong: an infrastructure error once, an
unexpected error as one line and a traceback file, and a reader that leaves early as nothing."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

import faultlab.cli.validate
from faultlab.cli import main
from faultlab.errors import ExitCode

HERE = Path(__file__).parent
FAULTLAB = shutil.which("faultlab")
needs_faultlab = pytest.mark.skipif(FAULTLAB is None, reason="faultlab is not installed (pip install -e '.[test]')")

SCENARIO = """\
id: ERR-01
title: A run that cannot go well
stack: stack.yaml
canary: {rate: 20/s, timeout: 200ms}
steady_state:
  success_rate: {min: 1.0}
timeline:
  - {at: 1s, fault: process_pause, target: svc, for: 1s}
duration: 3s
hold: 1s
"""


def _write(tmp_path: Path, stack: str) -> Path:
    (tmp_path / "stack.yaml").write_text(textwrap.dedent(stack))
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(SCENARIO)
    return scenario


def _faultlab(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert FAULTLAB is not None
    env = {**os.environ, "PYTHONPATH": str(HERE) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([FAULTLAB, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


@needs_faultlab
@pytest.mark.processes
def test_an_infrastructure_error_is_printed_once(tmp_path: Path) -> None:
    scenario = _write(tmp_path, """\
        name: crashing
        services:
          svc:
            command: [python, -c, "import sys; print('boom: no configuration', flush=True); sys.exit(3)"]
            port: auto
            ready: {http: /, timeout: 20s}
            restart: always
    """)
    result = _faultlab(tmp_path, "run", str(scenario), "--reports", str(tmp_path / "reports"))
    assert result.returncode == ExitCode.INFRASTRUCTURE, result.stderr
    assert result.stderr.count("boom: no configuration") == 1, result.stderr
    assert result.stderr.count("exited with code 3") == 1, result.stderr
    assert "Traceback" not in result.stderr


@needs_faultlab
@pytest.mark.processes
def test_an_unexpected_error_in_a_run_is_one_line_and_a_traceback_file(tmp_path: Path) -> None:
    scenario = _write(tmp_path, """\
        name: buggy
        services:
          svc:
            command: [python, -m, http.server, "${port}", --bind, 127.0.0.1, --directory, "${run_dir}"]
            port: auto
            ready: {http: /, timeout: 20s}
        plugin: buggy_plugin
    """)
    result = _faultlab(tmp_path, "run", str(scenario), "--reports", str(tmp_path / "reports"))
    assert result.returncode == ExitCode.INFRASTRUCTURE, result.stderr
    assert "Traceback" not in result.stderr
    named = [line for line in result.stderr.splitlines() if "ZeroDivisionError" in line]
    assert len(named) == 1, result.stderr
    (saved,) = (tmp_path / "reports" / "ERR-01").glob("*/harness-error.txt")
    assert str(saved) in named[0], named[0]
    written = saved.read_text()
    assert written.startswith("Traceback") and "buggy_plugin.py" in written, written
    assert "the plugin divided by zero" in written


def test_an_internal_error_outside_a_run_is_one_line_and_a_traceback_file(monkeypatch, capsys) -> None:
    def broken(args: object) -> ExitCode:
        raise KeyError("no such table")

    monkeypatch.setattr(faultlab.cli.validate, "_kinds", broken)
    assert main(["kinds"]) == ExitCode.INFRASTRUCTURE
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "faultlab kinds" in err and "KeyError" in err, err
    path = Path(err.split("traceback in ", 1)[1].split(";", 1)[0])
    try:
        assert "raise KeyError" in path.read_text()
    finally:
        path.unlink()


def _into_head(command: list[str]) -> tuple[str, str, int]:
    """``faultlab COMMAND | head -1`` through a real pipe that holds one page (4 KB).
    Standard output is buffered as on a user's machine (PYTHONUNBUFFERED turns a write cut
    short by a closed pipe into a silent short write instead of an error)."""
    assert FAULTLAB is not None
    env = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    head = subprocess.Popen(["head", "-1"], stdin=read_end, stdout=subprocess.PIPE, text=True)
    command_proc = subprocess.Popen([FAULTLAB, *command], stdout=write_end, stderr=subprocess.PIPE, text=True,
                                    env=env)
    os.close(read_end)
    os.close(write_end)
    first, _ = head.communicate(timeout=60)
    _, err = command_proc.communicate(timeout=60)
    return first, err, command_proc.returncode


needs_pipe_size = pytest.mark.skipif(not hasattr(fcntl, "F_SETPIPE_SZ"), reason="needs Linux's F_SETPIPE_SZ")


@needs_faultlab
@needs_pipe_size
@pytest.mark.parametrize("command", [["kinds", "--json"], ["schema"]])
def test_a_reader_that_leaves_early_ends_the_command_quietly(command: list[str]) -> None:
    """Output of more than two pages: ``head`` takes one page and leaves while the command
    is still writing, so the command always meets the closed pipe."""
    first, err, code = _into_head(command)
    assert first.strip(), "head read nothing"
    assert err == "", err
    assert code == ExitCode.INTERRUPTED


@needs_faultlab
@needs_pipe_size
def test_kinds_into_head_is_quiet() -> None:
    """The table of ``faultlab kinds`` (about 6 KB) meets the closed pipe only when ``head``
    leaves before the last page is written: whichever happens, nothing is printed."""
    first, err, code = _into_head(["kinds"])
    assert first.startswith("KIND")
    assert err == "", err
    assert code in (ExitCode.OK, ExitCode.INTERRUPTED)
