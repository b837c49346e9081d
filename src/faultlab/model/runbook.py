"""The runbook document and the drill programme's parts of a scenario: decisions and triggers.

A runbook (``runbooks/*.yaml``) is a versioned recovery procedure: steps in the order they are
to be done, each with an id, a title in English (and Japanese), a kind, an expected duration,
and whether a second person must confirm it::

    id: RB-25
    version: "1.2"
    title: {en: Recovery of the database and the gateway, ja: データベースとゲートウェイの復旧}
    steps:
      - {id: declare, kind: notify, title: {en: Declare the incident}, to: [management], expect: 3s}
      - {id: start-db, kind: action, title: {en: Start the database}, action: start_database,
         with: {service: db}, expect: 5s, four_eyes: true}
      - {id: db-up, kind: check, title: {en: The database answers}, check: {database_up: db}, expect: 3s}
      - {id: reconcile, kind: manual, title: {en: Reconcile what was acknowledged}, expect: 5s, four_eyes: true}

A scenario names the runbook to follow and when it starts (``runbook: {file, start}``) and its
decision rules (``decisions:``). Conditions (a check step's ``check``, a rule's ``when``, a
start's ``when``) are one-key mappings naming a condition of the registry
(:data:`faultlab.registry.conditions`) with its parameters: ``{alert: NAME}``,
``{database_up: db}``, ``{all: [..]}``. Actions name an action of
:data:`faultlab.registry.actions` with its parameters in ``with``. The loader checks both
names and parameters against the registries. Pure: no YAML, no engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, PrivateAttr, Tag, field_validator, model_validator

from faultlab.model.document import Document, resolve_path
from faultlab.model.types import Duration, Identifier, Localised, StrictModel, as_written

__all__ = [
    "Runbook",
    "RunbookStep",
    "ActionStep",
    "ManualStep",
    "CheckStep",
    "NotifyStep",
    "ActionCall",
    "RunbookRef",
    "RunbookStart",
    "DecisionRule",
    "DecisionConfirm",
    "Condition",
    "STEP_KINDS",
    "DEFAULT_LIMIT_FACTOR",
]

STEP_KINDS = ("action", "manual", "check", "notify")
"""The kinds of runbook steps."""

DEFAULT_LIMIT_FACTOR = 3.0
"""A step without ``limit`` is given up on after this many times its expected duration."""

Condition = Annotated[
    dict[str, Any],
    Field(min_length=1, max_length=1, description="one condition of the registry: {name: parameters}"),
]
"""A condition as written: ``{alert: order_intake_failing}``; checked by the loader."""


class ActionCall(StrictModel):
    """An action of the registry and its parameters: ``{action: restart_service, with: {service: gateway}}``."""

    action: str = Field(min_length=1, description="an action of the `faultlab.actions` registry (docs/programme.md)")
    with_: dict[str, Any] = Field(default_factory=dict, alias="with", description="the action's parameters")


class _Step(StrictModel):
    id: Identifier = Field(description="the step's id, unique in the runbook")
    title: Localised = Field(description="what the step is: {en: ..., ja: ...}")
    expect: Duration = Field(description="how long the step is expected to take, as documented")
    limit: Duration | None = Field(
        None, description=f"give up on the step after this long (default {DEFAULT_LIMIT_FACTOR:g} x expect)")
    four_eyes: bool = Field(False, description="a second, different person must confirm the step")
    role: str | None = Field(None, min_length=1, description="who is to do it, like 'DBA'")
    instructions: Localised | None = Field(None, description="what to do, for the people doing it")

    @property
    def limit_s(self) -> float:
        """Seconds after its start the step is given up on, confirmation included."""
        return self.limit if self.limit is not None else max(1.0, DEFAULT_LIMIT_FACTOR * self.expect)

    @model_validator(mode="after")
    def _limit_covers_expect(self) -> _Step:
        if self.limit is not None and self.limit < self.expect:
            raise ValueError(f"limit ({self.limit:g} s) is shorter than expect ({self.expect:g} s)")
        return self


class ActionStep(_Step):
    """Done by faultlab through an action of the registry (started by a person in game-day mode)."""

    kind: Literal["action"]
    action: str = Field(min_length=1, description="an action of the `faultlab.actions` registry (docs/programme.md)")
    with_: dict[str, Any] = Field(default_factory=dict, alias="with", description="the action's parameters")


class ManualStep(_Step):
    """Done by a person, who marks it done (console, terminal or operator script)."""

    kind: Literal["manual"]


class CheckStep(_Step):
    """A condition that must hold, waited for until the step's limit."""

    kind: Literal["check"]
    check: Condition


