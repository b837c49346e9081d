"""The installed ``faultlab`` command, run as a user runs it: exit codes and output."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from foundation_paths import EXAMPLES, ROOT

FAULTLAB = shutil.which("faultlab")
pytestmark = pytest.mark.skipif(FAULTLAB is None, reason="faultlab is not installed (pip install -e '.[test]')")

SIX_MISTAKES = """\
id: FT-99
title: Six mistakes in one file
stack: {stack}
load: {{users: 5, spawn_rate: 5}}
steady_state:
  success_rate: {{min: 0.99}}
  p99_latency: {{max: 250}}
timeline:
  - {{at: 10s, fault: db_stal, target: db, for: 20s}}
  - {{at: 10s, fault: latency, target: gateway-dbb, for: 10s, latency: 200ms}}
  - {{at: 40s, fault: partition, target: router-exchange, for: 30s}}
  - {{at: 5s, fault: db_stall, target: db, for: 5s, mode: frozen}}
duration: 60s
tagets: {{detect_within: 2s}}
"""


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FAULTLAB, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_six_mistakes_reported_at_once_with_lines(tmp_path: Path) -> None:
    scenario = tmp_path / "six.yaml"
    scenario.write_text(SIX_MISTAKES.format(stack=ROOT / "stacks" / "trading.yaml"))
    result = run("validate", str(scenario))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    expected = [
        (14, "tagets", "unknown key 'tagets'; did you mean 'targets'?"),  # typo in a key
        (7, "steady_state.p99_latency.max", "250 has no unit"),  # wrong unit
        (9, "timeline[0].fault", "unknown fault kind 'db_stal'; did you mean 'db_stall'?"),
        (10, "timeline[1].target", "unknown target 'gateway-dbb'; did you mean 'gateway-db'?"),
        (11, "timeline[2].for", "after the end of the run"),  # past the duration
        (12, "timeline[3].mode", "unknown mode 'frozen'; did you mean 'freeze'?"),  # bad parameter
    ]
    for line, path, fragment in expected:
        pattern = re.compile(rf"^{re.escape(str(scenario))}:{line}:\d+: {re.escape(path)}: .*{re.escape(fragment)}")
        assert any(pattern.search(text) for text in lines), f"no {path} at line {line}:\n{result.stderr}"
    assert lines[-1] == "faultlab: 6 problems found"


def test_examples_validate(tmp_path: Path) -> None:
    result = run("validate", "stacks", "scenarios", "drills")
    assert result.returncode == 0, result.stderr
    assert "ok  scenarios/ft-01-db-freeze.yaml (scenario FT-01)" in result.stdout
    assert "ok  stacks/trading.yaml (stack trading)" in result.stdout
    assert "ok  drills/smoke.yaml (drill plan, 5 scenarios)" in result.stdout
    assert len(result.stdout.splitlines()) == len(EXAMPLES)


def test_validate_glob_and_missing_path() -> None:
    result = run("validate", "scenarios/ft-0*.yaml", "no/such/file.yaml")
    assert result.returncode == 2
    assert "ok  scenarios/ft-08-router-exchange-partition.yaml (scenario FT-08)" in result.stdout
    assert "no/such/file.yaml: no such file or folder" in result.stderr


def test_validate_corpus_folder_reports_every_file() -> None:
    result = run("validate", "tests/foundation/corpus")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    files_with_problems = {line.split(":", 1)[0] for line in result.stderr.splitlines()[:-1]}
    corpus = {f"tests/foundation/corpus/{p.name}" for p in (ROOT / "tests/foundation/corpus").glob("*.yaml")}
    assert corpus <= files_with_problems


def test_help_and_version() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("validate", "schema", "kinds"):
        assert command in result.stdout
        sub = run(command, "--help")
        assert sub.returncode == 0 and "usage: faultlab " + command in sub.stdout
    version = run("--version")
    assert version.returncode == 0 and version.stdout.startswith("faultlab ")


def test_kinds_lists_every_kind_with_parameters() -> None:
    result = run("kinds")
    assert result.returncode == 0, result.stderr
    for kind in ("db_stall", "partition", "process_kill", "load_spike", "job_crash", "latency"):
        assert re.search(rf"^{kind}\s", result.stdout, re.M), kind
    assert "mode: freeze|lock|network (default freeze)" in result.stdout
    assert "latency: duration (required)" in result.stdout
    as_json = json.loads(run("kinds", "--json").stdout)
    assert {row["kind"] for row in as_json} >= {"db_stall", "slicer", "load_shape"}


def test_schema_prints_and_writes(tmp_path: Path) -> None:
    result = run("schema", "--kind", "scenario")
    assert result.returncode == 0
    assert json.loads(result.stdout)["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    written = run("schema", "--out", str(tmp_path))
    assert written.returncode == 0, written.stderr
    for name in ("stack.schema.json", "scenario.schema.json", "drill-plan.schema.json"):
        assert (tmp_path / name).read_text() == (ROOT / "schemas" / name).read_text()


def test_module_entry_point_runs_too() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "faultlab", "validate", "stacks/trading.yaml"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
