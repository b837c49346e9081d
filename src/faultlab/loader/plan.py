"""The drill plan: its model, then the scenario files its globs match, each loaded."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from faultlab.errors import Problem
from faultlab.loader.located import validate
from faultlab.loader.positions import Parsed, display_path
from faultlab.loader.scenario import StackCache, load_scenario_file
from faultlab.model import DrillPlan, Scenario
from faultlab.model.document import relative_to_file

__all__ = ["plan_from"]


def _scenario_files(doc: Parsed, path: Path) -> list[Path]:
    files: list[Path] = []
    patterns = doc.data.get("scenarios")
    for i, pattern in enumerate(patterns if isinstance(patterns, list) else []):
        if not isinstance(pattern, str) or not pattern.strip():
            continue
        full = str(relative_to_file(pattern, path.parent))
        matches = sorted(Path(m) for m in glob.glob(full, recursive=True) if os.path.isfile(m))
        if not matches:
            where = display_path(full)
            doc.add(("scenarios", i), f"{pattern!r} matches no file (relative to this plan: {where})")
        files.extend(m for m in matches if m not in files)
    return files


def plan_from(doc: Parsed, path: Path) -> tuple[DrillPlan | None, list[Problem]]:
    """Check a parsed plan and load every scenario it names; the plan, or every problem."""
    plan = validate(doc, DrillPlan, path.parent)
    if not isinstance(doc.data, dict):
        return None, doc.problems
    files = _scenario_files(doc, path)
    problems: list[Problem] = []
    stacks: StackCache = {}
    scenarios: list[Scenario] = []
    ids: dict[str, Path] = {}
    for file in files:
        scenario, found = load_scenario_file(file, stacks)
        problems.extend(found)
        if scenario is not None:
            if scenario.id in ids:
                both = f"{display_path(ids[scenario.id])} and {display_path(file)}"
                doc.add(("scenarios",), f"scenario id {scenario.id!r} is in both {both}")
            ids[scenario.id] = file
            scenarios.append(scenario)
    problems = doc.problems + problems
    if problems or plan is None:
        return None, problems
    plan._source = path
    plan._scenario_files = files
    plan._scenarios = scenarios
    return plan, []
