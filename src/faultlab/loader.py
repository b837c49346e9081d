"""Loading the YAML documents: every problem at once, each with file:line:col and YAML path.

    load_stack(path)     -> Stack
    load_scenario(path)  -> Scenario, with its Stack attached (``scenario.resolved_stack``)
    load_plan(path)      -> DrillPlan, with its scenarios loaded (``plan.resolved_scenarios``)
    load_any(path)       -> whichever of the three the file is

Each raises :class:`faultlab.errors.InputError` holding every :class:`~faultlab.errors.Problem`
found, and nothing else, whatever the file holds. The steps:

1. read and parse the YAML into plain values, remembering where every key and value sits
   (YAML 1.2 scalars: only ``true``/``false`` are booleans, so ``restart: no`` is text);
2. structural check: the pydantic model, whose errors are located through those positions;
3. semantic checks on whatever parts are well-formed, so that one mistake does not hide
   another: names exist, the stack file loads, fault kinds and their parameters, timing.
"""

from __future__ import annotations

import glob
import os
import re
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from faultlab import units
from faultlab.errors import InputError, Problem
from faultlab.model import DrillPlan, FaultStep, Scenario, Stack
from faultlab.model.document import relative_to_file
from faultlab.model.scenario import FAULT_STEP_KEYS
from faultlab.registry import fault_kinds, unknown_name_message

__all__ = ["load_stack", "load_scenario", "load_plan", "load_any", "document_kind", "Parsed", "parse_yaml"]

MAX_FILE_BYTES = 2_000_000
MAX_NODES = 200_000
MAX_DEPTH = 64

Loc = tuple[Any, ...]


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core scalars: no yes/no/on/off booleans, no base-60, no dates."""

    yaml_implicit_resolvers: dict = {}


for _tag, _pattern, _first in [
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("merge", r"^(?:<<)$", "<"),
]:
    _Loader.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", re.compile(_pattern), list(_first))

_TAG = "tag:yaml.org,2002:"


@dataclass
class Parsed:
    """A YAML document as plain values, with the position of every value and key.

    Positions are ``(line, column)``, 1-based, keyed by the path of the value: a tuple of
    mapping keys and sequence indexes (``("timeline", 0, "for")``).
    """

    file: str
    data: Any = None
    values: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    unreadable: set[Loc] = field(default_factory=set)
    """Values already reported by the parser (and replaced by None): not reported again."""

    def reported(self, loc: Loc) -> bool:
        """Whether ``loc`` is, or lies inside, a value the parser already reported."""
        return any(tuple(loc[: len(bad)]) == bad for bad in self.unreadable)

    def problem(self, loc: Loc, message: str, *, at_key: bool = False) -> Problem:
        """A problem located at ``loc`` (or at the nearest enclosing node that has a position)."""
        line, column = _position(self, tuple(loc), at_key)
        return Problem(self.file, line, column, format_path(loc), message)

    def add(self, loc: Loc, message: str, *, at_key: bool = False) -> None:
        """Record a problem at ``loc`` (unless the parser reported that value already)."""
        if not self.reported(tuple(loc)):
            self.problems.append(self.problem(loc, message, at_key=at_key))


def _position(doc: Parsed, loc: Loc, at_key: bool) -> tuple[int, int]:
    if at_key and loc in doc.keys:
        return doc.keys[loc]
    while loc:
        if loc in doc.values:
            return doc.values[loc]
        loc = loc[:-1]
    return doc.values.get((), (1, 1))


def format_path(loc: Loc) -> str:
    """``("timeline", 0, "for")`` -> ``timeline[0].for``."""
    text = ""
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        elif isinstance(part, str) and re.fullmatch(r"[A-Za-z0-9_.-]+", part) and "." not in part:
            text += f".{part}" if text else part
        elif isinstance(part, str) and re.fullmatch(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*", part):
            text += f'["{part}"]'
        else:
            text += f"[{_short(part)}]"
    return text


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def display_path(path: Path | str) -> str:
    """A path as shown in messages: relative to the working directory when inside it."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


