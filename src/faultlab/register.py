"""The programme's register: every failure test's last run, verdict, age and overdue state, the
coverage of the critical operations and fault classes, each operation's impact tolerance
against the worst outage of the last drill, and the findings carried forward.

:func:`collect_runs` reads the runs of a reports folder (each analysed from its journal, the
one source of truth); :func:`build_register` is a pure function of a programme's words, its
failure tests, those runs and the time now. Reports put words on the result
(:mod:`faultlab.report.register`); ``faultlab programme`` prints and writes it.

Rules, as the register applies them:

- a failure test's *last run* is its most recent run anywhere in the reports folder, its
  *verdict* that run's outcome (``never_run`` without one), and it is *overdue* when that run
  is older than the programme's period (a never-run test is overdue too);
- the *last drill* is the newest run folder of the programme's plan
  (``<reports>/<plan name>/<time>/``); each critical operation's worst outage is measured
  over the failure tests of that drill that cover it, by the operation's measure;
- the findings of a run that did not pass (failed or inconclusive) are *carried forward*
  until a later run of the same failure test passes: that run *retested* them and closes
  them. A later run that did not pass retested them too, and they stay open. A passing
  run's findings are observations on a run that met every pre-set target: it is its own
  retest, and they are not carried.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from faultlab.analysis import Analysis, Finding, MeasureStatus
from faultlab.errors import InputError

__all__ = [
    "RunRecord",
    "FailureTestInfo",
    "TestStatus",
    "ToleranceCheck",
    "CarriedFinding",
    "Register",
    "FAULT_CLASSES",
    "fault_classes",
    "collect_runs",
    "build_register",
    "drill_of",
    "programme_tests",
    "programme_register",
]

FAULT_CLASSES = ("postgres", "link", "service", "stack", "job")
"""Fault classes, by what a fault acts on: the database, a network link, a service's process,
the load on the whole stack, a job."""


def fault_classes(kinds: Iterable[str]) -> tuple[str, ...]:
    """The fault classes of fault kinds, by the targets each kind takes (registry lookup)."""
    from faultlab.registry import fault_kinds

    found: set[str] = set()
    for name in kinds:
        if name in fault_kinds:
            found.update(t for t in fault_kinds.get(name).target_types if t in FAULT_CLASSES)
    return tuple(c for c in FAULT_CLASSES if c in found)


@dataclass(frozen=True)
class RunRecord:
    """One run of a failure test found in the reports folder, with its analysis."""

    test_id: str
    run_id: str
    run_dir: Path
    started: datetime | None
    outcome: str
    drill: Path | None
    analysis: Analysis

    @property
    def passed(self) -> bool:
        """True when the run met every target on a steady baseline."""
        return self.outcome == "passed"


@dataclass(frozen=True)
class FailureTestInfo:
    """A failure test of the programme: its title, the operations and fault classes it
    covers, whether the plan runs it, who owns its findings."""

    id: str
    title: Any
    operations: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    in_plan: bool = True
    owner: str | None = None


@dataclass(frozen=True)
class TestStatus:
    """A failure test in the register: its last run, verdict, age in days and overdue state."""

    test: FailureTestInfo
    last: RunRecord | None
    verdict: str
    age_days: float | None
    overdue: bool
    runs: int = 0


@dataclass(frozen=True)
class ToleranceCheck:
    """A critical operation's impact tolerance against the worst outage of the last drill.

    ``worst_s`` is None when no failure test of the drill measured it; ``at_least`` marks a
    worst that is a lower bound (not recovered, or a job that never finished); ``within`` is
    None without a measure."""

    operation: str
    label: Any
    tolerance_s: float
    measure: str
    worst_s: float | None
    worst_test: str | None
    at_least: bool
    within: bool | None
    measured_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class CarriedFinding:
    """A finding of an earlier run and what became of it: ``open`` (no later run of its
    failure test), ``retested_failing`` (later runs, none passed) or ``closed`` (a later run
    passed: ``retested_by``)."""

    run: RunRecord
    finding: Finding
    owner: str | None
    status: str
    retested_by: RunRecord | None = None

    @property
    def carried(self) -> bool:
        """True while no later passing run closed it."""
        return self.status != "closed"


@dataclass(frozen=True)
class Register:
    """The register at ``now`` (see the module docstring)."""

    title: Any
    now: datetime
    period_days: float
    operations: dict[str, Any]
    tests: list[TestStatus]
    tolerances: list[ToleranceCheck]
    findings: list[CarriedFinding]
    last_drill: Path | None
    drill_runs: list[RunRecord] = field(default_factory=list)

    @property
    def classes(self) -> list[str]:
        """The fault classes some failure test covers, as :data:`FAULT_CLASSES` lists them."""
        used = {c for t in self.tests for c in t.test.classes}
        return [c for c in FAULT_CLASSES if c in used]

    def counts(self) -> dict[str, int]:
        """Failure tests by verdict, overdue ones, carried findings."""
        verdicts = [t.verdict for t in self.tests]
        return {"tests": len(self.tests), "passed": verdicts.count("passed"), "failed": verdicts.count("failed"),
                "inconclusive": verdicts.count("inconclusive"), "never_run": verdicts.count("never_run"),
                "overdue": sum(t.overdue for t in self.tests),
                "carried": sum(f.carried for f in self.findings),
                "closed": sum(not f.carried for f in self.findings)}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (``register.json``)."""
        def run(r: RunRecord | None) -> dict[str, Any] | None:
            if r is None:
                return None
            return {"run_id": r.run_id, "run_dir": str(r.run_dir), "started": _iso(r.started),
                    "outcome": r.outcome, "drill": str(r.drill) if r.drill else None}

        return {
            "schema": "faultlab.register/1",
            "title": _plain(self.title),
            "now": _iso(self.now),
            "period_days": self.period_days,
            "last_drill": str(self.last_drill) if self.last_drill else None,
            "counts": self.counts(),
            "operations": {k: _plain(v) for k, v in self.operations.items()},
            "fault_classes": self.classes,
            "failure_tests": [{
                "id": t.test.id, "title": _plain(t.test.title), "operations": list(t.test.operations),
                "fault_classes": list(t.test.classes), "in_plan": t.test.in_plan, "owner": t.test.owner,
                "verdict": t.verdict, "last_run": run(t.last), "runs": t.runs,
                "age_days": None if t.age_days is None else round(t.age_days, 3), "overdue": t.overdue,
            } for t in self.tests],
            "tolerances": [{
                "operation": c.operation, "label": _plain(c.label), "tolerance_s": c.tolerance_s,
                "measure": c.measure, "worst_s": c.worst_s, "worst_test": c.worst_test, "at_least": c.at_least,
                "within": c.within, "measured_by": list(c.measured_by),
            } for c in self.tolerances],
            "findings": [{
                "test": f.run.test_id, "run": run(f.run), "id": f.finding.id, "severity": f.finding.severity,
                "kind": f.finding.kind, "params": _plain(dict(f.finding.params)), "owner": f.owner,
                "status": f.status, "retested_by": run(f.retested_by),
            } for f in self.findings],
        }


