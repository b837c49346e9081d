"""Loading the YAML documents: every problem at once, each with file:line:col and YAML path.

    load_stack(path)     -> Stack
    load_scenario(path)  -> Scenario, with its Stack attached (``scenario.resolved_stack``)
    load_plan(path)      -> DrillPlan, with its scenarios loaded (``plan.resolved_scenarios``)
    load_runbook(path)   -> Runbook (actions and conditions checked against the registries)
    load_operator_script(path) -> OperatorScript (the people of a game day and their answers)
    load_any(path)       -> whichever of these the file is
    load_rules(path)     -> the alert names of a Prometheus rules file (a stack's ``monitoring.rules``)
    load_programme(path) -> Programme, with its plan loaded (``programme.resolved_plan``)

Each takes ``runtime=``, the command line's ``--runtime``: it replaces the ``runtime:`` of
every stack file loaded, *before* the runtime's checks run, so a stack of ``image:``
services is judged by the docker runtime that will run it, and a fault kind by what the
chosen runtime offers. An unregistered name is a problem of its own.

Each raises :class:`faultlab.errors.InputError` holding every :class:`~faultlab.errors.Problem`
found, and nothing else, whatever the file holds. The steps, one module each:

1. ``positions``: read and parse the YAML into plain values, remembering where every key
   and value sits (YAML 1.2 scalars: only ``true``/``false`` are booleans, so
   ``restart: no`` is text);
2. ``located``: structural check, the pydantic model, whose errors are located through
   those positions and said in words;
3. ``stack``, ``scenario``, ``plan``: semantic checks on whatever parts are well-formed, so
   that one mistake does not hide another: names exist, the stack file loads, fault kinds
   and their parameters, timing, the files a plan names.
"""

from __future__ import annotations

import os
from pathlib import Path

from faultlab.errors import InputError, Problem
from faultlab.loader.kind import document_kind
from faultlab.loader.plan import plan_from
from faultlab.loader.positions import Parsed, parse_yaml, read_document
from faultlab.loader.positions import display_path as display_path  # used by messages elsewhere
from faultlab.loader.positions import format_path as format_path
from faultlab.loader.programme import programme_from
from faultlab.loader.rules import read_rules
from faultlab.loader.runbook import load_operator_script_file, load_runbook_file, runbook_from
from faultlab.loader.scenario import StackCache, load_scenario_file, scenario_from
from faultlab.loader.stack import load_stack_file
from faultlab.model import DrillPlan, Scenario, Stack
from faultlab.model.operators import OperatorScript
from faultlab.model.programme import Programme
from faultlab.model.runbook import Runbook
from faultlab.model.types import describe

RUNTIME_OPTION = "--runtime"
"""How the runtime override is written on the command line (problems about it name it)."""

__all__ = ["load_stack", "load_scenario", "load_plan", "load_runbook", "load_operator_script", "load_programme",
           "load_any", "load_rules", "check_runtime_override", "document_kind", "Parsed", "parse_yaml"]


def _absolute(path: str | os.PathLike[str]) -> Path:
    return Path(os.path.abspath(path))


def _unique(problems: list[Problem]) -> list[Problem]:
    return sorted(set(problems))


def check_runtime_override(runtime: str | None) -> None:
    """Refuse a ``--runtime`` that names no registered runtime (InputError, exit code 2)."""
    from faultlab.registry import runtimes

    if runtime is None or runtime in runtimes:
        return
    broken = runtimes.broken.get(runtime)
    message = f"runtime {runtime!r} could not be loaded: {broken}" if broken else runtimes.unknown_message(runtime)
    raise InputError([Problem(RUNTIME_OPTION, 0, 0, "", message)])


def load_stack(path: str | os.PathLike[str], *, runtime: str | None = None) -> Stack:
    """Load and check a stack file; raise InputError with every problem found."""
    check_runtime_override(runtime)
    stack, problems = load_stack_file(_absolute(path), runtime)
    if problems or stack is None:
        raise InputError(problems)
    return stack


