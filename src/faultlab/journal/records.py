"""The journal's records: one typed class per line of a run directory's files.

``journal.jsonl`` holds a :class:`RunHeader` first, then events, each with ``type``
(:data:`RECORD_TYPES`); the sample files hold one sample class each (``canary.jsonl``:
:class:`CanarySample`, ``monitor.jsonl``: :class:`MonitorSample`, ``requests.jsonl``:
:class:`RequestSample`, ``completions.jsonl``: :class:`CompletionSample`). The contract
these implement is in the docstring of :mod:`faultlab.journal`.

:func:`typed_record` is the one check of a JSON object against a record class: each field
against its annotation. The reader (:mod:`faultlab.journal.reader`) turns what it finds
into problems instead of exceptions.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar, Union

__all__ = [
    "SCHEMA",
    "JOURNAL_FILE",
    "CANARY_FILE",
    "MONITOR_FILE",
    "REQUESTS_FILE",
    "COMPLETIONS_FILE",
    "Record",
    "RunHeader",
    "Phase",
    "FaultEvent",
    "JobEvent",
    "Integrity",
    "JobResult",
    "Cleanup",
    "Decision",
    "RunbookEvent",
    "StepEvent",
    "ActionEvent",
    "ParticipantEvent",
    "Note",
    "Tools",
    "Alert",
    "PromqlSample",
    "ServiceEvent",
    "End",
    "UnknownRecord",
    "CanarySample",
    "MonitorSample",
    "RequestSample",
    "CompletionSample",
    "RECORD_TYPES",
    "SAMPLE_FILES",
    "NotFinite",
    "register_record",
    "typed_record",
    "json_number",
]

SCHEMA = "faultlab.journal/2"
SCHEMA_PREFIX = "faultlab.journal/"
JOURNAL_FILE = "journal.jsonl"
CANARY_FILE = "canary.jsonl"
MONITOR_FILE = "monitor.jsonl"
REQUESTS_FILE = "requests.jsonl"
COMPLETIONS_FILE = "completions.jsonl"

R = TypeVar("R", bound="Record")

RECORD_TYPES: dict[str, type[Record]] = {}
"""The journal's record classes keyed by their ``type``; new kinds register with
:func:`register_record`."""


def register_record(cls: type[R]) -> type[R]:
    """Class decorator adding a record type to :data:`RECORD_TYPES`."""
    RECORD_TYPES[cls.type] = cls
    return cls


@dataclass(frozen=True)
class Record:
    """Base of journal lines. ``extra`` keeps keys this version does not know (round-trips)."""

    type: ClassVar[str] = ""
    extra: Mapping[str, Any] = field(default_factory=dict, kw_only=True, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this record, ``type`` first."""
        out: dict[str, Any] = {"type": self.type} if self.type else {}
        for f in dataclasses.fields(self):
            if f.name != "extra":
                out[f.name] = getattr(self, f.name)
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Record:
        """Build from a JSON object as given, unchecked (the writer's use: what the engine
        hands in); unknown keys go to ``extra``, missing ones take defaults. Reading a file
        uses :func:`typed_record`, which checks every field."""
        known = _spec(cls).names
        kwargs = {k: v for k, v in data.items() if k in known}
        extra = {k: v for k, v in data.items() if k not in known and k != "type"}
        return cls(**kwargs, extra=extra)


@register_record
@dataclass(frozen=True)
class RunHeader(Record):
    """The first line of ``journal.jsonl``: what ran, when (wall time of the origin), targets,
    and the stack plugin's declaration (its words and integrity checks, for the reports)."""

    type: ClassVar[str] = "run"
    run_id: str = ""
    schema: str = SCHEMA
    scenario: Mapping[str, Any] = field(default_factory=dict)
    stack: Mapping[str, Any] = field(default_factory=dict)
    origin_wall: str = ""
    faultlab_version: str = ""
    host: str = ""
    targets: Mapping[str, Any] = field(default_factory=dict)
    steady_state: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    window_s: float = 1.0
    hold_s: float = 5.0
    probe_interval_s: float = 0.1
    duration_s: float | None = None
    plugin: str = ""
    declaration: Mapping[str, Any] = field(default_factory=dict)
    tools: Mapping[str, str] = field(default_factory=dict)
    monitoring: Mapping[str, Any] = field(default_factory=dict)


