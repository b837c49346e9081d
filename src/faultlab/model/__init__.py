"""Strict models of the three documents: :class:`Stack`, :class:`Scenario`, :class:`DrillPlan`.

Pure: no YAML, no files, no network. Unknown keys are errors everywhere; values with units
are parsed by :mod:`faultlab.units` into seconds, bytes, fractions and per-second rates.
Load documents with :mod:`faultlab.loader`, which adds file:line:col to every problem.
"""

from faultlab.model.plan import Approval, DrillPlan, GateTolerance, Participant
from faultlab.model.scenario import (
    AbortWhen,
    Canary,
    FaultStep,
    JobStep,
    Load,
    PromqlAbort,
    PromqlBound,
    Scenario,
    SteadyState,
    Targets,
    TimelineEntry,
)
from faultlab.model.stack import Job, Link, Monitor, Monitoring, Postgres, Readiness, Service, Stack
from faultlab.model.types import Bandwidth, Duration, Fraction, Percentage, Rate, Size

__all__ = [
    "Stack",
    "Service",
    "Postgres",
    "Readiness",
    "Link",
    "Job",
    "Monitor",
    "Monitoring",
    "Scenario",
    "Load",
    "Canary",
    "SteadyState",
    "FaultStep",
    "JobStep",
    "TimelineEntry",
    "Targets",
    "AbortWhen",
    "PromqlBound",
    "PromqlAbort",
    "DrillPlan",
    "Participant",
    "Approval",
    "GateTolerance",
    "Duration",
    "Rate",
    "Size",
    "Bandwidth",
    "Percentage",
    "Fraction",
]