# --- 1. YAML to plain values with positions -----------------------------------------


def parse_yaml(text: str | bytes, file: str = "<input>") -> Parsed:
    """Parse one YAML document; problems (syntax, tags, size) are in ``.problems``."""
    doc = Parsed(file)
    if isinstance(text, bytes):
        if len(text) > MAX_FILE_BYTES:
            doc.problems.append(Problem(file, 0, 0, "", f"file is larger than {MAX_FILE_BYTES} bytes"))
            return doc
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = text[: exc.start].count(b"\n") + 1
            column = exc.start - (text.rfind(b"\n", 0, exc.start) + 1) + 1
            message = f"not UTF-8 text (byte {text[exc.start]:#04x}); is this a YAML file?"
            doc.problems.append(Problem(file, line, column, "", message))
            return doc
    if len(text) > MAX_FILE_BYTES:
        doc.problems.append(Problem(file, 0, 0, "", f"file is larger than {MAX_FILE_BYTES} bytes"))
        return doc
    loader = None
    try:
        loader = _Loader(text)
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(part for part in (exc.context, exc.problem) if part)
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        doc.problems.append(Problem(file, line, column, "", f"YAML syntax: {what}"))
        return doc
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        doc.problems.append(
            Problem(file, line, column, "", f"character {exc.character!r} is not allowed in YAML text")
        )
        return doc
    except yaml.YAMLError as exc:
        doc.problems.append(Problem(file, 0, 0, "", f"YAML: {exc}"))
        return doc
    except RecursionError:
        doc.problems.append(Problem(file, 0, 0, "", "YAML nested too deeply"))
        return doc
    finally:
        if loader is not None:
            loader.dispose()
    if node is None:
        doc.problems.append(Problem(file, 1, 1, "", "the file is empty"))
        return doc
    builder = _Builder(doc, loader)
    try:
        doc.data = builder.build(node, ())
    except _TooBig as exc:
        doc.problems.append(Problem(file, 0, 0, "", str(exc)))
        doc.data = None
    if doc.data is None and not doc.problems:
        line, column = node.start_mark.line + 1, node.start_mark.column + 1
        doc.problems.append(Problem(file, line, column, "", "the document is empty (null)"))
    return doc


class _TooBig(Exception):
    pass