@register_record
@dataclass(frozen=True)
class Phase(Record):
    """A phase of the run begins or ends (``stack_up``, ``baseline``, ``load``, ...)."""

    type: ClassVar[str] = "phase"
    t: float
    name: str
    state: str


@register_record
@dataclass(frozen=True)
class FaultEvent(Record):
    """A fault's life: ``planned`` (with its revert plan, before injecting), ``injected``,
    ``active`` (the actual moment it took effect), ``reverted`` or ``revert_failed``."""

    type: ClassVar[str] = "fault"
    t: float
    event: str
    fault_id: str
    kind: str = ""
    target: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    planned_t: float | None = None
    revert_plan: str | None = None
    error: str | None = None


@register_record
@dataclass(frozen=True)
class JobEvent(Record):
    """A job of the stack ``started``, ``finished`` or ``failed``."""

    type: ClassVar[str] = "job"
    t: float
    job: str
    event: str
    detail: Mapping[str, Any] = field(default_factory=dict)


@register_record
@dataclass(frozen=True)
class Integrity(Record):
    """The data-integrity check after the run: violations counted per check the plugin ran,
    and every violation (``{"check", "ids", "detail"}``).

    ``outcomes`` counts where the requests ended up in the system's end state (the plugin's
    outcome classes, ``absent`` when not there): ``{"acknowledged": {class: n}, "attempted":
    {class: n}}``, attempted being the requests that got no answer in time, whose fate the
    client could not know. ``state`` names the end-state folder the check was re-performable
    from (``state/``), empty when the plugin checked the live system.
    """

    type: ClassVar[str] = "integrity"
    t: float
    acknowledged: int = 0
    checked: Mapping[str, int] = field(default_factory=dict)
    violations: list[Mapping[str, Any]] = field(default_factory=list)
    attempted: int = 0
    outcomes: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    state: str = ""


@register_record
@dataclass(frozen=True)
class JobResult(Record):
    """A job that finished, against its window and its deadline: when it ran and the margin
    left before the deadline (``deadline_name`` says what happens then)."""

    type: ClassVar[str] = "job_result"
    t: float
    job: str = ""
    started_t: float | None = None
    finished_t: float | None = None
    window_s: float | None = None
    deadline_t: float | None = None
    deadline_name: Any = None
    margin_s: float | None = None
    ok: bool | None = None


@register_record
@dataclass(frozen=True)
class Cleanup(Record):
    """Clean-up evidence: one thing reverted or removed, and whether that worked."""

    type: ClassVar[str] = "cleanup"
    t: float
    what: str
    ok: bool = True


@register_record
@dataclass(frozen=True)
class Decision(Record):
    """A decision taken during the run (``abort``, a decision rule's id) and why.

    A decision rule's records carry ``event``: ``triggered`` (its condition held for its
    ``for``; ``since_t`` is when it began to hold and ``values`` what it was judged on),
    ``decided`` (taken: ``by`` the rule itself or the person who confirmed it; ``actions``
    taken) or ``lapsed`` (nobody confirmed it in time).
    """

    type: ClassVar[str] = "decision"
    t: float
    what: str
    why: str = ""
    event: str = ""
    values: Mapping[str, Any] = field(default_factory=dict)
    since_t: float | None = None
    by: str = ""
    actions: list[str] = field(default_factory=list)


@register_record
@dataclass(frozen=True)
class RunbookEvent(Record):
    """A runbook's life in the run: ``loaded`` (the runbook as documented: id, version, file,
    SHA-256 and every step), ``started`` (with its ``trigger``), ``completed`` or
    ``abandoned`` (``reason``)."""

    type: ClassVar[str] = "runbook"
    t: float
    event: str
    runbook: str = ""
    version: str = ""
    sha256: str = ""
    documented: Mapping[str, Any] = field(default_factory=dict)
    trigger: str = ""
    reason: str = ""


