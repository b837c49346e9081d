"""Targets fixed in advance, each judged by an evaluator looked up by its scenario key.

The measures every system has (detection, recovery, impact, backlog drain, error budget, job
margin) have their evaluators here; the integrity checks and the completion delay are the
ones the stack's plugin declared (:class:`faultlab.plugin.Declaration`, recorded in the
journal header). A key that nothing can judge is reported ``not_assessed`` (and so counts as
missed): an auditor cannot rely on a target nobody measured.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from faultlab.analysis.model import (
    Answers,
    CompletionDelay,
    ErrorBudget,
    IntegrityResult,
    JobResult,
    LatencyBreach,
    Measure,
    MeasureStatus,
    MetricFigures,
    Restarts,
    Verdict,
)
from faultlab.journal import json_number
from faultlab.plugin.declaration import Declaration

__all__ = ["TARGET_EVALUATORS", "HOW_MEASURED", "METRIC_BOUNDS", "evaluate_targets", "integrity_count",
           "metric_target", "metric_verdicts", "violations_for"]

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
    answers: Answers | None = None
    latency_breach: LatencyBreach | None = None
    metrics: tuple[MetricFigures, ...] = ()
    restarts: Restarts | None = None


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
def _count(target: str, raw: Any, value: int | None, comparison: str = "le", why: str = "") -> Verdict:
    measured = (Measure(float(value), "count", None, "exact") if value is not None
                else Measure(None, "count", None, "exact", MeasureStatus.NOT_MEASURED))
    return _judge(target, _limit(raw), "count", comparison, measured, [why] if why and value is None else [])


def _unanswered(target: str, raw: Any, f: _Figures) -> Verdict:
    return _count(target, raw, f.answers.unanswered if f.answers is not None else None)


def _shed(target: str, raw: Any, f: _Figures) -> Verdict:
    shed = f.answers.shed if f.answers is not None else None
    return _count(target, raw, shed, "ge", "the stack's plugin declares no status for a request shed for overload")


def _rejection_p99(target: str, raw: Any, f: _Figures) -> Verdict:
    refused = f.answers.rejection_latency if f.answers is not None else None
    if refused is None or refused.p99_s is None:
        # Nothing refused: nothing was refused slowly either (when the answers were counted).
        status = MeasureStatus.NO_IMPACT if f.answers is not None else MeasureStatus.NOT_MEASURED
        measured = Measure(None, "s", None, "exact", status)
        return _judge(target, _limit(raw), "s", "le", measured, met_without_value=f.answers is not None)
    return _judge(target, _limit(raw), "s", "le", Measure(refused.p99_s, "s", None, "exact"))


def _breach(measure_of: Callable[[LatencyBreach], Measure]) -> Evaluator:
    def evaluate(target: str, raw: Any, f: _Figures) -> Verdict:
        if f.latency_breach is None:
            return _judge(target, _limit(raw), "s", "le", Measure(None, "s", None, "exact", MeasureStatus.NOT_MEASURED))
        measured = measure_of(f.latency_breach)
        return _judge(target, _limit(raw), "s", "le", measured,
                      met_without_value=measured.status == MeasureStatus.NO_IMPACT)
    return evaluate


def _restarts(target: str, raw: Any, f: _Figures) -> Verdict:
    if f.restarts is None:
        return _count(target, raw, None)
    most = f.restarts.most
    worst = [f"{name}: {n}" for name, n in f.restarts.per_service.items() if n == most and n > 0]
    verdict = _count(target, raw, most)
    return replace(verdict, evidence=worst) if not verdict.met else verdict


#: A metric bound: the figure it judges, and its comparison.
METRIC_BOUNDS: dict[str, tuple[str, str]] = {
    "max": ("highest", "le"),
    "min": ("lowest", "ge"),
    "after_max": ("after_highest", "le"),
    "after_min": ("after_lowest", "ge"),
    "increase_min": ("increase", "ge"),
    "increase_max": ("increase", "le"),
    "increase_during_min": ("increase_during", "ge"),
    "increase_after_max": ("increase_after", "le"),
}


def metric_target(selector: str, bound: str) -> str:
    """The verdict name of one metric bound: ``metric:<selector>:<bound>``."""
    return f"metric:{selector}:{bound}"


def metric_verdicts(raw: Any, f: _Figures) -> list[Verdict]:
    """One verdict per bound of each metric the targets name (``metrics: {selector: {bound: value}}``)."""
    figures = {m.selector: m for m in f.metrics}
    verdicts = []
    for selector, bounds in (raw or {}).items():
        for bound, limit in (bounds or {}).items():
            if limit is None or bound not in METRIC_BOUNDS:
                continue
            name = metric_target(selector, bound)
            attribute, comparison = METRIC_BOUNDS[bound]
            found = figures.get(selector)
            value = getattr(found, attribute) if found is not None else None
            why = []
            if found is None or not found.scrapes:
                why = [f"no scrape of the stack's metrics showed {selector}"]
            elif value is None:
                why = ["no scrape before and after the faults" if bound == "increase_during_min"
                       else "no scrape after the fault cleared and the hold"]
            measured = (Measure(float(value), "", None, "exact") if value is not None
                        else Measure(None, "", None, "exact", MeasureStatus.NOT_MEASURED))
            try:
                verdicts.append(_judge(name, _limit(limit), "", comparison, measured, why))
            except TypeError as exc:
                verdicts.append(_not_assessed(name, limit, str(exc)))
    return verdicts


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
    "unanswered_requests": _unanswered,
    "rejection_p99_within": _rejection_p99,
    "shed_requests_min": _shed,
    "latency_breach_within": _breach(lambda b: b.duration),
    "worst_p99_within": _breach(lambda b: b.worst_p99),
    "restarts_max": _restarts,
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
        if key == "metrics":
            verdicts.extend(metric_verdicts(raw, f))
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