class _Builder:
    """Turns composed YAML nodes into plain values, recording positions and problems."""

    def __init__(self, doc: Parsed, loader: _Loader):
        self.doc = doc
        self.loader = loader
        self.count = 0
        self.active: set[int] = set()

    def _mark(self, node: yaml.Node) -> tuple[int, int]:
        return node.start_mark.line + 1, node.start_mark.column + 1

    def _problem(self, node: yaml.Node, loc: Loc, message: str) -> None:
        self.doc.unreadable.add(loc)
        line, column = self._mark(node)
        self.doc.problems.append(Problem(self.doc.file, line, column, format_path(loc), message))

    def build(self, node: yaml.Node, loc: Loc) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _TooBig(f"document has more than {MAX_NODES} values (aliases expanding?)")
        if len(loc) > MAX_DEPTH:
            self._problem(node, loc, f"nested more than {MAX_DEPTH} levels deep")
            return None
        self.doc.values.setdefault(loc, self._mark(node))
        if id(node) in self.active:
            self._problem(node, loc, "an alias refers to a node that contains it (recursive)")
            return None
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, loc)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                if node.tag not in (_TAG + "seq",):
                    self._problem(node, loc, f"unsupported tag {node.tag!r}")
                return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
            return self._mapping(node, loc)
        finally:
            self.active.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, loc: Loc) -> dict[Any, Any]:
        if node.tag not in (_TAG + "map",):
            self._problem(node, loc, f"unsupported tag {node.tag!r}")
        try:
            self.loader.flatten_mapping(node)
        except yaml.YAMLError as exc:
            self._problem(node, loc, f"merge (<<) failed: {getattr(exc, 'problem', exc)}")
        result: dict[Any, Any] = {}
        first_seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self._problem(key_node, loc, "a key must be plain text, not a list or mapping")
                continue
            key = self._scalar(key_node, (*loc, key_node.value))
            if not isinstance(key, str):
                # Every key of every document is a name; 1, true or null as a key is a slip.
                message = f"a key must be text, not {key!r}; quote it if you meant '{key_node.value}'"
                self._problem(key_node, (*loc, key), message)
                continue
            if key in first_seen:
                self._problem(
                    key_node,
                    (*loc, key),
                    f"duplicate key {_short(key)} (first at line {first_seen[key]})",
                )
                continue
            first_seen[key] = key_node.start_mark.line + 1
            self.doc.keys[(*loc, key)] = self._mark(key_node)
            result[key] = self.build(value_node, (*loc, key))
        return result

    def _scalar(self, node: yaml.ScalarNode, loc: Loc) -> Any:
        tag, value = node.tag, node.value
        try:
            if tag == _TAG + "str":
                return value
            if tag == _TAG + "null":
                return None
            if tag == _TAG + "bool":
                return value.lower() == "true"
            if tag == _TAG + "int":
                text = value.replace("_", "")
                if len(text) > 40:
                    self._problem(node, loc, f"number {_short(value)} is far too large")
                    return None
                if text.startswith("0o"):
                    return int(text[2:], 8)
                if text.startswith("0x"):
                    return int(text[2:], 16)
                return int(text)
            if tag == _TAG + "float":
                text = value.lower().replace("_", "")
                if text.endswith(".nan") or text.endswith(".inf"):
                    self._problem(node, loc, f"{value} is not a finite number")
                    return None
                number = float(text)
                if number in (float("inf"), float("-inf")):
                    self._problem(node, loc, f"number {_short(value)} is far too large")
                    return None
                return number
            if tag == _TAG + "merge":
                return "<<"
        except ValueError:
            self._problem(node, loc, f"{_short(value)} is not a valid {tag.rsplit(':', 1)[-1]}")
            return None
        self._problem(node, loc, f"unsupported tag {tag!r}; write plain YAML values")
        return None