def _plain(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def drill_of(run_dir: Path) -> Path | None:
    """The drill-plan folder a run belongs to (``<plan folder>/runs/<run>``, as
    :func:`faultlab.engine.plan.run_plan` writes it), or None."""
    return run_dir.parent.parent if run_dir.parent.name == "runs" else None


def _started(analysis: Analysis) -> datetime | None:
    try:
        return datetime.fromisoformat(analysis.origin_wall) if analysis.origin_wall else None
    except ValueError:
        return None


def collect_runs(reports_dir: str | os.PathLike[str],
                 analysed: Mapping[Path, Analysis] | None = None) -> list[RunRecord]:
    """Every run under ``reports_dir`` (a folder holding ``journal.jsonl``), analysed (or taken
    from ``analysed``, by resolved run directory), oldest first. A folder whose journal cannot
    be read at all is left out."""
    from faultlab.analysis import analyse

    root = Path(reports_dir)
    known = {Path(k).resolve(): v for k, v in (analysed or {}).items()}
    records = []
    for journal in sorted(root.rglob("journal.jsonl")):
        run_dir = journal.parent
        try:
            analysis = known.get(run_dir.resolve()) or analyse(run_dir)
        except InputError:
            continue
        test_id = str(analysis.scenario.get("id") or "")
        if not test_id:
            continue
        records.append(RunRecord(test_id, analysis.run_id, run_dir, _started(analysis), analysis.outcome,
                                 drill_of(run_dir), analysis))
    return sorted(records, key=_when)


def _when(record: RunRecord) -> tuple[float, str]:
    return (record.started.timestamp() if record.started is not None else 0.0, record.run_id)


def _outage(analysis: Analysis, measure: str) -> tuple[float | None, bool]:
    """The outage of one run by ``measure``: (seconds, whether it is a lower bound)."""
    if measure == "impact":
        impact = analysis.impact_duration
        if impact.measured and impact.value is not None:
            return impact.value, False
        if impact.status in (MeasureStatus.NO_IMPACT, MeasureStatus.RECOVERED_BEFORE_CLEAR):
            return 0.0, False
        start = analysis.impact_start
        if impact.status == MeasureStatus.NOT_RECOVERED and start.value is not None and analysis.last_t is not None:
            return max(0.0, analysis.last_t - start.value), True
        return None, False
    if measure == "completion_delay":
        parts = [analysis.completion_delay.before, analysis.completion_delay.during, analysis.completion_delay.after]
        worst = [p.max_s for p in parts if p.max_s is not None]
        return (max(worst), False) if worst else (None, False)
    if measure == "job_overrun":
        if not analysis.jobs:
            return None, False
        late = [max(0.0, -j.margin_s) for j in analysis.jobs if j.margin_s is not None]
        unfinished = any(j.finished_t is None for j in analysis.jobs)
        return (max(late, default=0.0), unfinished)
    raise ValueError(f"unknown outage measure {measure!r}")


def _tolerances(operations: Mapping[str, Any], tests: Sequence[FailureTestInfo],
                drill: Sequence[RunRecord]) -> list[ToleranceCheck]:
    checks = []
    for name, operation in operations.items():
        covering = {t.id for t in tests if name in t.operations}
        worst: tuple[float, bool, str] | None = None
        measured_by = []
        for record in drill:
            if record.test_id not in covering:
                continue
            value, at_least = _outage(record.analysis, operation.measure)
            if value is None:
                continue
            measured_by.append(record.test_id)
            if worst is None or value > worst[0] or (value == worst[0] and at_least and not worst[1]):
                worst = (value, at_least, record.test_id)
        tolerance = float(operation.tolerance)
        checks.append(ToleranceCheck(
            operation=name, label=operation.label, tolerance_s=tolerance, measure=operation.measure,
            worst_s=worst[0] if worst else None, worst_test=worst[2] if worst else None,
            at_least=worst[1] if worst else False,
            within=None if worst is None else (worst[0] <= tolerance and not (worst[1] and worst[0] >= tolerance)),
            measured_by=tuple(dict.fromkeys(measured_by)),
        ))
    return checks


def _carried(record: RunRecord) -> list[Finding]:
    return [] if record.passed else list(record.analysis.findings)


def _findings(runs: Sequence[RunRecord], owner_of: Mapping[str, str | None]) -> list[CarriedFinding]:
    out = []
    for i, record in enumerate(runs):
        later = [r for r in runs[i + 1:] if r.test_id == record.test_id]
        passing = next((r for r in later if r.passed), None)
        for finding in _carried(record):
            if passing is not None:
                status, by = "closed", passing
            elif later:
                status, by = "retested_failing", later[-1]
            else:
                status, by = "open", None
            out.append(CarriedFinding(record, finding, owner_of.get(record.test_id), status, by))
    order = {"open": 0, "retested_failing": 0, "closed": 1}
    return sorted(out, key=lambda f: (order[f.status], f.run.test_id, _when(f.run), f.finding.id))


def build_register(title: Any, operations: Mapping[str, Any], tests: Sequence[FailureTestInfo],
                   runs: Sequence[RunRecord], now: datetime, period_days: float,
                   plan_name: str | None = None) -> Register:
    """The register at ``now`` over ``runs`` (see the module docstring).

    ``operations`` are the programme's (each with ``label``, ``tolerance`` in seconds and
    ``measure``); ``plan_name`` is the stem of the plan's file, whose drill folders are named
    after it (``<reports>/<plan_name>/<time>/``)."""
    ordered = sorted(runs, key=_when)
    statuses = []
    for test in tests:
        own = [r for r in ordered if r.test_id == test.id]
        last = own[-1] if own else None
        age = (now - last.started).total_seconds() / 86400 if last is not None and last.started else None
        overdue = last is None or age is None or age > period_days
        statuses.append(TestStatus(test, last, last.outcome if last else "never_run", age, overdue, len(own)))
    drills = sorted({r.drill for r in ordered if r.drill is not None
                     and (plan_name is None or r.drill.parent.name == plan_name)},
                    key=lambda d: max(_when(r) for r in ordered if r.drill == d))
    last_drill = drills[-1] if drills else None
    drill_runs = [r for r in ordered if last_drill is not None and r.drill == last_drill]
    known = {t.id for t in tests}
    owners = {t.id: t.owner for t in tests}
    return Register(
        title=title, now=now, period_days=period_days, operations=dict(operations), tests=statuses,
        tolerances=_tolerances(operations, tests, drill_runs),
        findings=_findings([r for r in ordered if r.test_id in known], owners),
        last_drill=last_drill, drill_runs=drill_runs,
    )


def programme_tests(programme: Any) -> list[FailureTestInfo]:
    """The failure tests of a loaded programme: its plan's scenarios in plan order (their fault
    classes from their fault kinds), then those the programme names that the plan does not run."""
    plan = programme.resolved_plan
    tests = []
    for scenario in plan.resolved_scenarios:
        declared = programme.failure_tests.get(scenario.id)
        kinds = [step.fault for _, step in scenario.fault_steps()]
        tests.append(FailureTestInfo(scenario.id, scenario.title, tuple(declared.operations) if declared else (),
                                     fault_classes(kinds), True, programme.owner_of(scenario.id)))
    in_plan = {t.id for t in tests}
    for test_id, declared in programme.failure_tests.items():
        if test_id not in in_plan:
            tests.append(FailureTestInfo(test_id, "", tuple(declared.operations), (), False,
                                         programme.owner_of(test_id)))
    return tests


def programme_register(programme: Any, reports_dir: str | os.PathLike[str], now: datetime,
                       analysed: Mapping[Path, Analysis] | None = None) -> Register:
    """The register of a loaded programme over the runs of ``reports_dir`` at ``now``."""
    tests = programme_tests(programme)
    runs = collect_runs(reports_dir, analysed)
    titles = {r.test_id: r.analysis.scenario.get("title") or "" for r in runs}
    tests = [t if t.title else FailureTestInfo(t.id, titles.get(t.id, ""), t.operations, t.classes, t.in_plan,
                                               t.owner) for t in tests]
    return build_register(programme.title, programme.operations, tests, runs, now, programme.period,
                          plan_name=Path(programme.plan).stem)
