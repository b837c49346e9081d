"""Targets fixed in advance, each judged by an evaluator looked up by its scenario key.

The measures every system has (detection, recovery, impact, backlog drain, error budget, job
margin) have their evaluators here; the integrity checks and the completion delay are the
ones the stack's plugin declared (:class:`faultlab.plugin.Declaration`, recorded in the
journal header). A key that nothing can judge is reported ``not_assessed`` (and so counts as
missed): an auditor cannot rely on a target nobody measured.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from faultlab.analysis.model import (
    CompletionDelay,
    ErrorBudget,
    IntegrityResult,
    JobResult,
    Measure,
    MeasureStatus,
    Verdict,
)
from faultlab.journal import json_number
from faultlab.plugin.declaration import Declaration

__all__ = ["TARGET_EVALUATORS", "HOW_MEASURED", "evaluate_targets", "integrity_count", "violations_for"]

HOW_MEASURED = frozenset({"detect_by"})
"""Keys of ``targets:`` that say how another target is measured (``detect_by``: the alert
whose arrival ``detect_within`` judges), not targets of their own."""


@dataclass(frozen=True)
class _Figures:
    detection: Measure
    rto_from_inject: Measure
    rto_from_clear: Measure
    impact_duration: Measure
    integrity: IntegrityResult | None
    jobs: list[JobResult]
    error_budget: ErrorBudget
    completion_delay: CompletionDelay
    backlog_drain: Measure
    programme: Any = None


Evaluator = Callable[[str, Any, _Figures], Verdict]


def _judge(target: str, limit: float, unit: str, comparison: str, measured: Measure,
           evidence: list[str] | None = None, preset: bool = True,
           met_without_value: bool = False) -> Verdict:
    if measured.measured:
        value = measured.value
        assert value is not None
        met = value <= limit if comparison == "le" else value >= limit
    else:
        met = met_without_value
    return Verdict(target=target, target_value=float(limit), unit=unit, comparison=comparison,
                   measured=measured, outcome="met" if met else "missed", preset=preset,
                   evidence=list(evidence or []))


def _limit(raw: Any) -> float:
    """A target's limit: a number as the journal holds it (seconds for a duration, a count,
    a ratio); anything else makes the target not assessed."""
    limit = json_number(raw)
    if limit is None:
        raise TypeError(f"the journal holds {raw!r} for it, not a number")
    return limit


def _duration(measure_of: Callable[[_Figures], Measure]) -> Evaluator:
    def evaluate(target: str, raw: Any, f: _Figures) -> Verdict:
        measured = measure_of(f)
        # No customer impact means there was nothing to recover from, and recovering before
        # the fault cleared needed no time after it: either way the target is met.
        nothing_to_recover = measured.status in (MeasureStatus.NO_IMPACT, MeasureStatus.RECOVERED_BEFORE_CLEAR)
        return _judge(target, _limit(raw), "s", "le", measured, met_without_value=nothing_to_recover)
    return evaluate


def violations_for(integrity: IntegrityResult, check: str) -> list[dict[str, Any]]:
    """The violations the plugin counted against integrity check ``check``."""
    return [v for v in integrity.violations if v.get("check") == check]


def integrity_count(integrity: IntegrityResult, check: str) -> int | None:
    """Violations of ``check``: the plugin's count or the ids it named, whichever is larger;
    None when the plugin did not run that check."""
    if check not in integrity.checked:
        return None
    ids = sum(len(v.get("ids") or []) or 1 for v in violations_for(integrity, check))
    return max(int(integrity.checked[check]), ids)


def integrity_verdict(target: str, raw: Any, f: _Figures, preset: bool = True) -> Verdict:
    """Judge one declared data-integrity check against the integrity record."""
    limit = _limit(raw)
    count = None if f.integrity is None else integrity_count(f.integrity, target)
    if f.integrity is None or count is None:
        status = MeasureStatus.NOT_MEASURED if f.integrity is None else MeasureStatus.NOT_CHECKED
        return _judge(target, limit, "count", "le", Measure(None, "count", None, "exact", status), [], preset)
    evidence: list[str] = []
    details: list[str] = []
    for violation in violations_for(f.integrity, target):
        evidence.extend(str(i) for i in violation.get("ids") or [])
        if violation.get("detail"):
            details.append(str(violation["detail"]))
    measured = Measure(float(count), "count", None, "exact")
    return _judge(target, limit, "count", "le", measured, evidence + details, preset)


def _job_margin(target: str, raw: Any, f: _Figures) -> Verdict:
    margins = [j.margin_s for j in f.jobs if j.margin_s is not None]
    if margins:
        worst = min(margins)
        jobs = [j.job for j in f.jobs if j.margin_s == worst] if len(f.jobs) > 1 else []
        measured = Measure(worst, "s", None, "journal")
    else:
        jobs = []
        measured = Measure(None, "s", None, "journal", MeasureStatus.NOT_MEASURED)
    return _judge(target, _limit(raw), "s", "ge", measured, jobs)


def _error_budget(target: str, raw: Any, f: _Figures) -> Verdict:
    return _judge(target, _limit(raw), "ratio", "le", f.error_budget.consumed)


def _completion_delay(target: str, raw: Any, f: _Figures) -> Verdict:
    parts = [f.completion_delay.during, f.completion_delay.after, f.completion_delay.before]
    values = [p.p99_s for p in parts if p.p99_s is not None]
    measured = (
        Measure(max(values), "s", None, "exact")
        if values
        else Measure(None, "s", None, "exact", MeasureStatus.NOT_MEASURED)
    )
    return _judge(target, _limit(raw), "s", "le", measured)


def _not_measured(unit: str = "s") -> Measure:
    return Measure(None, unit, None, "journal", MeasureStatus.NOT_MEASURED)


def _runbook_within(target: str, raw: Any, f: _Figures) -> Verdict:
    runbook = f.programme.runbook if f.programme is not None else None
    if runbook is None:
        return _judge(target, _limit(raw), "s", "le", _not_measured(), ["no runbook ran"])
    evidence = [f"{runbook.id} {runbook.status}"] + ([runbook.reason] if runbook.reason else [])
    return _judge(target, _limit(raw), "s", "le", runbook.duration, evidence)


def _decide_within(target: str, raw: Any, f: _Figures) -> Verdict:
    decisions = f.programme.decisions if f.programme is not None else []
    if not decisions:
        return _judge(target, _limit(raw), "s", "le", _not_measured(), ["no decision rule triggered"])
    undecided = [d.id for d in decisions if not d.time_to_decision.measured]
    if undecided:
        return _judge(target, _limit(raw), "s", "le", _not_measured(), [f"{d} not decided" for d in undecided])
    slowest = max(decisions, key=lambda d: d.time_to_decision.value or 0.0)
    return _judge(target, _limit(raw), "s", "le", slowest.time_to_decision, [slowest.id])


def _deadline_impact(target: str, raw: Any, f: _Figures) -> Verdict:
    deadlines = f.programme.deadlines if f.programme is not None else []
    measured = [d for d in deadlines if d.unhealthy_s.measured]
    if not measured:
        return _judge(target, _limit(raw), "s", "le", _not_measured(), ["no job deadline inside the load"])
    worst = max(measured, key=lambda d: d.unhealthy_s.value or 0.0)
    why = f"{worst.job}: {worst.unhealthy} of {worst.windows} windows unhealthy from t = {worst.deadline_t:g}"
    return _judge(target, _limit(raw), "s", "le", worst.unhealthy_s, [why])


TARGET_EVALUATORS: dict[str, Evaluator] = {
    "detect_within": _duration(lambda f: f.detection),
    "recover_within": _duration(lambda f: f.rto_from_inject),
    "recover_after_clear_within": _duration(lambda f: f.rto_from_clear),
    "impact_within": _duration(lambda f: f.impact_duration),
    "backlog_drain_within": _duration(lambda f: f.backlog_drain),
    "job_margin_min": _job_margin,
    "error_budget": _error_budget,
    "runbook_within": _runbook_within,
    "decide_within": _decide_within,
    "deadline_impact_within": _deadline_impact,
}
"""Evaluators of the targets every system has, by scenario key."""


def _evaluator(key: str, declaration: Declaration) -> Evaluator | None:
    if key in TARGET_EVALUATORS:
        return TARGET_EVALUATORS[key]
    if declaration.check(key) is not None:
        return integrity_verdict
    if declaration.completion is not None and key == declaration.completion.target:
        return _completion_delay
    return None


def _not_assessed(key: str, raw: Any, why: str = "") -> Verdict:
    value = json_number(raw)
    measured = Measure(None, "", None, "exact", MeasureStatus.NOT_MEASURED)
    return Verdict(target=key, target_value=float("nan") if value is None else value, unit="", comparison="le",
                   measured=measured, outcome="not_assessed", evidence=[why] if why else [])


def evaluate_targets(targets: dict[str, Any], declaration: Declaration, **figures: Any) -> list[Verdict]:
    """A verdict per pre-set target, in the scenario's order, then the built-in integrity rules.

    The built-in rules (no violation of any declared integrity check) apply to every check
    the plugin ran, even without a stated target; a check it did not run gets no verdict.
    """
    f = _Figures(**figures)
    verdicts: list[Verdict] = []
    for key, raw in targets.items():
        if key in HOW_MEASURED:
            continue
        evaluator = _evaluator(key, declaration)
        if evaluator is None:
            verdicts.append(_not_assessed(key, raw))
            continue
        try:
            verdicts.append(evaluator(key, raw, f))
        except (TypeError, ValueError) as exc:
            verdicts.append(_not_assessed(key, raw, str(exc)))
    if f.integrity is not None:
        for check in declaration.check_names:
            if check not in targets and check in f.integrity.checked:
                verdicts.append(integrity_verdict(check, 0, f, preset=False))
    return verdicts
