"""The drill plan: which scenarios, how many trials, who takes part, and the CI gate."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, PlainValidator, PrivateAttr, WithJsonSchema, field_validator

from faultlab import units
from faultlab.model.document import Document, resolve_path
from faultlab.model.scenario import Scenario
from faultlab.model.types import Duration, LocalText, StrictModel, as_written, text_of

__all__ = [
    "DrillPlan",
    "Participant",
    "Approval",
    "RequiredApproval",
    "GateTolerance",
    "GATE_METRICS",
    "GATE_STATISTICS",
]

GATE_METRICS = (
    "mttd",
    "rto",
    "recovery_after_clear",
    "impact",
    "completion_delay",
    "job_margin",
    "success_rate",
    "p99_latency",
    "integrity_violations",
)
"""Measures the gate compares with the baseline."""

GATE_STATISTICS = ("p50", "p90", "p95", "p99", "max", "min", "mean")
"""Statistics over the trials of a scenario."""



class Participant(StrictModel):
    """Someone taking part in the drill."""

    name: LocalText = Field(description="who: a person, or a stand-in like 'on-call engineer'")
    role: LocalText = Field(description="like 'incident commander', 'DBA', 'observer'")

    def person(self) -> dict[str, str]:
        """Who this is as the journal names people: the English name and role."""
        return {"name": text_of(self.name, "en") or "", "role": text_of(self.role, "en") or ""}


class Approval(StrictModel):
    """Someone who approved the plan or its report."""

    name: LocalText
    role: LocalText
    date: dt.date | None = None


class RequiredApproval(StrictModel):
    """An approval the plan needs before it may start: ``faultlab approve PLAN --role ROLE``.

    The approval signs the hash of the plan with every scenario, stack and runbook it uses;
    ``key`` (a public-key file relative to the plan, or a key name of the key folder) pins
    whose key must have signed it.
    """

    role: str = Field(min_length=1, description="like 'drill lead', 'independent reviewer', 'management'")
    key: str | None = Field(None, min_length=1, description="the public key the approval must be signed with")
    valid_for: Duration = Field(default=as_written("720h"),
                                description="an approval older than this has expired (720h = 30 days)")


class GateTolerance(StrictModel):
    """How much worse than the baseline a measure may get: ``+20%`` or ``+1s`` (or ``+0``)."""

    model_config = {"frozen": True}

    text: str
    relative: float | None = Field(
        default=None, description="allowed increase as a fraction of the baseline"
    )
    absolute: float | None = Field(
        default=None, description="allowed increase in the measure's unit (seconds for times)"
    )


def _tolerance(value: Any) -> GateTolerance:
    if isinstance(value, GateTolerance):
        return value
    amount, unit = units.parse_tolerance(value)
    text = str(value).strip()
    if unit == "%":
        return GateTolerance(text=text, relative=amount)
    return GateTolerance(text=text, absolute=amount)


def _gate_key(value: Any) -> str:
    from faultlab.registry import unknown_name_message

    if not isinstance(value, str) or "." not in value:
        raise ValueError(
            f"expected MEASURE.STATISTIC like 'rto.p90', got {value!r}; measures: "
            + ", ".join(GATE_METRICS)
        )
    metric, _, stat = value.partition(".")
    if metric not in GATE_METRICS:
        raise ValueError(unknown_name_message("measure", metric, GATE_METRICS))
    if stat not in GATE_STATISTICS:
        raise ValueError(unknown_name_message("statistic", stat, GATE_STATISTICS))
    return value


GateKey = Annotated[
    str,
    PlainValidator(_gate_key),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": rf"^({'|'.join(GATE_METRICS)})\.({'|'.join(GATE_STATISTICS)})$",
        }
    ),
]

Tolerance = Annotated[
    GateTolerance,
    PlainValidator(_tolerance),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": units.TOLERANCE_PATTERN},
                {"type": "number", "minimum": 0},
            ],
            "description": "how much worse than the baseline is allowed: +20%, +1s, +0",
        }
    ),
]


class DrillPlan(Document):
    """A drill: scenarios (globs relative to the plan), trials, people, languages, the gate."""

    title: LocalText
    environment: LocalText = Field(description="where the drill runs, for the report")
    scenarios: list[str] = Field(
        min_length=1, description="scenario files or globs, relative to the plan"
    )
    trials: int = Field(1, ge=1, le=1000, description="runs per scenario")
    participants: list[Participant] = Field(default_factory=list)
    approvals: list[Approval] = Field(default_factory=list)
    requested_by: str | None = Field(None, min_length=1, description="who asks for the drill (cannot approve it)")
    require_approvals: list[RequiredApproval] = Field(
        default_factory=list, description="approvals by role the plan needs before `faultlab drill` starts it")
    languages: list[Literal["en", "ja"]] = Field(
        ["en"], min_length=1, description="report languages"
    )
    baseline: Path | None = Field(None, description="baseline run or index the gate compares with")
    programme: Path | None = Field(
        None, description="the programme file whose register the book shows for this drill (relative to the plan)"
    )
    gate: dict[GateKey, Tolerance] = Field(
        default_factory=dict, description="allowed regressions, like {'rto.p90': '+20%'}"
    )

    _scenario_files: list[Path] = PrivateAttr(default_factory=list)
    _scenarios: list[Scenario] = PrivateAttr(default_factory=list)
    _verified_approvals: list[dict[str, Any]] = PrivateAttr(default_factory=list)

    _resolve_baseline = field_validator("baseline", mode="before")(resolve_path)
    _resolve_programme = field_validator("programme", mode="before")(resolve_path)

    @field_validator("languages")
    @classmethod
    def _no_repeats(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a language is listed twice")
        return value

    @property
    def scenario_files(self) -> list[Path]:
        """The scenario files the globs matched, in order, each once (set by the loader)."""
        return list(self._scenario_files)

    @property
    def verified_approvals(self) -> list[dict[str, Any]]:
        """The required approvals checked before the start (set by the approval check)."""
        return list(self._verified_approvals)

    @property
    def resolved_scenarios(self) -> list[Scenario]:
        """The loaded scenarios, in the order of :attr:`scenario_files` (set by the loader)."""
        return list(self._scenarios)
