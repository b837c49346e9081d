"""The programme document: the failure tests a drill plan runs, the critical operations they
cover, and how long each operation may be out (its impact tolerance).

    title: Failure-test programme
    plan: drills/quarterly.yaml        # the plan that runs the failure tests
    period: 13w                        # a failure test older than this is overdue (a quarter)
    owner: Operations                  # who owns a finding unless its failure test says
    operations:
      intake: {label: Request intake, tolerance: 2m, measure: impact}
      nightly: {label: Nightly job, tolerance: 0s, measure: job_overrun}
    failure_tests:
      FT-01: {operations: [intake], owner: Database team}

The register (:mod:`faultlab.register`) reads it with the runs of the reports folder.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, PlainValidator, PrivateAttr, WithJsonSchema, field_validator, model_validator

from faultlab.model.document import Document, resolve_path
from faultlab.model.types import Duration, Identifier, LocalText, Name, StrictModel

__all__ = ["Programme", "Operation", "FailureTest", "OUTAGE_MEASURES", "PERIOD_PATTERN", "parse_period",
           "DEFAULT_PERIOD_DAYS"]

PERIOD_PATTERN = r"^[ \t]*([0-9]+)[ \t]*(d|w)[ \t]*$"
"""A period in whole days or weeks: ``91d``, ``13w``."""

_PERIOD_RE = re.compile(PERIOD_PATTERN)

DEFAULT_PERIOD_DAYS = 91.0
"""A quarter: the period after which a failure test is overdue unless the programme says."""

OUTAGE_MEASURES = ("impact", "completion_delay", "job_overrun")
"""How a critical operation's outage is measured in a run: ``impact`` (the customer impact,
from its start to the recovery point), ``completion_delay`` (the longest completion delay of
an acknowledged request), ``job_overrun`` (how long a job ran past its deadline)."""


def parse_period(value: Any) -> float:
    """``91d`` / ``13w`` as days."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise ValueError(f"write the period with its unit, like 91d or 13w (got {value!r})")
    match = _PERIOD_RE.match(str(value))
    if match is None or int(match[1]) <= 0:
        raise ValueError(f"expected a period of days or weeks like 91d or 13w, got {value!r}")
    return float(match[1]) * (7.0 if match[2] == "w" else 1.0)


Period = Annotated[
    float,
    PlainValidator(lambda value: value if isinstance(value, float) else parse_period(value)),
    WithJsonSchema({"type": "string", "pattern": PERIOD_PATTERN,
                    "description": "days or weeks, like 91d or 13w"}),
]
"""A period in days (written ``91d`` or ``13w``)."""


class Operation(StrictModel):
    """A critical operation of the system: its name in the reports, the longest outage it may
    suffer (its impact tolerance) and how that outage is measured in a run."""

    label: LocalText = Field(description="its name in the reports (or {en: ..., ja: ...})")
    tolerance: Duration = Field(description="the maximum outage it may suffer (its impact tolerance)")
    measure: Literal["impact", "completion_delay", "job_overrun"] = Field(
        "impact", description="impact: customer impact start to recovery; completion_delay: the longest "
                              "completion delay; job_overrun: how long a job ran past its deadline"
    )


class FailureTest(StrictModel):
    """What the programme says of one failure test (by its scenario id)."""

    operations: list[Name] = Field(default_factory=list, description="the critical operations it exercises")
    owner: str | None = Field(None, min_length=1, description="who owns its findings")


class Programme(Document):
    """The failure-test programme: its plan, its period, its critical operations."""

    title: LocalText = Field(description="the programme's name (or {en: ..., ja: ...})")
    plan: Path = Field(description="the drill plan that runs the failure tests, relative to this file")
    period: Period = Field(DEFAULT_PERIOD_DAYS, description="a failure test last run longer ago is overdue")
    owner: str | None = Field(None, min_length=1, description="who owns a finding whose failure test names none")
    operations: dict[Name, Operation] = Field(min_length=1, description="the critical operations")
    failure_tests: dict[Identifier, FailureTest] = Field(
        default_factory=dict, description="failure tests by scenario id: the operations each covers, its owner "
                                          "(a failure test named here but not in the plan shows as never run)"
    )

    _plan: Any = PrivateAttr(None)

    _resolve_plan = field_validator("plan", mode="before")(resolve_path)

    @property
    def resolved_plan(self) -> Any:
        """The drill plan this programme names, loaded with its scenarios (by the loader)."""
        if self._plan is None:
            raise RuntimeError("this programme was not loaded with faultlab.loader.load_programme")
        return self._plan

    @model_validator(mode="after")
    def _operations_exist(self) -> Programme:
        for test_id, test in self.failure_tests.items():
            unknown = [op for op in test.operations if op not in self.operations]
            if unknown:
                raise ValueError(f"failure test {test_id} names unknown operation(s) {', '.join(unknown)}; "
                                 f"the operations are {', '.join(self.operations)}")
        return self

    def owner_of(self, test_id: str) -> str | None:
        """Who owns the findings of ``test_id``."""
        test = self.failure_tests.get(test_id)
        return test.owner if test is not None and test.owner else self.owner
