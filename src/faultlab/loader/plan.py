"""The drill plan: its model, then the scenario files its globs match, each loaded.

A mistake about a file the plan names (a glob matching a stack file or a plan, a scenario
named twice, a scenario with problems) is reported at the plan's own line, so the person
reading the message knows which entry pulled the file in.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from faultlab.errors import Problem
from faultlab.loader.kind import KIND_WORDS, document_kind
from faultlab.loader.located import validate
from faultlab.loader.positions import Parsed, display_path, read_document
from faultlab.loader.scenario import StackCache, scenario_from
from faultlab.model import DrillPlan, Scenario
from faultlab.model.document import relative_to_file

__all__ = ["plan_from"]


@dataclass(frozen=True)
class _Match:
    """A file matched by ``scenarios[index]`` (the entry as written: ``pattern``)."""

    index: int
    pattern: str
    file: Path

    def says(self) -> str:
        return f"{self.pattern!r} matches {display_path(self.file)}"


def _matches(doc: Parsed, path: Path) -> list[_Match]:
    """Every file the ``scenarios`` entries match, each once, in order; repeats reported."""
    found: dict[Path, _Match] = {}
    patterns = doc.data.get("scenarios")
    for i, pattern in enumerate(patterns if isinstance(patterns, list) else []):
        if not isinstance(pattern, str) or not pattern.strip():
            continue
        full = str(relative_to_file(pattern, path.parent))
        files = sorted(Path(m) for m in glob.glob(full, recursive=True) if os.path.isfile(m))
        if not files:
            where = display_path(full)
            doc.add(("scenarios", i), f"{pattern!r} matches no file (relative to this plan: {where})")
        for file in files:
            match = _Match(i, pattern, file)
            first = found.get(file.resolve())
            if first is None:
                found[file.resolve()] = match
            elif first.index != i:
                doc.add(
                    ("scenarios", i),
                    f"{match.says()} again (scenarios[{first.index}] has it already); a plan lists "
                    "each scenario once, and `trials:` says how many times each runs",
                )
    return list(found.values())


def _scenario(doc: Parsed, match: _Match, stacks: StackCache) -> tuple[Scenario | None, list[Problem]]:
    """The scenario in a matched file; a file that is not a scenario is the plan's problem."""
    scenario_doc = read_document(match.file)
    if scenario_doc.data is None:
        doc.add(("scenarios", match.index), f"{match.says()}, which has problems (listed too)")
        return None, scenario_doc.problems
    kind = document_kind(scenario_doc.data, match.file)
    if kind in ("stack", "plan", "rules"):
        doc.add(("scenarios", match.index), f"{match.says()}, which is {KIND_WORDS[kind]}, not a scenario")
        return None, []
    scenario, problems = scenario_from(scenario_doc, match.file, stacks)
    if problems:
        doc.add(("scenarios", match.index), f"{match.says()}, which has problems (listed too)")
    return scenario, problems


def plan_from(doc: Parsed, path: Path, runtime: str | None = None) -> tuple[DrillPlan | None, list[Problem]]:
    """Check a parsed plan and load every scenario it names; the plan, or every problem
    (``runtime`` overrides the ``runtime:`` of every stack file its scenarios use)."""
    plan = validate(doc, DrillPlan, path.parent)
    if not isinstance(doc.data, dict):
        return None, doc.problems
    problems: list[Problem] = []
    stacks = StackCache(runtime)
    scenarios: list[Scenario] = []
    files: list[Path] = []
    ids: dict[str, Path] = {}
    for match in _matches(doc, path):
        scenario, found = _scenario(doc, match, stacks)
        problems.extend(found)
        if scenario is None:
            continue
        if scenario.id in ids:
            both = f"{display_path(ids[scenario.id])} and {display_path(match.file)}"
            doc.add(("scenarios",), f"scenario id {scenario.id!r} is in both {both}")
        ids[scenario.id] = match.file
        scenarios.append(scenario)
        files.append(match.file)
    _check_programme(doc, path)
    problems = doc.problems + problems
    if problems or plan is None:
        return None, problems
    plan._source = path
    plan._scenario_files = files
    plan._scenarios = scenarios
    return plan, []


def _check_programme(doc: Parsed, path: Path) -> None:
    """The ``programme`` a plan names must be a programme file (loaded in full when the drill
    runs: loading it here would load this plan again)."""
    value = doc.data.get("programme")
    if not isinstance(value, str) or not value.strip():
        return
    programme = relative_to_file(value, path.parent)
    if not programme.is_file():
        doc.add(("programme",), f"programme file not found: {display_path(programme)} (relative to this plan)")
        return
    found = read_document(programme)
    kind = document_kind(found.data, programme) if isinstance(found.data, dict) else None
    if found.data is not None and kind != "programme":
        doc.add(("programme",), f"{value!r} is {KIND_WORDS.get(kind or '', 'not a document faultlab knows')}, "
                                "not a programme")
