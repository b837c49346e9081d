"""Deviations (what did not go as planned) and findings (what the reader must act on).

Both are language-neutral: a ``kind`` that picks a report's sentence and the ``params``
that fill it in. Findings are numbered by severity, high first, in a fixed order within a
severity so that ``F-1`` means the same thing in every rendering of a run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from faultlab.analysis.model import (
    Baseline,
    Deviation,
    ErrorBudget,
    FaultSpan,
    Finding,
    JobResult,
    Measure,
    MeasureStatus,
    Verdict,
)
from faultlab.journal import Cleanup, Decision, Integrity, JobEvent, Note, Run

__all__ = ["Evidence", "deviations", "findings", "severity_of_distance", "DEVIATION_SEVERITY"]

DEVIATION_SEVERITY = {
    "crashed": "high", "run_status": "high", "revert_failed": "high", "not_reverted": "high",
    "cleanup_failed": "high", "fault_never_active": "medium", "job_failed": "medium",
    "abort": "medium", "slip": "low", "integrity_missing": "medium",
}
"""The deviations that are also findings, with their severity (``journal_problem`` and
``warning`` are not)."""

_RANK = {"high": 0, "medium": 1, "low": 2}


def _end_deviations(run: Run) -> list[Deviation]:
    end = run.end
    if end is None:
        return [Deviation("crashed", None, {})]
    if end.status != "completed":
        return [Deviation("run_status", end.t, {"status": end.status, "reason": end.reason})]
    return []


def _fault_deviations(faults: Sequence[FaultSpan], slip_tolerance_s: float) -> list[Deviation]:
    out: list[Deviation] = []
    for f in faults:
        about = {"fault": f.fault_id, "kind": f.kind}
        if f.active_t is None:
            out.append(Deviation("fault_never_active", f.injected_t or f.planned_t, about))
            continue
        if f.slip_s is not None and abs(f.slip_s) > slip_tolerance_s:
            out.append(Deviation("slip", f.active_t, {**about, "slip_s": round(f.slip_s, 3)}))
        if f.revert_failed:
            out.append(Deviation("revert_failed", f.reverted_t, about))
        elif f.reverted_t is None:
            out.append(Deviation("not_reverted", None, about))
    return out


def _record_deviations(run: Run) -> list[Deviation]:
    out = [Deviation("cleanup_failed", r.t, {"what": r.what}) for r in run.of(Cleanup) if not r.ok]
    out += [Deviation("job_failed", r.t, {"job": r.job}) for r in run.of(JobEvent) if r.event == "failed"]
    out += [Deviation("warning", r.t, {"message": r.message}) for r in run.of(Note) if r.level == "warning"]
    out += [Deviation("abort", r.t, {"why": r.why}) for r in run.of(Decision) if r.what == "abort"]
    if not run.of(Integrity):
        out.append(Deviation("integrity_missing", None, {}))
    return out


def deviations(run: Run, faults: Sequence[FaultSpan], slip_tolerance_s: float,
               problems: Sequence[str]) -> list[Deviation]:
    """How the run ended, each fault that slipped, never took effect or was not reverted,
    failed clean-ups and jobs, warnings, aborts, a missing integrity check, and every line
    of the journal that could not be read."""
    return [
        *_end_deviations(run),
        *_fault_deviations(faults, slip_tolerance_s),
        *_record_deviations(run),
        *(Deviation("journal_problem", None, {"problem": p}) for p in problems),
    ]


@dataclass(frozen=True)
class Evidence:
    """What the findings are drawn from: the verdicts, deviations and measures of a run."""

    verdicts: Sequence[Verdict]
    deviations: Sequence[Deviation]
    baseline: Baseline | None
    detection: Measure
    detected_t: float | None
    impact: Measure
    recovery: Measure
    t_clear: float | None
    jobs: Sequence[JobResult]
    error_budget: ErrorBudget
    integrity_checks: frozenset[str]
    #: True when a fault lasted (was in effect for more than an instant): only then can a
    #: measure begin "after the fault cleared".
    lasting: bool = True
    #: True when detection is by the alerts of the run's real monitoring (not the readiness poll).
    alerting: bool = False


Raw = tuple[str, str, dict[str, Any]]


def severity_of_distance(ratio: float) -> str:
    """How far a measure is past its tolerance, as a severity: up to 1.5 times it is
    ``low``, up to 3 times ``medium``, beyond ``high``."""
    if ratio <= 1.5:
        return "low"
    return "medium" if ratio <= 3.0 else "high"


def _distance(v: Verdict) -> float:
    """The measured value over the target (``le``), or the target over the value (``ge``)."""
    value, limit = v.measured.value, v.target_value
    if value is None:
        return float("inf")
    if v.comparison == "ge":
        return limit / value if value > 0 else float("inf")
    return value / limit if limit > 0 else float("inf")


def _target_findings(e: Evidence) -> list[Raw]:
    raw: list[Raw] = []
    for v in e.verdicts:
        if not v.met:
            hard = v.target in e.integrity_checks or not v.measured.measured
            severity = "high" if hard else severity_of_distance(_distance(v))
            raw.append((severity, "target_missed", {"target": v.target, "evidence": list(v.evidence)}))
    targets = {v.target for v in e.verdicts}
    if e.detection.status == MeasureStatus.NOT_DETECTED and "detect_within" not in targets:
        raw.append(("medium", "not_alerted" if e.alerting else "not_detected", {}))
    if e.recovery.status == MeasureStatus.NOT_RECOVERED and "recover_within" not in targets:
        raw.append(("high", "not_recovered", {}))
    return raw


def _after_clear_findings(e: Evidence) -> list[Raw]:
    # Measures are defined from t_inject on; one that only starts after the fault was
    # cleared may have another cause, and the reader must be told so.
    raw: list[Raw] = []
    if e.t_clear is None or not e.lasting:
        return raw
    if e.impact.measured and e.impact.value is not None and e.impact.value > e.t_clear:
        raw.append(("medium", "impact_after_clear", {"after_s": round(e.impact.value - e.t_clear, 3)}))
    if e.detected_t is not None and e.detected_t > e.t_clear:
        raw.append(("medium", "detected_after_clear", {"after_s": round(e.detected_t - e.t_clear, 3)}))
    return raw


def _run_findings(e: Evidence) -> list[Raw]:
    raw: list[Raw] = []
    if e.baseline is None or e.baseline.met_steady_state is not True:
        raw.append(("high", "baseline_unsteady",
                    {"healthy": e.baseline.healthy_windows if e.baseline else 0,
                     "windows": e.baseline.windows if e.baseline else 0}))
    for j in e.jobs:
        if j.within_window is False or (j.margin_s is not None and j.margin_s < 0) or not j.ok:
            raw.append(("high", "job_overran", {"job": j.job, "margin_s": j.margin_s}))
    consumed = e.error_budget.consumed
    targeted = any(v.target == "error_budget" for v in e.verdicts)
    if not targeted and consumed.value is not None and consumed.value > 1.0:
        raw.append((severity_of_distance(consumed.value), "error_budget_exceeded", {"consumed": consumed.value}))
    return raw


def findings(e: Evidence) -> list[Finding]:
    """Missed targets, undetected or unrecovered outages, deviations that matter, measures
    that began after the fault cleared, an unsteady baseline, overrun jobs and an exceeded
    error budget, numbered ``F-1``... high severity first."""
    raw = _target_findings(e)
    raw += [(DEVIATION_SEVERITY[d.kind], f"deviation_{d.kind}", dict(d.params))
            for d in e.deviations if d.kind in DEVIATION_SEVERITY]
    raw += _after_clear_findings(e)
    raw += _run_findings(e)
    raw.sort(key=lambda r: _RANK[r[0]])
    return [Finding(id=f"F-{i}", severity=s, kind=k, params=p) for i, (s, k, p) in enumerate(raw, start=1)]
