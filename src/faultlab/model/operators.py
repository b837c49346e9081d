"""The operator script: scripted people answering a drill's prompts, for tests and CI.

``faultlab drill PLAN --operator-script FILE`` (or ``faultlab run``) lets these people do
what the runbook and the decision rules ask of a person, each after a delay::

    participants:
      - {name: Aiko Tanaka, role: incident commander}
      - {name: Ben Carter, role: DBA}
      - {name: Chie Mori, role: independent reviewer}
    steps:
      declare: {done: {by: Aiko Tanaka, after: 2s}}
      start-db: {confirm: {by: Chie Mori, after: 1s}}
      reconcile: {start: {by: Ben Carter}, done: {by: Ben Carter, after: 3s}}   # nobody confirms
    decisions:
      halt-intake: {confirm: {by: Aiko Tanaka, after: 2s}}

``start.after`` counts from the moment the step is ready (the one before it counted done),
``done.after`` from its start, ``confirm.after`` from its done. What the script leaves out
nobody does: a step that needs it waits until its limit. Pure: no YAML, no engine.
"""

from __future__ import annotations

from pydantic import Field

from faultlab.model.document import Document
from faultlab.model.plan import Participant
from faultlab.model.types import Duration, StrictModel, as_written

__all__ = ["Response", "StepScript", "DecisionScript", "OperatorScript"]


class Response(StrictModel):
    """One scripted person doing one thing ``after`` a delay."""

    by: str = Field(min_length=1, description="the participant's name")
    after: Duration = Field(default=as_written("0s"), description="delay before doing it")


class StepScript(StrictModel):
    """How the people answer one runbook step (any part left out is not done by anyone)."""

    start: Response | None = None
    done: Response | None = None
    confirm: Response | None = None
    skip: Response | None = None


class DecisionScript(StrictModel):
    """Who confirms one decision rule's decision, and after how long."""

    confirm: Response | None = None


class OperatorScript(Document):
    """Scripted participants and their answers to steps and decisions, by id."""

    participants: list[Participant] = Field(min_length=1)
    steps: dict[str, StepScript] = Field(default_factory=dict)
    decisions: dict[str, DecisionScript] = Field(default_factory=dict)

    def names(self) -> set[str]:
        """Every participant's name."""
        return {p.person()["name"] for p in self.participants}
