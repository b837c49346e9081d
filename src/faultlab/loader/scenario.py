"""The scenario document: its model, its stack, then the timeline and targets against that stack.

The timeline is checked on the raw entries, field by field, so that a malformed ``at`` does
not hide an unknown target in the same entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from faultlab import units
from faultlab.errors import Problem
from faultlab.loader.kind import KIND_WORDS, document_kind
from faultlab.loader.located import located, validate
from faultlab.loader.positions import Loc, Parsed, display_path, read_document
from faultlab.loader.runbook import check_programme
from faultlab.loader.stack import stack_from
from faultlab.model import FaultStep, Scenario, Stack
from faultlab.model.document import relative_to_file
from faultlab.model.scenario import FAULT_STEP_KEYS, Targets
from faultlab.registry import fault_kinds, runtimes, unknown_name_message

__all__ = ["StackCache", "StackFile", "load_scenario_file", "scenario_from", "check_timeline"]

@dataclass(frozen=True)
class StackFile:
    """What a scenario's ``stack:`` file held: a stack (perhaps partial) and its problems,
    or, as ``other_kind``, that it is another document altogether (a scenario, a plan)."""

    stack: Stack | None
    problems: list[Problem]
    other_kind: str | None = None


class StackCache(dict[Path, StackFile]):
    """Stack files already loaded, by path: a plan's scenarios share one stack file.

    ``runtime`` (the command line's ``--runtime``) overrides every stack file's ``runtime:``."""

    def __init__(self, runtime: str | None = None):
        super().__init__()
        self.runtime = runtime

_fmt = units.format_duration

_TARGET_WORDS = {
    "link": "link",
    "service": "service",
    "postgres": "postgres service",
    "job": "job",
    "stack": "stack",
}


@dataclass(frozen=True, order=True)
class _Span:
    kind: str
    target: str
    start: float
    end: float
    index: int


def _parse_or_none(parser: Callable[[Any], float], value: Any) -> float | None:
    try:
        return parser(value)
    except ValueError:
        return None


def load_scenario_file(path: Path, stacks: StackCache | None = None) -> tuple[Scenario | None, list[Problem]]:
    """The scenario with its stack attached and no problems, or None and every problem."""
    doc = read_document(path)
    if doc.data is None:
        return None, doc.problems
    return scenario_from(doc, path, stacks if stacks is not None else StackCache())


def _stack_of(doc: Parsed, path: Path, stacks: StackCache) -> tuple[Stack | None, list[Problem]]:
    """The stack the scenario names (possibly partial), and the stack file's own problems."""
    value = doc.data.get("stack")
    if not isinstance(value, str) or not value.strip():
        return None, []
    stack_path = relative_to_file(value, path.parent)
    if not stack_path.is_file():
        doc.add(
            ("stack",),
            f"stack file not found: {display_path(stack_path)} (the path is relative to this scenario)",
        )
        return None, []
    if stack_path not in stacks:
        stacks[stack_path] = _load_stack(stack_path, getattr(stacks, "runtime", None))
    found = stacks[stack_path]
    if found.other_kind is not None:
        doc.add(("stack",), f"{value!r} is {KIND_WORDS[found.other_kind]}, not a stack file")
        return None, []
    if found.problems:
        doc.add(("stack",), f"the stack file {display_path(stack_path)} has problems (listed too)")
    return found.stack, found.problems


def _load_stack(path: Path, runtime: str | None = None) -> StackFile:
    doc = read_document(path)
    if doc.data is None:
        return StackFile(None, doc.problems)
    kind = document_kind(doc.data, path)
    if kind in ("scenario", "plan", "rules"):
        return StackFile(None, [], other_kind=kind)
    return StackFile(*stack_from(doc, path, runtime))


def scenario_from(doc: Parsed, path: Path, stacks: StackCache) -> tuple[Scenario | None, list[Problem]]:
    """Check a parsed scenario document and load its stack; the scenario, or every problem."""
    scenario = validate(doc, Scenario, path.parent)
    if not isinstance(doc.data, dict):
        return None, doc.problems
    stack, stack_problems = _stack_of(doc, path, stacks)
    validated = check_timeline(doc, stack)
    runbook, runbook_problems = check_programme(doc, path, stack)
    problems = doc.problems + stack_problems + runbook_problems
    if problems or scenario is None or stack is None:
        return None, problems
    scenario._stack = stack
    scenario._source = path
    if scenario.runbook is not None:
        scenario.runbook._runbook = runbook
    for i, step in enumerate(scenario.timeline):
        if isinstance(step, FaultStep):
            step._kind_params = validated.get(i)
            if step.target is None and fault_kinds.get(step.fault).target_types == {"stack"}:
                step.target = stack.name
    return scenario, []


def check_timeline(doc: Parsed, stack: Stack | None) -> dict[int, Any]:
    """Semantic checks of the raw timeline; returns the validated kind parameters by index."""
    data = doc.data
    duration = _parse_or_none(units.parse_duration, data.get("duration"))
    timeline = data.get("timeline")
    validated: dict[int, Any] = {}
    spans: list[_Span] = []
    job_starts: dict[str, list[float]] = {}
    for i, raw in enumerate(timeline if isinstance(timeline, list) else []):
        if not isinstance(raw, dict) or ("fault" in raw) == ("job" in raw):
            continue  # reported by the structural check
        if "job" in raw:
            _check_job_step(doc, ("timeline", i), raw, stack, duration)
            at = _parse_or_none(units.parse_duration, raw.get("at"))
            if isinstance(raw["job"], str):
                job_starts.setdefault(raw["job"], []).append(at if at is not None else 0.0)
        else:
            span = _check_fault_step(doc, ("timeline", i), raw, stack, duration, validated)
            if span is not None:
                spans.append(span)
    _check_overlaps(doc, spans)
    if stack is not None:
        _check_jobs_started(doc, spans, stack, job_starts)
    _check_targets(doc, stack, job_starts)
    _check_promql(doc, stack)
    if duration is not None:
        _check_hold(doc, duration)
    return validated


def _check_jobs_started(doc: Parsed, spans: list[_Span], stack: Stack, job_starts: dict[str, list[float]]) -> None:
    for span in spans:
        if stack.target_type(span.target) == "job" and not any(
            start <= span.start for start in job_starts.get(span.target, [])
        ):
            doc.add(
                ("timeline", span.index, "target"),
                f"job {span.target!r} is not started before {_fmt(span.start)}: "
                f"add `{{at: ..., job: {span.target}}}` earlier in the timeline",
            )


def _check_targets(doc: Parsed, stack: Stack | None, job_starts: dict[str, list[float]]) -> None:
    targets = doc.data.get("targets")
    if not isinstance(targets, dict):
        return
    if targets.get("job_margin_min") is not None and not job_starts:
        doc.add(
            ("targets", "job_margin_min"),
            "there is no `{at, job: ...}` entry in the timeline to measure a job's margin on",
        )
    if stack is not None:
        _check_declared_targets(doc, targets, stack)
    if targets.get("detect_within") is not None and stack is not None and stack.monitor is None \
            and stack.monitoring is None:
        doc.add(
            ("targets", "detect_within"),
            f"detection is measured on the stack's own monitoring, and stack {stack.name!r} "
            "has no `monitor: {service, ready}` (nor `monitoring:`)",
        )
    if targets.get("detect_by") is not None:
        _check_detect_by(doc, targets, stack)
    if stack is not None:
        _check_system_targets(doc, targets, stack)


def _check_system_targets(doc: Parsed, targets: dict[Any, Any], stack: Stack) -> None:
    """Targets that need something of the stack: shed requests its plugin's statuses for
    overload, metric bounds its monitor's scrape."""
    if targets.get("shed_requests_min") is not None and not stack.declaration.shed_statuses:
        doc.add(("targets", "shed_requests_min"),
                f"the plugin of stack {stack.name!r} declares no status for a request refused for overload "
                "(`shed_statuses`), so shed requests cannot be told apart")
    monitor = stack.monitor
    if targets.get("metrics") and (monitor is None or (monitor.metrics is None and not monitor.scrape)):
        doc.add(("targets", "metrics"),
                f"metrics are read from the stack's monitoring, and stack {stack.name!r} scrapes none: "
                "give `monitor: {metrics: /metrics}` (and `scrape: {SERVICE: /metrics}` for other services)")


def _check_detect_by(doc: Parsed, targets: dict[Any, Any], stack: Stack | None) -> None:
    """``detect_by`` names an alert of the stack's rules file, and goes with ``detect_within``."""
    alert = targets["detect_by"]
    if targets.get("detect_within") is None:
        doc.add(("targets", "detect_by"), "`detect_by` names the alert `detect_within` is measured by: "
                                          "give `detect_within` too", at_key=True)
    if stack is None or not isinstance(alert, str):
        return
    if stack.monitoring is None:
        doc.add(("targets", "detect_by"), f"`detect_by` names an alert of the stack's monitoring, and stack "
                                          f"{stack.name!r} has no `monitoring:` (Prometheus and its alert rules)")
    elif stack.monitoring.alerts and alert not in stack.monitoring.alerts:
        doc.add(("targets", "detect_by"), unknown_name_message("alert", alert, stack.monitoring.alerts)
                + f" (the alerts of {display_path(Path(stack.monitoring.rules))})")


def _check_promql(doc: Parsed, stack: Stack | None) -> None:
    """PromQL conditions are evaluated against the run's Prometheus: the stack must run one."""
    if stack is None or stack.monitoring is not None:
        return
    for section in ("steady_state", "abort_when"):
        raw = doc.data.get(section)
        if isinstance(raw, dict) and raw.get("promql"):
            doc.add((section, "promql"), f"a PromQL condition is evaluated against the run's Prometheus, and "
                                         f"stack {stack.name!r} has no `monitoring:` to run one", at_key=True)


def _check_declared_targets(doc: Parsed, targets: dict[Any, Any], stack: Stack) -> None:
    """A target that is not a measure every system has must name what the stack's plugin
    declared: one of its integrity checks, or its completion delay's ``<name>_p99``."""
    declaration = stack.declaration
    declared = list(declaration.check_names)
    if declaration.completion is not None:
        declared.append(declaration.completion.target)
    generic = list(Targets.model_fields)
    for key, value in targets.items():
        if not isinstance(key, str) or key in generic:
            continue
        if key not in declared:
            text = unknown_name_message("target", key, [*generic, *declared])
            if not stack.plugin:
                text += f" (stack {stack.name!r} has no plugin to declare integrity checks)"
            doc.add(("targets", key), text, at_key=True)
        elif declaration.completion is not None and key == declaration.completion.target:
            if _parse_or_none(units.parse_duration, value) is None:
                doc.add(("targets", key), f"{key} is a duration like 5s (got {value!r})")
        elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
            doc.add(("targets", key), f"{key} counts violations: write a whole number like 0 (got {value!r})")


def _clears(raw: Any) -> float | None:
    """When a fault entry stops acting (``at + for``; ``at`` if instantaneous), if known."""
    if not isinstance(raw, dict) or "fault" not in raw or "job" in raw:
        return None
    at = _parse_or_none(units.parse_duration, raw.get("at"))
    if at is None:
        return None
    if "for" in raw:
        length = _parse_or_none(units.parse_duration, raw["for"])
        return None if length is None else at + length
    name = raw["fault"]
    if isinstance(name, str) and name in fault_kinds and fault_kinds.get(name).needs_for:
        return None  # `for` is missing: reported by the fault check
    return at


def _check_hold(doc: Parsed, duration: float) -> None:
    """Recovery is shown by ``hold`` healthy after the last fault clears: it must fit in the run."""
    timeline = doc.data.get("timeline")
    entries = timeline if isinstance(timeline, list) else []
    clears = [(end, i) for i, raw in enumerate(entries) if (end := _clears(raw)) is not None]
    written = "hold" in doc.data
    default = Scenario.model_fields["hold"].default
    hold = _parse_or_none(units.parse_duration, doc.data.get("hold", default))
    if not clears or hold is None:
        return
    last, index = max(clears)
    rest = duration - last
    if rest < 0 or hold <= rest:
        return  # a fault past the end is reported by the fault check
    longest = f"the longest hold here is {_fmt(rest)} (or clear" if rest > 0 else "no hold fits (clear"
    advice = f"recovery could never be shown; {longest} the faults earlier, or run longer)"
    if written:
        doc.add(
            ("hold",),
            f"recovery must stay healthy for {_fmt(hold)}, but the last fault clears at {_fmt(last)} "
            f"(timeline[{index}]), {_fmt(rest)} before the end of the run ({_fmt(duration)}): {advice}",
        )
    else:
        entry = timeline[index]
        doc.add(
            ("timeline", index, "for" if "for" in entry else "at"),
            f"clears at {_fmt(last)}, {_fmt(rest)} before the end of the run ({_fmt(duration)}), and recovery "
            f"must stay healthy for {_fmt(hold)} (`hold`, {default} unless written): {advice}",
        )


def _check_job_step(
    doc: Parsed, loc: Loc, raw: dict[Any, Any], stack: Stack | None, duration: float | None
) -> None:
    job = raw["job"]
    if stack is not None and isinstance(job, str) and job not in stack.jobs:
        doc.add((*loc, "job"), unknown_name_message("job", job, stack.jobs))
    at = _parse_or_none(units.parse_duration, raw.get("at"))
    if at is not None and duration is not None and at >= duration:
        doc.add((*loc, "at"), f"starts at {_fmt(at)}, not before the end of the run ({_fmt(duration)})")


def _check_fault_step(
    doc: Parsed,
    loc: Loc,
    raw: dict[Any, Any],
    stack: Stack | None,
    duration: float | None,
    validated: dict[int, Any],
) -> _Span | None:
    """Kind, parameters, ``for``, target and timing of one fault entry; its span if known."""
    name = raw["fault"]
    if not isinstance(name, str) or not name:
        return None
    if name not in fault_kinds:
        broken = fault_kinds.broken.get(name)
        text = f"fault kind {name!r} could not be loaded: {broken}" if broken else None
        doc.add((*loc, "fault"), text or fault_kinds.unknown_message(name))
        return None
    kind = fault_kinds.get(name)
    params = {k: v for k, v in raw.items() if k not in FAULT_STEP_KEYS}
    try:
        validated[loc[-1]] = kind.validate_params(params)
    except ValidationError as exc:
        doc.problems.extend(located(doc, exc, kind.Params, prefix=loc, extra_known=list(FAULT_STEP_KEYS)))
    length = _check_for(doc, loc, name, kind, raw)
    target = raw.get("target")
    if stack is not None:
        _check_runtime_runs(doc, loc, name, kind, stack, validated.get(loc[-1]))
        target = _check_target(doc, loc, name, kind, stack, target)
    at = _parse_or_none(units.parse_duration, raw.get("at"))
    if at is None or duration is None:
        return None
    end = at + (length or 0.0)
    if length and end > duration:
        doc.add(
            (*loc, "for"),
            f"ends at {_fmt(end)} ({_fmt(at)} + {_fmt(length)}), after the end of the run ({_fmt(duration)})",
        )
    elif at >= duration:
        doc.add((*loc, "at"), f"starts at {_fmt(at)}, not before the end of the run ({_fmt(duration)})")
    if isinstance(target, str) and (length is not None or not kind.needs_for):
        return _Span(name, target, at, end, loc[-1])
    return None


def _check_runtime_runs(doc: Parsed, loc: Loc, name: str, kind: Any, stack: Stack, params: Any) -> None:
    """The stack's runtime must offer what the fault kind needs (with these parameters)."""
    if stack.runtime not in runtimes:
        return  # reported in the stack file
    lacking = runtimes.get(stack.runtime).lacks(kind, params)
    if not lacking:
        return
    able = [runtime for runtime, cls in runtimes.items() if cls.supports(kind, params)]
    doc.add(
        (*loc, "fault"),
        f"the {stack.runtime} runtime of stack {stack.name!r} cannot run {name}: it lacks "
        f"{', '.join(sorted(lacking))}" + (f" (runtimes that can: {', '.join(able)})" if able else ""),
    )


def _check_for(doc: Parsed, loc: Loc, name: str, kind: Any, raw: dict[Any, Any]) -> float | None:
    """The fault's length in seconds, if it has a usable one; a missing or extra ``for`` reported."""
    if kind.needs_for and "for" not in raw:
        doc.add(loc, f"{name} lasts until it is reverted: say for how long, like `for: 20s`")
    elif not kind.needs_for and "for" in raw:
        doc.add((*loc, "for"), f"{name} is instantaneous: it takes no `for`", at_key=True)
    elif "for" in raw:
        length = _parse_or_none(units.parse_duration, raw["for"])
        if length == 0:
            doc.add((*loc, "for"), "`for` must be more than 0s")
        return length
    return None


def _check_overlaps(doc: Parsed, spans: list[_Span]) -> None:
    """The same fault kind on the same target must not be in effect twice at once."""
    ordered = sorted(spans)
    for previous, current in zip(ordered, ordered[1:], strict=False):
        if (previous.kind, previous.target) != (current.kind, current.target):
            continue
        if current.start < previous.end or current.start == previous.start:
            doc.add(
                ("timeline", current.index),
                f"overlaps timeline[{previous.index}]: {current.kind} on {current.target!r} is "
                f"already in effect from {_fmt(previous.start)} to {_fmt(previous.end)}",
            )


def _check_target(doc: Parsed, loc: Loc, name: str, kind: Any, stack: Stack, target: Any) -> Any:
    types = set(kind.target_types)
    if types == {"stack"}:
        if target is not None and target != stack.name:
            doc.add(
                (*loc, "target"),
                f"{name} acts on the whole stack: leave `target` out (or write {stack.name!r})",
            )
        return stack.name
    candidates = sorted(n for n in [*stack.services, *stack.links, *stack.jobs] if stack.target_type(n) in types)
    wanted = " or ".join(_TARGET_WORDS[t] for t in sorted(types))
    if target is None:
        choices = ", ".join(candidates) or "there is none"
        doc.add(loc, f"{name} needs a `target`: a {wanted} of stack {stack.name!r} ({choices})")
        return None
    if not isinstance(target, str):
        return None
    actual = stack.target_type(target)
    if actual is None:
        if candidates:
            text = unknown_name_message("target", target, candidates) + f" (targets of {name}: a {wanted})"
        else:
            text = f"unknown target {target!r}; stack {stack.name!r} has no {wanted} for {name}"
        doc.add((*loc, "target"), text)
        return None
    if actual not in types:
        doc.add(
            (*loc, "target"),
            f"{name} targets a {wanted}; {target!r} is a {_TARGET_WORDS[actual]}"
            + (f" (candidates: {', '.join(candidates)})" if candidates else ""),
        )
        return None
    return target
