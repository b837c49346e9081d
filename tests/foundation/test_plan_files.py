"""The files a drill plan names: each a scenario, each once; a mistake is reported at the plan's line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from foundation_paths import ROOT

from faultlab.errors import InputError
from faultlab.loader import load_any, load_plan


@pytest.fixture
def drill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder like the repository's: stacks/, scenarios/ and drills/ (the working directory)."""
    for folder in ("stacks", "scenarios", "drills"):
        (tmp_path / folder).mkdir()
    shutil.copy(ROOT / "stacks" / "trading.yaml", tmp_path / "stacks" / "trading.yaml")
    for name in ("ft-01-db-freeze.yaml", "ft-16-gateway-killed.yaml"):
        shutil.copy(ROOT / "scenarios" / name, tmp_path / "scenarios" / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def plan(root: Path, *entries: str) -> Path:
    path = root / "drills" / "x.yaml"
    lines = ["title: t", "environment: e", "trials: 1", "scenarios:", *(f"  - '{entry}'" for entry in entries)]
    path.write_text("\n".join(lines) + "\n")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(InputError) as info:
        load_plan(path)
    with pytest.raises(InputError) as again:
        load_any(path)
    assert list(map(str, again.value.problems)) == list(map(str, info.value.problems))
    return [str(problem) for problem in info.value.problems]


def test_glob_matching_a_stack_file_is_reported_at_the_plan(drill: Path) -> None:
    path = plan(drill, "../scenarios/ft-01-db-freeze.yaml", "../stacks/*.yaml")
    assert problems(path) == [
        "drills/x.yaml:6:5: scenarios[1]: '../stacks/*.yaml' matches stacks/trading.yaml, "
        "which is a stack file, not a scenario"
    ]


def test_glob_matching_a_plan_is_reported_at_the_plan(drill: Path) -> None:
    path = plan(drill, "../scenarios/*.yaml", "*.yaml")
    assert problems(path) == [
        "drills/x.yaml:6:5: scenarios[1]: '*.yaml' matches drills/x.yaml, which is a drill plan, not a scenario"
    ]


def test_scenario_named_twice(drill: Path) -> None:
    path = plan(drill, "../scenarios/ft-01-db-freeze.yaml", "../scenarios/ft-16-gateway-killed.yaml",
                "../scenarios/ft-01-db-freeze.yaml")
    assert problems(path) == [
        "drills/x.yaml:7:5: scenarios[2]: '../scenarios/ft-01-db-freeze.yaml' matches "
        "scenarios/ft-01-db-freeze.yaml again (scenarios[0] has it already); a plan lists each "
        "scenario once, and `trials:` says how many times each runs"
    ]


def test_scenario_matched_by_two_entries(drill: Path) -> None:
    path = plan(drill, "../scenarios/ft-16-gateway-killed.yaml", "../scenarios/./*.yaml")
    assert problems(path) == [
        "drills/x.yaml:6:5: scenarios[1]: '../scenarios/./*.yaml' matches "
        "scenarios/ft-16-gateway-killed.yaml again (scenarios[0] has it already); a plan lists each "
        "scenario once, and `trials:` says how many times each runs"
    ]


def test_scenario_with_problems_is_pointed_at_from_the_plan(drill: Path) -> None:
    scenario = drill / "scenarios" / "ft-16-gateway-killed.yaml"
    scenario.write_text(scenario.read_text().replace("duration:", "durration:"))
    found = problems(plan(drill, "../scenarios/*.yaml"))
    assert "drills/x.yaml:5:5: scenarios[0]: '../scenarios/*.yaml' matches " \
        "scenarios/ft-16-gateway-killed.yaml, which has problems (listed too)" in found
    assert any(line.startswith("scenarios/ft-16-gateway-killed.yaml:") and "durration" in line for line in found)


def test_distinct_globs_over_distinct_files_are_fine(drill: Path) -> None:
    loaded = load_plan(plan(drill, "../scenarios/ft-0*.yaml", "../scenarios/ft-1*.yaml"))
    assert [s.id for s in loaded.resolved_scenarios] == ["FT-01", "FT-16"]


def test_scenario_whose_stack_is_not_a_stack_file(drill: Path) -> None:
    scenario = drill / "scenarios" / "ft-16-gateway-killed.yaml"
    scenario.write_text(scenario.read_text().replace("../stacks/trading.yaml", "ft-01-db-freeze.yaml"))
    with pytest.raises(InputError) as info:
        load_any(scenario)
    line = next(i for i, text in enumerate(scenario.read_text().splitlines(), 1) if text.startswith("stack:"))
    assert [str(p) for p in info.value.problems] == [
        f"scenarios/ft-16-gateway-killed.yaml:{line}:8: stack: 'ft-01-db-freeze.yaml' is a scenario, "
        "not a stack file"
    ]