def _read(path: Path) -> Parsed:
    file = display_path(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return Parsed(file, problems=[Problem(file, 0, 0, "", "file not found")])
    except IsADirectoryError:
        return Parsed(file, problems=[Problem(file, 0, 0, "", "is a folder, not a file")])
    except OSError as exc:
        return Parsed(file, problems=[Problem(file, 0, 0, "", f"cannot read: {exc.strerror or exc}")])
    return parse_yaml(raw, file)


# --- 2. structural: model errors located ---------------------------------------------


def _unwrap(tp: Any) -> Any:
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    return tp


def _step_type(tp: Any, part: Any) -> Any:
    """The type found at ``part`` inside a value of type ``tp`` (for naming known keys)."""
    tp = _unwrap(tp)
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        members = get_args(tp)
        for member in members:
            if get_origin(member) is Annotated:
                if any(getattr(meta, "tag", None) == part for meta in get_args(member)[1:]):
                    return get_args(member)[0]
        for member in members:
            found = _step_type(member, part)
            if found is not None:
                return found
        return None
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        for name, info in tp.model_fields.items():
            if part in (name, info.alias):
                return info.annotation
        return None
    if origin is list and isinstance(part, int):
        return get_args(tp)[0]
    if origin is dict:
        return get_args(tp)[0] if part == "[key]" else get_args(tp)[1]
    return None


def _known_keys(model: Any, loc: Loc) -> list[str] | None:
    tp: Any = model
    for part in loc:
        tp = _step_type(tp, part)
        if tp is None:
            return None
    tp = _unwrap(tp)
    if get_origin(tp) in (Union, types.UnionType):
        models = [_unwrap(a) for a in get_args(tp)]
        tp = next((m for m in models if isinstance(m, type) and issubclass(m, BaseModel)), None)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [info.alias or name for name, info in tp.model_fields.items()]
    return None


def _data_path(data: Any, loc: Loc) -> Loc:
    """The part of a pydantic loc that names places in the document.

    Union tags such as ``fault-step`` are in pydantic's loc but not in the document, so
    they are dropped; a missing key (the last part) is kept.
    """
    path: list[Any] = []
    current = data
    for i, part in enumerate(loc):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            current = current[part]
        elif not (i == len(loc) - 1 and isinstance(part, str) and part != "[key]"):
            continue
        path.append(part)
    return tuple(path)


def _message(error: dict[str, Any], known: list[str] | None) -> str:
    kind = error["type"]
    message = error["msg"]
    value = error.get("input")
    loc = error["loc"]
    if kind == "extra_forbidden":
        return unknown_name_message("key", loc[-1], known) if known else f"unknown key {_short(loc[-1])}"
    if kind == "missing":
        return f"required key {loc[-1]!r} is missing"
    if kind in ("value_error", "assertion_error"):
        return re.sub(r"^(Value|Assertion) error, ", "", message)
    if kind == "literal_error":
        expected = re.findall(r"'([^']*)'|(\d+|True|False)", error.get("ctx", {}).get("expected", ""))
        options = [a or b for a, b in expected]
        names = [part for part in loc if isinstance(part, str)]
        what = names[-1] if names else "value"
        if loc and isinstance(loc[-1], int) and what.endswith("s"):
            what = what[:-1]  # one entry of a list: "languages" -> "language"
        if isinstance(value, (str, int, float)) and options:
            return unknown_name_message(what, value, options)
    if kind == "string_pattern_mismatch" and "A-Za-z0-9][A-Za-z0-9_.-]" in message:
        return f"{_short(value)} is not a valid name: use letters, digits, '_', '.' and '-'"
    if isinstance(value, (str, int, float, bool)) or value is None:
        return f"{message} (got {_short(value)})"
    return message


def _located(
    doc: Parsed,
    exc: ValidationError,
    model: Any,
    prefix: Loc = (),
    extra_known: list[str] | None = None,
) -> list[Problem]:
    """Pydantic's errors as located problems; ``extra_known`` adds keys allowed at the top."""
    problems = []
    for error in exc.errors(include_url=False):
        full_loc = (*prefix, *error["loc"])
        path = _data_path(doc.data, full_loc)
        known = None
        if error["type"] == "extra_forbidden":
            known = _known_keys(model, tuple(error["loc"][:-1]))
            if known is not None and extra_known and not error["loc"][:-1]:
                known = [*extra_known, *known]
        at_key = error["type"] == "extra_forbidden" or isinstance(error.get("input"), (dict, list))
        if doc.reported(path):
            continue
        problems.append(doc.problem(path, _message(error, known), at_key=at_key))
    return problems


def _validate(doc: Parsed, model: type[BaseModel], base_dir: Path) -> Any:
    if not isinstance(doc.data, dict):
        doc.add((), f"expected a mapping of keys (a {_KIND_NAMES[model]}), got {_what(doc.data)}")
        return None
    try:
        return model.model_validate(doc.data, context={"base_dir": base_dir})
    except ValidationError as exc:
        doc.problems.extend(_located(doc, exc, model))
        return None


# --- 3. documents ---------------------------------------------------------------------


def _partial_stack(data: dict[Any, Any]) -> tuple[Stack | None, set[Loc]]:
    """A stack of the well-formed parts of an invalid one, to check names against.

    Malformed services, links and jobs become placeholders, so names that exist are not
    reported missing; problems found inside a placeholder are dropped (already reported).
    """
    from faultlab.model.stack import Job, Link, Monitor, Service

    name = data.get("name")
    if not isinstance(name, str):
        name = "stack"
    placeholders: set[Loc] = set()
    sections: dict[str, dict[str, Any]] = {}
    for section, model, stand_in in (
        ("services", Service, lambda: Service.model_construct(command=["?"], port="auto", env={})),
        ("links", Link, lambda: Link.model_construct(from_="?", to="?")),
        ("jobs", Job, lambda: Job.model_construct(command=["?"], env={})),
    ):
        raw = data.get(section)
        entries: dict[str, Any] = {}
        if isinstance(raw, dict):
            for key, value in raw.items():
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
    stack = Stack.model_construct(name=name, monitor=monitor, plugin=None, allow_hosts=[], **sections)
    return stack, placeholders


def _load_stack(path: Path) -> tuple[Stack | None, list[Problem]]:
    """The stack and no problems, or the problems and (if any can be made) a partial stack."""
    doc = _read(path)
    if doc.data is None:
        return None, doc.problems
    stack = _validate(doc, Stack, path.parent)
    placeholders: set[Loc] = set()
    if stack is None and isinstance(doc.data, dict):
        stack, placeholders = _partial_stack(doc.data)
    if stack is not None:
        for loc, message in stack.check():
            if not any(loc[: len(p)] == p for p in placeholders):
                doc.add(loc, message)
    if doc.problems:
        return stack, doc.problems
    assert stack is not None
    stack._source = path
    return stack, []


def load_stack(path: str | os.PathLike[str]) -> Stack:
    """Load and check a stack file; raise InputError with every problem found."""
    stack, problems = _load_stack(_absolute(path))
    if problems or stack is None:
        raise InputError(problems)
    return stack


def _parse_or_none(parser: Any, value: Any) -> Any:
    try:
        return parser(value)
    except ValueError:
        return None


def _check_timeline(doc: Parsed, stack: Stack | None) -> dict[int, Any]:
    """Semantic checks of the raw timeline; returns the validated kind parameters by index.

    Works on the raw entries, field by field, so that a malformed ``at`` does not hide an
    unknown target in the same entry.
    """
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
        for span in spans:
            if stack.target_type(span.target) == "job" and not any(
                start <= span.start for start in job_starts.get(span.target, [])
            ):
                doc.add(
                    ("timeline", span.index, "target"),
                    f"job {span.target!r} is not started before {_fmt(span.start)}: "
                    f"add `{{at: ..., job: {span.target}}}` earlier in the timeline",
                )
    targets = data.get("targets")
    if isinstance(targets, dict):
        if targets.get("job_margin_min") is not None and not job_starts:
            doc.add(
                ("targets", "job_margin_min"),
                "there is no `{at, job: ...}` entry in the timeline to measure a job's margin on",
            )
        if targets.get("detect_within") is not None and stack is not None and stack.monitor is None:
            doc.add(
                ("targets", "detect_within"),
                f"detection is measured on the stack's own monitoring, and stack {stack.name!r} "
                "has no `monitor: {service, ready}`",
            )
    return validated


_fmt = units.format_duration


@dataclass(frozen=True, order=True)
class _Span:
    kind: str
    target: str
    start: float
    end: float
    index: int


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
        message = f"fault kind {name!r} could not be loaded: {broken}" if broken else None
        doc.add((*loc, "fault"), message or fault_kinds.unknown_message(name))
        return None
    kind = fault_kinds.get(name)
    params = {k: v for k, v in raw.items() if k not in FAULT_STEP_KEYS}
    try:
        validated[loc[-1]] = kind.validate_params(params)
    except ValidationError as exc:
        doc.problems.extend(
            _located(doc, exc, kind.Params, prefix=loc, extra_known=list(FAULT_STEP_KEYS))
        )

    length = None
    if kind.needs_for and "for" not in raw:
        doc.add(loc, f"{name} lasts until it is reverted: say for how long, like `for: 20s`")
    elif not kind.needs_for and "for" in raw:
        doc.add((*loc, "for"), f"{name} is instantaneous: it takes no `for`", at_key=True)
    elif "for" in raw:
        length = _parse_or_none(units.parse_duration, raw["for"])
        if length == 0:
            doc.add((*loc, "for"), "`for` must be more than 0s")

    target = raw.get("target")
    if stack is not None:
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


def _check_overlaps(doc: Parsed, spans: list[_Span]) -> None:
    """The same fault kind on the same target must not be in effect twice at once."""
    for previous, current in zip(sorted(spans), sorted(spans)[1:]):
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
    candidates = sorted(
        n for n in [*stack.services, *stack.links, *stack.jobs] if stack.target_type(n) in types
    )
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
            message = unknown_name_message("target", target, candidates)
            message += f" (targets of {name}: a {wanted})"
        else:
            message = f"unknown target {target!r}; stack {stack.name!r} has no {wanted} for {name}"
        doc.add((*loc, "target"), message)
        return None
    if actual not in types:
        doc.add(
            (*loc, "target"),
            f"{name} targets a {wanted}; {target!r} is a {_TARGET_WORDS[actual]}"
            + (f" (candidates: {', '.join(candidates)})" if candidates else ""),
        )
        return None
    return target


_TARGET_WORDS = {
    "link": "link",
    "service": "service",
    "postgres": "postgres service",
    "job": "job",
    "stack": "stack",
}

_KIND_NAMES = {Stack: "stack", Scenario: "scenario", DrillPlan: "drill plan"}


_StackCache = dict[Path, tuple[Stack | None, list[Problem]]]


def _load_scenario(path: Path, stacks: _StackCache | None = None) -> tuple[Scenario | None, list[Problem]]:
    doc = _read(path)
    if doc.data is None:
        return None, doc.problems
    return _scenario_from(doc, path, stacks if stacks is not None else {})


def _scenario_from(doc: Parsed, path: Path, stacks: _StackCache) -> tuple[Scenario | None, list[Problem]]:
    scenario = _validate(doc, Scenario, path.parent)
    if not isinstance(doc.data, dict):
        return None, doc.problems
    stack: Stack | None = None
    stack_value = doc.data.get("stack")
    stack_problems: list[Problem] = []
    if isinstance(stack_value, str) and stack_value.strip():
        stack_path = relative_to_file(stack_value, path.parent)
        if not stack_path.is_file():
            doc.add(
                ("stack",),
                f"stack file not found: {display_path(stack_path)} (the path is relative to this scenario)",
            )
        else:
            if stack_path not in stacks:
                stacks[stack_path] = _load_stack(stack_path)
            stack, stack_problems = stacks[stack_path]
            if stack_problems:
                doc.add(("stack",), f"the stack file {display_path(stack_path)} has problems (listed too)")
    validated = _check_timeline(doc, stack)
    problems = doc.problems + stack_problems
    if problems or scenario is None or stack is None:
        return None, problems
    scenario._stack = stack
    scenario._source = path
    for i, step in enumerate(scenario.timeline):
        if isinstance(step, FaultStep):
            step._kind_params = validated.get(i)
            if step.target is None and fault_kinds.get(step.fault).target_types == {"stack"}:
                step.target = stack.name
    return scenario, []


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Load and check a scenario and its stack; raise InputError with every problem found."""
    scenario, problems = _load_scenario(_absolute(path))
    if problems:
        raise InputError(_unique(problems))
    assert scenario is not None
    return scenario


def _plan_from(doc: Parsed, path: Path) -> tuple[DrillPlan | None, list[Problem]]:
    plan = _validate(doc, DrillPlan, path.parent)
    if not isinstance(doc.data, dict):
        return None, doc.problems
    files: list[Path] = []
    problems: list[Problem] = []
    patterns = doc.data.get("scenarios")
    if isinstance(patterns, list):
        for i, pattern in enumerate(patterns):
            if not isinstance(pattern, str) or not pattern.strip():
                continue
            full = str(relative_to_file(pattern, path.parent))
            matches = sorted(Path(m) for m in glob.glob(full, recursive=True) if os.path.isfile(m))
            if not matches:
                where = display_path(full)
                doc.add(("scenarios", i), f"{pattern!r} matches no file (relative to this plan: {where})")
            files.extend(m for m in matches if m not in files)
    stacks: _StackCache = {}
    scenarios: list[Scenario] = []
    ids: dict[str, Path] = {}
    for file in files:
        scenario, found = _load_scenario(file, stacks)
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


def load_plan(path: str | os.PathLike[str]) -> DrillPlan:
    """Load and check a drill plan and every scenario it names; raise InputError with all problems."""
    path = _absolute(path)
    doc = _read(path)
    if doc.data is None:
        raise InputError(doc.problems)
    plan, problems = _plan_from(doc, path)
    if problems:
        raise InputError(_unique(problems))
    assert plan is not None
    return plan


def document_kind(data: Any, path: Path | None = None) -> str | None:
    """``stack``, ``scenario``, ``plan``, or None, judged by the keys (then by the folder)."""
    if isinstance(data, dict):
        scores = {
            kind: sum(1 for key in data if key in fields)
            for kind, fields in (
                ("scenario", _field_names(Scenario)),
                ("stack", _field_names(Stack)),
                ("plan", _field_names(DrillPlan)),
            )
        }
        for kind, marker in (("scenario", "timeline"), ("stack", "services"), ("plan", "scenarios")):
            if marker in data:
                scores[kind] += 10
        best = max(scores.values())
        leaders = [kind for kind, score in scores.items() if score == best]
        if best > 0 and len(leaders) == 1:
            return leaders[0]
    if path is not None:
        folder = path.parent.name
        return {"stacks": "stack", "scenarios": "scenario", "drills": "plan"}.get(folder)
    return None


def _field_names(model: type[BaseModel]) -> set[str]:
    return {info.alias or name for name, info in model.model_fields.items()}


def load_any(path: str | os.PathLike[str]) -> Stack | Scenario | DrillPlan:
    """Load a stack, scenario or drill plan, telling which by its keys."""
    path = _absolute(path)
    doc = _read(path)
    if doc.data is None:
        raise InputError(doc.problems)
    if not isinstance(doc.data, dict):
        doc.add((), f"expected a mapping of keys (a stack, scenario or drill plan), got {_what(doc.data)}")
        raise InputError(doc.problems)
    kind = document_kind(doc.data, path)
    if kind == "stack":
        stack, problems = _load_stack(path)
        if problems or stack is None:
            raise InputError(problems)
        return stack
    if kind == "scenario":
        scenario, problems = _scenario_from(doc, path, {})
        if problems:
            raise InputError(_unique(problems))
        return scenario  # type: ignore[return-value]
    if kind == "plan":
        plan, problems = _plan_from(doc, path)
        if problems:
            raise InputError(_unique(problems))
        return plan  # type: ignore[return-value]
    doc.add(
        (),
        "cannot tell what this document is: a stack has `services:`, a scenario `timeline:`, "
        "a drill plan `scenarios:`",
    )
    raise InputError(doc.problems)


def _what(value: Any) -> str:
    names = {list: "a list", str: "a text value", int: "a number", float: "a number", bool: "true or false"}
    return names.get(type(value), "nothing" if value is None else type(value).__name__)


def _absolute(path: str | os.PathLike[str]) -> Path:
    return Path(os.path.abspath(path))


def _unique(problems: list[Problem]) -> list[Problem]:
    return sorted(set(problems))