def load_scenario(path: str | os.PathLike[str], *, runtime: str | None = None) -> Scenario:
    """Load and check a scenario and its stack; raise InputError with every problem found."""
    check_runtime_override(runtime)
    scenario, problems = load_scenario_file(_absolute(path), StackCache(runtime))
    if problems or scenario is None:
        raise InputError(_unique(problems))
    return scenario


def load_plan(path: str | os.PathLike[str], *, runtime: str | None = None) -> DrillPlan:
    """Load and check a drill plan and every scenario it names; raise InputError with all problems."""
    check_runtime_override(runtime)
    path = _absolute(path)
    doc = read_document(path)
    if doc.data is None:
        raise InputError(doc.problems)
    plan, problems = plan_from(doc, path, runtime)
    if problems or plan is None:
        raise InputError(_unique(problems))
    return plan


def load_rules(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """Check a Prometheus rules file's shape; its alert names, or InputError with every problem."""
    alerts, problems = read_rules(_absolute(path))
    if problems:
        raise InputError(problems)
    return alerts


def load_runbook(path: str | os.PathLike[str]) -> Runbook:
    """Load and check a runbook on its own (no stack: the parts of a stack it names are
    checked when a scenario names it); raise InputError with every problem found."""
    runbook, problems = load_runbook_file(_absolute(path))
    if problems or runbook is None:
        raise InputError(_unique(problems))
    return runbook


def load_operator_script(path: str | os.PathLike[str]) -> OperatorScript:
    """Load and check an operator script (ids of steps and rules are checked against the
    scenarios it answers by the command that uses it); raise InputError with every problem."""
    script, _, problems = load_operator_script_file(_absolute(path))
    if problems or script is None:
        raise InputError(_unique(problems))
    return script


def load_programme(path: str | os.PathLike[str]) -> Programme:
    """Load and check a programme and the drill plan it names; raise InputError with all problems."""
    path = _absolute(path)
    doc = read_document(path)
    if doc.data is None:
        raise InputError(doc.problems)
    programme, problems = programme_from(doc, path)
    if problems or programme is None:
        raise InputError(_unique(problems))
    return programme


def load_any(path: str | os.PathLike[str], *,
             runtime: str | None = None) -> Stack | Scenario | DrillPlan | Runbook | OperatorScript | Programme:
    """Load a stack, scenario, drill plan, runbook, operator script or programme, telling which
    by its keys; ``runtime`` replaces every stack file's ``runtime:`` (the command line's ``--runtime``)."""
    check_runtime_override(runtime)
    path = _absolute(path)
    doc = read_document(path)
    if doc.data is None:
        raise InputError(doc.problems)
    if not isinstance(doc.data, dict):
        doc.add((), f"expected a mapping of keys (a stack, scenario or drill plan), got {describe(doc.data)}")
        raise InputError(doc.problems)
    kind = document_kind(doc.data, path)
    loaded: Stack | Scenario | DrillPlan | Runbook | OperatorScript | Programme | None
    if kind == "stack":
        loaded, problems = load_stack_file(path, runtime)
    elif kind == "scenario":
        loaded, problems = scenario_from(doc, path, StackCache(runtime))
    elif kind == "plan":
        loaded, problems = plan_from(doc, path, runtime)
    elif kind == "rules":
        doc.add((), "this is a Prometheus rules file (a stack's `monitoring.rules`), not a stack, scenario or "
                    "drill plan; check it with `faultlab validate`")
        raise InputError(doc.problems)
    elif kind == "runbook":
        loaded, problems = runbook_from(doc, path, None)
    elif kind == "operators":
        loaded, _, problems = load_operator_script_file(path)
    elif kind == "programme":
        loaded, problems = programme_from(doc, path)
    else:
        doc.add(
            (),
            "cannot tell what this document is: a stack has `services:`, a scenario `timeline:`, "
            "a drill plan `scenarios:`, a programme `operations:`",
        )
        raise InputError(doc.problems)
    if problems or loaded is None:
        raise InputError(_unique(problems))
    return loaded
