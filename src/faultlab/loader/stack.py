"""The stack document: its model, then the names it uses (links, monitor, interpolations)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from faultlab.errors import Problem
from faultlab.loader.located import validate
from faultlab.loader.positions import Loc, Parsed, display_path, read_document
from faultlab.loader.rules import read_rules
from faultlab.model import Stack
from faultlab.model.stack import Job, Link, Monitor, Monitoring, Service
from faultlab.model.types import Name
from faultlab.plugin import Declaration, PluginProblem, load_plugin
from faultlab.registry import runtimes

__all__ = ["load_stack_file", "stack_from", "partial_stack"]

_SECTIONS: tuple[tuple[str, type[BaseModel], Callable[[], BaseModel]], ...] = (
    ("services", Service, lambda: Service.model_construct(command=["?"], port="auto", env={})),
    ("links", Link, lambda: Link.model_construct(from_="?", to="?")),
    ("jobs", Job, lambda: Job.model_construct(command=["?"], env={})),
)


def partial_stack(data: dict[Any, Any], base_dir: Path | None = None) -> tuple[Stack, set[Loc]]:
    """A stack of the well-formed parts of an invalid one, to check names against.

    Malformed services, links and jobs become placeholders, so names that exist are not
    reported missing; problems found inside a placeholder are dropped (already reported).
    """
    name = data.get("name")
    if not isinstance(name, str):
        name = "stack"
    placeholders: set[Loc] = set()
    sections: dict[str, dict[str, Any]] = {}
    for section, model, stand_in in _SECTIONS:
        raw = data.get(section)
        entries: dict[str, Any] = {}
        for key, value in (raw.items() if isinstance(raw, dict) else ()):
            if not isinstance(key, str):
                continue
            try:
                entries[key] = model.model_validate(value)
            except ValidationError:
                entries[key] = stand_in()
                placeholders.add((section, key))
        sections[section] = entries
    monitor = None
    try:
        monitor = Monitor.model_validate(data.get("monitor")) if data.get("monitor") is not None else None
    except ValidationError:
        placeholders.add(("monitor",))
    monitoring = None
    try:
        raw = data.get("monitoring")
        monitoring = Monitoring.model_validate(raw, context={"base_dir": base_dir}) if raw is not None else None
    except ValidationError:
        placeholders.add(("monitoring",))
    runtime = data.get("runtime", "local")
    try:
        runtime = TypeAdapter(Name).validate_python(runtime)
    except ValidationError:
        runtime = "local"  # reported by the model's check; a runtime named wrong is not looked up
        placeholders.add(("runtime",))
    stack = Stack.model_construct(
        name=name,
        runtime=runtime,
        monitor=monitor,
        monitoring=monitoring,
        plugin=None,
        allow_hosts=[],
        services=sections["services"],
        links=sections["links"],
        jobs=sections["jobs"],
    )
    return stack, placeholders


def _plugin_declaration(doc: Parsed, module: str, folder: Path) -> Declaration | None:
    """Import and check the stack's plugin now, before anything starts: each thing wrong with
    it is a problem at the stack's ``plugin:`` line."""
    try:
        return load_plugin(module, folder=folder).declaration
    except PluginProblem as exc:
        for message in exc.messages:
            doc.add(("plugin",), f"plugin {module}: {message}")
        return None


def _check_runtime(doc: Parsed, stack: Stack, placeholders: set[Loc]) -> None:
    """The stack's ``runtime:`` must be registered, and able to run every service."""
    name = stack.runtime
    if ("runtime",) in placeholders:
        return
    if name not in runtimes:
        broken = runtimes.broken.get(name)
        doc.add(("runtime",), f"runtime {name!r} could not be loaded: {broken}" if broken
                else runtimes.unknown_message(name))
        return
    for loc, text in runtimes.get(name).check(stack):
        if not any(loc[: len(p)] == p for p in placeholders):
            doc.add(loc, text)


def _check_rules(doc: Parsed, stack: Stack) -> None:
    """The ``monitoring.rules`` file must be there and hold Prometheus rule groups; its alert
    names go with the stack (a scenario's ``detect_by`` names one of them)."""
    monitoring = stack.monitoring
    if monitoring is None:
        return
    path = Path(monitoring.rules)
    if not path.is_file():
        doc.add(("monitoring", "rules"),
                f"rules file not found: {display_path(path)} (the path is relative to the stack file)")
        return
    alerts, problems = read_rules(path)
    if problems:
        doc.add(("monitoring", "rules"), f"the rules file {display_path(path)} has problems (listed too)")
        doc.problems.extend(problems)
    elif not alerts:
        doc.add(("monitoring", "rules"), f"the rules file {display_path(path)} defines no alert (no `alert:` rule)")
    monitoring._alerts = alerts


def load_stack_file(path: Path, runtime: str | None = None) -> tuple[Stack | None, list[Problem]]:
    """The stack and no problems, or the problems and (if any can be made) a partial stack.

    ``runtime`` overrides the file's ``runtime:`` (the command line's ``--runtime``) before
    the runtime's checks run, so a stack is judged by the runtime that will run it."""
    doc = read_document(path)
    if doc.data is None:
        return None, doc.problems
    return stack_from(doc, path, runtime)


def stack_from(doc: Parsed, path: Path, runtime: str | None = None) -> tuple[Stack | None, list[Problem]]:
    """Check a parsed stack document: the stack, or the problems and perhaps a partial stack
    (``runtime``: as in :func:`load_stack_file`)."""
    stack = validate(doc, Stack, path.parent)
    placeholders: set[Loc] = set()
    if stack is None and isinstance(doc.data, dict):
        stack, placeholders = partial_stack(doc.data, path.parent)
    if stack is not None and runtime is not None:
        stack.runtime = runtime
        placeholders.discard(("runtime",))
    if stack is not None:
        for loc, text in stack.check():
            if not any(loc[: len(p)] == p for p in placeholders):
                doc.add(loc, text)
        _check_runtime(doc, stack, placeholders)
        _check_rules(doc, stack)
        if stack.plugin:
            stack._declaration = _plugin_declaration(doc, stack.plugin, path.parent)
    if doc.problems:
        return stack, doc.problems
    assert stack is not None
    stack._source = path
    return stack, []