@register_record
@dataclass(frozen=True)
class StepEvent(Record):
    """A runbook step: ``ready`` (the one before counted done), ``started``, ``done``,
    ``confirmed`` (the second person), ``failed``, ``skipped``, ``refused`` (a participant's
    request the rules refused: ``detail.why``), ``timed_out`` or ``unconfirmed`` (past its
    limit). ``by`` is the participant (``faultlab`` when done automatically)."""

    type: ClassVar[str] = "step"
    t: float
    step: str
    event: str
    runbook: str = ""
    kind: str = ""
    by: str = ""
    role: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)


@register_record
@dataclass(frozen=True)
class ActionEvent(Record):
    """An action of the registry: ``started``, ``done`` (``result``) or ``failed`` (``error``),
    ``by`` whom and for what (``purpose``: a step or a decision)."""

    type: ClassVar[str] = "action"
    t: float
    action: str
    event: str
    by: str = ""
    purpose: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    result: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None


@register_record
@dataclass(frozen=True)
class ParticipantEvent(Record):
    """The people of the run: ``planned`` (``people``: every planned participant with a role,
    and the ``mode``: automatic, scripted, terminal or gameday) and ``joined`` (``name`` and
    ``role`` of someone who came to the console)."""

    type: ClassVar[str] = "participants"
    t: float
    event: str
    people: list[Mapping[str, Any]] = field(default_factory=list)
    mode: str = ""
    name: str = ""
    role: str = ""


@register_record
@dataclass(frozen=True)
class Note(Record):
    """A free-form note (``info`` or ``warning``)."""

    type: ClassVar[str] = "note"
    t: float
    message: str
    level: str = "info"


@register_record
@dataclass(frozen=True)
class Tools(Record):
    """Versions of the tools the run used (``python``, ``locust``, ``postgres``...), written
    once the stack is up: a server's version is only known once it runs."""

    type: ClassVar[str] = "tools"
    t: float
    tools: Mapping[str, str] = field(default_factory=dict)


@register_record
@dataclass(frozen=True)
class Alert(Record):
    """An alert of the stack's monitoring as Alertmanager delivered it to faultlab: ``firing``
    or ``resolved``, its ``name`` (``alertname``) and ``labels``, when Prometheus says it
    became active (``active_t``, and ``active_wall`` as Prometheus wrote it) and, resolved,
    when it ended (``ended_t``, ``ended_wall``). ``t`` is when faultlab received it.
    ``fingerprint`` is Alertmanager's identity of the alert: it pairs a firing with its
    resolution."""

    type: ClassVar[str] = "alert"
    t: float
    status: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    fingerprint: str = ""
    active_t: float | None = None
    active_wall: str = ""
    ended_t: float | None = None
    ended_wall: str = ""


@register_record
@dataclass(frozen=True)
class PromqlSample(Record):
    """One evaluation of a scenario's PromQL condition against the run's Prometheus:
    ``condition`` names it (``steady_state.promql[0]``, ``abort_when.promql[0]``, as the
    header's ``monitoring.promql`` lists them), ``value`` is the number it gave (None: no
    value, or ``error`` says why) and ``ok`` whether the condition held (a steady-state
    bound met, an abort threshold not crossed)."""

    type: ClassVar[str] = "promql"
    t: float
    condition: str
    value: float | None = None
    ok: bool = False
    error: str | None = None


@register_record
@dataclass(frozen=True)
class ServiceEvent(Record):
    """A supervised service changed: ``started``, ``exited``, ``restarting``, ``restarted``,
    ``gave_up``, ``killed``, ``paused``, ``resumed``, ``stopped``... (its runtime's words),
    with the restart count and the exit code or signal when known; ``by_operator`` marks a
    change a fault or a person asked for."""

    type: ClassVar[str] = "service"
    t: float
    service: str
    kind: str
    restart_count: int | None = None
    exit_code: int | None = None
    signal: str | None = None
    by_operator: bool | None = None


@register_record
@dataclass(frozen=True)
class End(Record):
    """The last line of a run that ended: ``completed``, ``aborted``, ``interrupted``, ``failed``."""

    type: ClassVar[str] = "end"
    t: float
    status: str
    reason: str = ""