class NotifyStep(_Step):
    """Someone tells ``to`` about ``about`` (escalation, customer notice, incident report draft)."""

    kind: Literal["notify"]
    to: list[str] = Field(min_length=1, description="who is told, like [management, customers]")
    about: Localised | None = Field(None, description="what they are told")
    channel: str | None = Field(None, min_length=1, description="how: phone, mail, web notice...")


def _step_kind(value: Any) -> str | None:
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    return kind if kind in STEP_KINDS else None


RunbookStep = Annotated[
    Annotated[ActionStep, Tag("action")] | Annotated[ManualStep, Tag("manual")]
    | Annotated[CheckStep, Tag("check")] | Annotated[NotifyStep, Tag("notify")],
    Discriminator(
        _step_kind,
        custom_error_type="step_kind",
        custom_error_message="a step needs `kind:` action, manual, check or notify",
    ),
]


class Runbook(Document):
    """A recovery procedure: versioned, its steps in the order they are to be done."""

    id: Identifier = Field(description="like RB-25")
    version: str = Field(min_length=1, description="the document's version, like '1.2'")
    title: Localised
    owner: str | None = Field(None, min_length=1, description="who maintains the runbook")
    description: str = Field("", description="free text for the report")
    steps: list[RunbookStep] = Field(min_length=1)

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            return value
        return str(value)

    @model_validator(mode="after")
    def _unique_ids(self) -> Runbook:
        seen: set[str] = set()
        for step in self.steps:
            if step.id in seen:
                raise ValueError(f"step id {step.id!r} is used twice")
            seen.add(step.id)
        return self

    def step(self, step_id: str) -> Any:
        """The step called ``step_id`` (KeyError when there is none)."""
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def documented(self) -> dict[str, Any]:
        """The runbook as documented, for the journal: id, version, title and every step."""
        return {
            "id": self.id, "version": self.version, "title": self.title.model_dump(mode="json"),
            "owner": self.owner, "file": str(self.source) if self.source else "",
            "steps": [s.model_dump(mode="json", by_alias=True, exclude_none=True) for s in self.steps],
        }


class RunbookStart(StrictModel):
    """When the runbook starts: exactly one of ``on`` (detection, or a decision), ``at`` or ``when``."""

    on: Literal["detection", "decision"] | None = Field(
        None, description="detection: the monitoring first shows the problem after a fault took effect; "
                          "decision: the decision rule named by `decision` was taken")
    decision: Identifier | None = Field(None, description="the decision rule (with on: decision)")
    at: Duration | None = Field(None, description="a time from the start of the load")
    when: Condition | None = Field(None, description="a condition")
    for_: Duration = Field(default=as_written("0s"), alias="for", description="how long `when` must hold")

    @model_validator(mode="after")
    def _exactly_one(self) -> RunbookStart:
        given = [k for k in ("on", "at", "when") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of `on: detection`, `on: decision`, `at: 20s` or `when: {...}`")
        if (self.on == "decision") != (self.decision is not None):
            raise ValueError("`on: decision` goes with `decision: RULE-ID` (and only it)")
        return self


class RunbookRef(StrictModel):
    """The runbook a scenario follows, and when it starts."""

    file: Path = Field(description="the runbook file, relative to the scenario")
    start: RunbookStart = Field(default_factory=lambda: RunbookStart.model_validate({"on": "detection"}))

    _runbook: Runbook | None = PrivateAttr(None)
    _resolve_file = field_validator("file", mode="before")(resolve_path)

    @property
    def runbook(self) -> Runbook:
        """The loaded runbook (attached by the loader)."""
        if self._runbook is None:
            raise RuntimeError("this runbook reference was not loaded with faultlab.loader")
        return self._runbook


class DecisionConfirm(StrictModel):
    """A person who must confirm a decision before its actions are taken."""

    role: str = Field(min_length=1, description="who decides, like 'incident commander'")
    within: Duration = Field(default=as_written("60s"), description="the decision lapses if not confirmed by then")


class DecisionRule(StrictModel):
    """A rule evaluated while the run goes: ``when`` holding for ``for`` -> ``then`` (once)."""

    id: Identifier
    rule: str = Field(min_length=1, description="the rule in words, as the programme states it")
    when: Condition
    for_: Duration = Field(default=as_written("0s"), alias="for", description="how long `when` must hold")
    then: list[ActionCall] = Field(default_factory=list, description="actions taken on the decision")
    confirm: DecisionConfirm | None = Field(None, description="a person confirms before the actions are taken")
