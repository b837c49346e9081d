"""Runbooks, decision rules and operator scripts: their models, then names against the registries.

A scenario's ``runbook:`` file is loaded here with its own problems (file:line of the runbook
file); every action (a step's ``action:``, a rule's ``then``) must be registered and its
``with:`` fit the action's parameters; every condition (a check step's ``check``, a rule's
``when``, a start's ``when``) must be registered and its parameters fit; the parts of the
stack they name must exist. An operator script's step and decision ids must be those of the
runbooks and rules it answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from faultlab.errors import Problem
from faultlab.loader.located import located, validate
from faultlab.loader.positions import Loc, Parsed, display_path, read_document
from faultlab.model import Stack
from faultlab.model.document import relative_to_file
from faultlab.model.operators import OperatorScript
from faultlab.model.runbook import Runbook
from faultlab.registry import actions, conditions, unknown_name_message

__all__ = ["load_runbook_file", "runbook_from", "check_condition", "check_action", "check_programme",
           "load_operator_script_file", "check_script_against"]

_WORDS = {"service": "service", "postgres": "postgres service", "job": "job", "link": "link"}


def _check_targets(doc: Parsed, loc: Loc, what: str, targets: Mapping[str, frozenset[str]], params: Any,
                   stack: Stack | None) -> None:
    if stack is None:
        return
    for key, types in targets.items():
        value = params if key == "" else params.get(key) if isinstance(params, dict) else None
        if not isinstance(value, str):
            continue
        where = loc if key == "" else (*loc, key)
        actual = stack.target_type(value)
        if actual in types:
            continue
        wanted = " or ".join(_WORDS.get(t, t) for t in sorted(types))
        candidates = sorted(n for n in [*stack.services, *stack.jobs] if stack.target_type(n) in types)
        if actual is None:
            doc.add(where, unknown_name_message(wanted, value, candidates) + f" ({what} takes a {wanted})")
        else:
            doc.add(where, f"{what} takes a {wanted}; {value!r} is a {_WORDS.get(actual, actual)}")


def check_condition(doc: Parsed, loc: Loc, raw: Any, stack: Stack | None) -> None:
    """A condition as written at ``loc``: a registered name and parameters that fit (recursively)."""
    if not isinstance(raw, dict) or len(raw) != 1:
        return  # the model says what is wrong with its shape
    ((name, params),) = raw.items()
    if name not in conditions:
        broken = conditions.broken.get(str(name))
        doc.add(loc, f"condition {name!r} could not be loaded: {broken}" if broken else
                conditions.unknown_message(name) + " (write a condition as {name: parameters})", at_key=True)
        return
    kind = conditions.get(name)
    try:
        kind.validate_params(params)
    except ValidationError as exc:
        if not params and params is not False and kind.Params is not None:
            doc.add((*loc, name), f"{name} needs parameters: {kind.summary}")
        else:
            doc.problems.extend(located(doc, exc, None, prefix=(*loc, name)))
        return
    if kind.nested:
        items = params if isinstance(params, list) else [params]
        for i, item in enumerate(items):
            check_condition(doc, (*loc, name, i) if isinstance(params, list) else (*loc, name), item, stack)
    _check_targets(doc, (*loc, name), f"condition {name}", kind.targets, params, stack)


def check_action(doc: Parsed, loc: Loc, name: Any, params: Any, stack: Stack | None,
                 params_key: str = "with") -> None:
    """An action named at ``loc + ("action",)`` with its ``with:`` parameters."""
    if not isinstance(name, str) or not name:
        return
    if name not in actions:
        broken = actions.broken.get(name)
        doc.add((*loc, "action"), f"action {name!r} could not be loaded: {broken}" if broken
                else actions.unknown_message(name))
        return
    kind = actions.get(name)
    params = params if isinstance(params, dict) else {}
    try:
        kind.validate_params(params)
    except ValidationError as exc:
        doc.problems.extend(located(doc, exc, kind.Params, prefix=(*loc, params_key)))
        return
    _check_targets(doc, (*loc, params_key), f"action {name}", kind.targets, params, stack)


def _check_steps(doc: Parsed, stack: Stack | None) -> None:
    steps = doc.data.get("steps")
    seen: dict[str, int] = {}
    for i, raw in enumerate(steps if isinstance(steps, list) else []):
        if not isinstance(raw, dict):
            continue
        step_id = raw.get("id")
        if isinstance(step_id, str):
            if step_id in seen:
                doc.add(("steps", i, "id"), f"step id {step_id!r} is used twice (steps[{seen[step_id]}] has it)")
            seen.setdefault(step_id, i)
        if raw.get("kind") == "action":
            check_action(doc, ("steps", i), raw.get("action"), raw.get("with"), stack)
        elif raw.get("kind") == "check":
            check_condition(doc, ("steps", i, "check"), raw.get("check"), stack)


def runbook_from(doc: Parsed, path: Path, stack: Stack | None) -> tuple[Runbook | None, list[Problem]]:
    """The runbook of a parsed document checked (against ``stack`` when given), or every problem."""
    runbook = validate(doc, Runbook, path.parent)
    if not isinstance(doc.data, dict):
        return None, doc.problems
    _check_steps(doc, stack)
    if doc.problems or runbook is None:
        return None, doc.problems
    runbook._source = path
    return runbook, []


def load_runbook_file(path: Path, stack: Stack | None = None) -> tuple[Runbook | None, list[Problem]]:
    """Read and check a runbook file."""
    doc = read_document(path)
    if doc.data is None:
        return None, doc.problems
    return runbook_from(doc, path, stack)


def _check_start(doc: Parsed, data: dict[Any, Any], stack: Stack | None, rule_ids: set[str]) -> None:
    ref = data.get("runbook")
    start = ref.get("start") if isinstance(ref, dict) else None
    if not isinstance(start, dict):
        return
    if start.get("when") is not None:
        check_condition(doc, ("runbook", "start", "when"), start["when"], stack)
    decision = start.get("decision")
    if isinstance(decision, str) and decision not in rule_ids:
        doc.add(("runbook", "start", "decision"), unknown_name_message("decision rule", decision, rule_ids))


def _check_decisions(doc: Parsed, data: dict[Any, Any], stack: Stack | None) -> set[str]:
    rules = data.get("decisions")
    ids: set[str] = set()
    for i, raw in enumerate(rules if isinstance(rules, list) else []):
        if not isinstance(raw, dict):
            continue
        rule_id = raw.get("id")
        if isinstance(rule_id, str):
            if rule_id in ids:
                doc.add(("decisions", i, "id"), f"decision rule id {rule_id!r} is used twice")
            ids.add(rule_id)
        check_condition(doc, ("decisions", i, "when"), raw.get("when"), stack)
        then = raw.get("then")
        for j, call in enumerate(then if isinstance(then, list) else []):
            if isinstance(call, dict):
                check_action(doc, ("decisions", i, "then", j), call.get("action"), call.get("with"), stack)
    return ids


def _check_programme_targets(doc: Parsed, data: dict[Any, Any], stack: Stack | None) -> None:
    targets = data.get("targets")
    if not isinstance(targets, dict):
        return
    if targets.get("runbook_within") is not None and not data.get("runbook"):
        doc.add(("targets", "runbook_within"), "there is no `runbook:` to time: name the runbook this scenario follows")
    if targets.get("decide_within") is not None and not data.get("decisions"):
        doc.add(("targets", "decide_within"), "there are no `decisions:` rules to time")
    if targets.get("deadline_impact_within") is not None and stack is not None:
        timeline = data.get("timeline")
        started = {e.get("job") for e in (timeline if isinstance(timeline, list) else []) if isinstance(e, dict)}
        if not any(name in started and job.deadline is not None for name, job in stack.jobs.items()):
            doc.add(("targets", "deadline_impact_within"),
                    "no job with a `deadline` is started in the timeline, so there is no deadline to judge from")


def check_programme(doc: Parsed, path: Path, stack: Stack | None) -> tuple[Runbook | None, list[Problem]]:
    """The scenario's runbook (loaded and checked), decision rules and programme targets.

    Returns the runbook and the runbook file's own problems; the scenario's are in ``doc``.
    """
    data = doc.data
    rule_ids = _check_decisions(doc, data, stack)
    _check_start(doc, data, stack, rule_ids)
    _check_programme_targets(doc, data, stack)
    ref = data.get("runbook")
    value = ref.get("file") if isinstance(ref, dict) else None
    if not isinstance(value, str) or not value.strip():
        return None, []
    runbook_path = relative_to_file(value, path.parent)
    if not runbook_path.is_file():
        doc.add(("runbook", "file"),
                f"runbook file not found: {display_path(runbook_path)} (the path is relative to this scenario)")
        return None, []
    runbook, problems = load_runbook_file(runbook_path, stack)
    if problems:
        doc.add(("runbook", "file"), f"the runbook {display_path(runbook_path)} has problems (listed too)")
    return runbook, problems


def load_operator_script_file(path: Path) -> tuple[OperatorScript | None, Parsed | None, list[Problem]]:
    """Read an operator script: the model, its parsed document (for later checks), or every problem."""
    doc = read_document(path)
    if doc.data is None:
        return None, None, doc.problems
    script = validate(doc, OperatorScript, path.parent)
    if not isinstance(doc.data, dict):
        return None, doc, doc.problems
    # Only well-formed names count here; a malformed list or name is validate()'s problem to report.
    participants = doc.data.get("participants")
    names = {p["name"] for p in (participants if isinstance(participants, list) else [])
             if isinstance(p, dict) and isinstance(p.get("name"), str)}
    for section in ("steps", "decisions"):
        entries = doc.data.get(section)
        for entry_id, entry in (entries.items() if isinstance(entries, dict) else []):
            for part, response in (entry.items() if isinstance(entry, dict) else []):
                who = response.get("by") if isinstance(response, dict) else None
                if isinstance(who, str) and who not in names:
                    doc.add((section, entry_id, part, "by"),
                            unknown_name_message("participant", who, sorted(names))
                            + " (list them under `participants:`)")
    if doc.problems or script is None:
        return None, doc, doc.problems
    script._source = path
    return script, doc, []


def check_script_against(doc: Parsed, step_ids: Iterable[str], rule_ids: Iterable[str]) -> list[Problem]:
    """The script's step and decision ids must be those of the runbooks and rules it answers."""
    steps, rules = sorted(set(step_ids)), sorted(set(rule_ids))
    for section, known, what in (("steps", steps, "runbook step"), ("decisions", rules, "decision rule")):
        entries = doc.data.get(section)
        for entry_id in (entries if isinstance(entries, dict) else {}):
            if entry_id not in known:
                doc.add((section, entry_id), unknown_name_message(what, entry_id, known), at_key=True)
    return doc.problems