@dataclass(frozen=True)
class UnknownRecord(Record):
    """A line whose ``type`` this version does not know; kept verbatim."""

    raw: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The line as it was read."""
        return dict(self.raw)


@dataclass(frozen=True)
class CanarySample(Record):
    """One canary request: sent at ``t_send``, done at ``t_done``; ``ack`` is what the
    system acknowledged (an id), None if nothing was acknowledged; ``request_id`` is the id
    the request carried whatever the answer (so one that got no answer in time can be looked
    for in the system's end state)."""

    t_send: float
    t_done: float
    ok: bool
    latency_s: float
    status: int | None = None
    error: str | None = None
    ack: str | None = None
    request_id: str | None = None

    @property
    def t(self) -> float:
        """The send time, ``t_send``: what ``t`` is in every other sample."""
        return self.t_send


@dataclass(frozen=True)
class MonitorSample(Record):
    """One poll of the stack's own monitoring (readiness endpoint, metrics)."""

    t: float
    ready: bool
    status: int | None = None
    latency_s: float | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RequestSample(Record):
    """One request of the load generator; ``t`` is its send time; ``request_id`` is the id
    it carried, when the locustfile says (``context={"ack": ...}``)."""

    t: float
    name: str
    ok: bool
    latency_s: float
    status: int | None = None
    ack: str | None = None
    error: str | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class CompletionSample(Record):
    """How long an acknowledged request waited to be completed, as the stack's plugin measured
    it after the run; ``t`` is the send time of the request that was acknowledged ``ack``."""

    t: float
    ack: str
    delay_s: float


SAMPLE_FILES: dict[str, type[Record]] = {
    CANARY_FILE: CanarySample,
    MONITOR_FILE: MonitorSample,
    REQUESTS_FILE: RequestSample,
    COMPLETIONS_FILE: CompletionSample,
}
"""The sample class of each sample file of a run directory."""


class NotFinite(float):
    """``NaN``, ``Infinity`` or ``-Infinity`` as the reader decodes them. JSON has no such
    numbers (Python's ``json`` writes them all the same); being a type of their own, they
    fail every field annotated ``float``, so a time or a latency is always a finite number."""


def json_number(value: Any) -> float | None:
    """``value`` as a float when a ``float`` field would take it (a finite JSON number, not
    true or false), else None: for numbers inside the journal's free-form objects (a
    readiness body, the targets)."""
    return float(value) if type(value) in (int, float) else None


_MISSING: Any = object()
_CACHED_SIGNATURES = 64


@dataclass(frozen=True)
class _Check:
    """What a field's annotation accepts: these exact types (None: anything), null when
    ``optional``, and for a container the check of each of its values."""

    types: tuple[type, ...] | None
    optional: bool
    expected: str
    inner: _Check | None = None

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.optional or self.types is None
        if self.types is not None and type(value) not in self.types:
            return False
        if self.inner is not None:
            inner = self.inner
            return all(inner.accepts(v) for v in (value.values() if type(value) is dict else value))
        return True


_SCALARS: dict[Any, tuple[tuple[type, ...], str]] = {
    float: ((int, float), "a number"),
    int: ((int,), "a whole number"),
    bool: ((bool,), "true or false"),
    str: ((str,), "a string"),
}


def _check_of(annotation: Any) -> _Check:
    if annotation is Any:
        return _Check(None, True, "anything")
    if annotation in _SCALARS:
        kinds, words = _SCALARS[annotation]
        return _Check(kinds, False, words)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            inner = _check_of(rest[0])
            return dataclasses.replace(inner, optional=True, expected=f"{inner.expected} or null")
    if origin in (dict, Mapping):
        values = _check_of(args[1]) if len(args) == 2 and args[1] is not Any else None
        words = "an object" if values is None else f"an object whose values are each {values.expected}"
        return _Check((dict,), False, words, values)
    if origin is list:
        items = _check_of(args[0]) if args and args[0] is not Any else None
        words = "a list" if items is None else f"a list whose items are each {items.expected}"
        return _Check((list,), False, words, items)
    raise TypeError(f"a journal record field cannot be annotated {annotation!r}")


@dataclass(frozen=True)
class _Field:
    name: str
    check: _Check
    required: bool
    default: Any
    factory: Any

    @property
    def is_float(self) -> bool:
        """A ``float`` field: a whole JSON number in it is read as a float."""
        return self.check.types == _SCALARS[float][0] and self.check.inner is None

    def default_value(self) -> Any:
        return self.factory() if self.factory is not None else self.default


@dataclass
class _Spec:
    """A record class's fields with their checks, and the signatures already found clean.

    ``by_signature`` is False when a field's check looks inside its value (a mapping of
    numbers) or the class has a ``__post_init__``: then every object is checked field by
    field and built by ``__init__``.
    """

    fields: tuple[_Field, ...]
    names: frozenset[str]
    by_signature: bool
    # (keys, types of the values) of objects that passed every check with no key besides
    # the fields -> the fields they lack, and the float fields holding a whole number.
    # Objects written by one writer share a handful of signatures, so every later one is
    # judged by a lookup instead of field by field.
    clean: dict[tuple[tuple[str, ...], tuple[type, ...]], tuple[tuple[_Field, ...], tuple[str, ...]]] = field(
        default_factory=dict)


_SPECS: dict[type, _Spec] = {}


def _spec(cls: type[Record]) -> _Spec:
    spec = _SPECS.get(cls)
    if spec is None:
        hints = typing.get_type_hints(cls)
        fields = []
        for f in dataclasses.fields(cls):
            if not f.init or f.name == "extra":
                continue
            no_default = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            fields.append(_Field(
                name=f.name,
                check=_check_of(hints[f.name]),
                required=no_default,
                default=None if f.default is dataclasses.MISSING else f.default,
                factory=None if f.default_factory is dataclasses.MISSING else f.default_factory,
            ))
        spec = _SPECS[cls] = _Spec(
            fields=tuple(fields),
            names=frozenset(f.name for f in fields),
            by_signature=not hasattr(cls, "__post_init__") and all(f.check.inner is None for f in fields),
        )
    return spec


def _shown(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except ValueError:
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def typed_record(cls: type[R], data: Mapping[str, Any]) -> tuple[R | None, list[str]]:
    """``data`` read as a ``cls`` record, each field checked against its annotation, and what
    was wrong with it (sentences, empty when nothing was).

    A required field missing or of the wrong type gives no record; an optional field of the
    wrong type is read as its default. ``float`` takes any JSON number but a non-finite one
    (and holds a float), ``int`` a whole number, ``bool`` only true or false; keys the class
    does not know go to ``extra``. Never raises for bad data.
    """
    spec = _spec(cls)
    signature = None
    if spec.by_signature and type(data) is dict:
        signature = (tuple(data), tuple(map(type, data.values())))
        plan = spec.clean.get(signature)
        if plan is not None:
            # A signature already judged clean: build the record the way its generated
            # __init__ would, minus one frozen __setattr__ per field.
            missing, whole = plan
            record = object.__new__(cls)
            values = record.__dict__
            values.update(data)
            for f in missing:
                values[f.name] = f.default_value()
            for name in whole:
                values[name] = float(values[name])
            values["extra"] = {}
            return record, []
    kwargs: dict[str, Any] = {}
    problems: list[str] = []
    complete = True
    for f in spec.fields:
        value = data.get(f.name, _MISSING)
        if value is _MISSING:
            if f.required:
                problems.append(f"no {f.name}")
                complete = False
        elif not f.check.accepts(value):
            problem = f"{f.name} is {_shown(value)}, expected {f.check.expected}"
            if f.required:
                complete = False
            else:
                problem += f"; read as {_shown(f.default_value())}"
            problems.append(problem)
        else:
            kwargs[f.name] = float(value) if f.is_float and type(value) is int else value
    if not complete:
        return None, problems
    extra = {k: v for k, v in data.items() if k not in spec.names and k != "type"}
    if signature is not None and not problems and not extra and len(spec.clean) < _CACHED_SIGNATURES:
        missing = tuple(f for f in spec.fields if f.name not in data)
        whole = tuple(f.name for f in spec.fields if f.is_float and type(data.get(f.name)) is int)
        spec.clean[signature] = (missing, whole)
    return cls(**kwargs, extra=extra), problems
