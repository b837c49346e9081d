"""Targets fixed in advance, each judged by an evaluator looked up by its scenario key.

A target's evaluator turns the analysis's figures into a ``Verdict``. Keys no evaluator
knows are reported as ``not_assessed`` (and so count as missed): an auditor cannot rely on
a target nobody measured.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from faultlab.analysis.model import (
    BatchResult,
    ErrorBudget,
    ExecutionDelay,
    IntegrityResult,
    Measure,
    MeasureStatus,
    Verdict,
)
from faultlab.analysis.windows import seconds

__all__ = ["INTEGRITY_CHECKS", "TARGET_EVALUATORS", "canonical_target", "evaluate_targets", "violations_for"]

#: canonical target key -> (the integrity record's ``checked`` key, violation kinds)
INTEGRITY_CHECKS: dict[str, tuple[str, frozenset[str]]] = {
    "lost_orders": ("lost", frozenset({"lost"})),
    "duplicates": ("duplicates", frozenset({"duplicates", "duplicate"})),
    "duplicate_executions": ("double_executions", frozenset({"double_executions", "double_execution", "duplicate_executions"})),
    "stuck_orders": ("stuck", frozenset({"stuck"})),
    "unreconciled": ("unreconciled", frozenset({"unreconciled"})),
}

_ALIASES = {
    "lost": "lost_orders",
    "duplicate_orders": "duplicates",
    "double_executions": "duplicate_executions",
    "stuck": "stuck_orders",
    "batch_margin_min": "batch_margin",
    "min_batch_margin": "batch_margin",
    "max_error_budget": "error_budget",
    "max_execution_delay_p99": "execution_delay_p99",
    "recover_from_clear_within": "recover_after_clear_within",
}


def canonical_target(key: str) -> str:
    """The canonical name of a target key (aliases such as ``double_executions`` map over)."""
    return _ALIASES.get(key, key)


@dataclass(frozen=True)
class _Figures:
    detection: Measure
    rto_from_inject: Measure
    rto_from_clear: Measure
    impact_duration: Measure
    integrity: IntegrityResult | None
    batches: list[BatchResult]
    error_budget: ErrorBudget
    execution_delay: ExecutionDelay
    backlog_drain: Measure


Evaluator = Callable[[str, Any, _Figures], Verdict]


def _judge(target: str, limit: float, unit: str, comparison: str, measured: Measure,
           evidence: list[str] | None = None, preset: bool = True,
           met_without_value: bool = False) -> Verdict:
    if measured.measured:
        value = measured.value
        met = value <= limit if comparison == "le" else value >= limit  # type: ignore[operator]
    else:
        met = met_without_value
    return Verdict(target=target, target_value=float(limit), unit=unit, comparison=comparison,
                   measured=measured, outcome="met" if met else "missed", preset=preset,
                   evidence=list(evidence or []))


def _duration(measure_of: Callable[[_Figures], Measure]) -> Evaluator:
    def evaluate(target: str, raw: Any, f: _Figures) -> Verdict:
        limit = seconds(raw)
        measured = measure_of(f)
        # No customer impact means there was nothing to recover from, and recovering before
        # the fault cleared needed no time after it: either way the target is met.
        return _judge(target, limit if limit is not None else float("nan"), "s", "le", measured,
                      met_without_value=measured.status in (MeasureStatus.NO_IMPACT, MeasureStatus.RECOVERED_BEFORE_CLEAR))
    return evaluate


def violations_for(integrity: IntegrityResult, target: str) -> list[dict[str, Any]]:
    """The violations counted against an integrity target (by ``kind`` or ``category``)."""
    checked_key, kinds = INTEGRITY_CHECKS[target]
    return [v for v in integrity.violations if v.get("kind") in kinds or v.get("category") == checked_key]


def integrity_verdict(target: str, raw: Any, f: _Figures, preset: bool = True) -> Verdict:
    """Judge one data-integrity check (``lost_orders``...) against the integrity record."""
    checked_key = INTEGRITY_CHECKS[target][0]
    limit = float(raw) if raw is not None else 0.0
    if f.integrity is None:
        measured = Measure(None, "count", None, "exact", MeasureStatus.NOT_MEASURED)
        return _judge(target, limit, "count", "le", measured, [], preset)
    ids: list[str] = []
    details: list[str] = []
    for violation in violations_for(f.integrity, target):
        ids.extend(str(i) for i in violation.get("order_ids") or [])
        if violation.get("detail"):
            details.append(str(violation["detail"]))
    count = max(int(f.integrity.checked.get(checked_key, 0)), len(ids))
    measured = Measure(float(count), "count", None, "exact")
    return _judge(target, limit, "count", "le", measured, ids + details, preset)


def _batch_margin(target: str, raw: Any, f: _Figures) -> Verdict:
    limit = seconds(raw)
    margins = [b.margin_s for b in f.batches if b.margin_s is not None]
    if margins:
        worst = min(margins)
        jobs = [b.job for b in f.batches if b.margin_s == worst] if len(f.batches) > 1 else []
        measured = Measure(worst, "s", None, "journal")
    else:
        jobs = []
        measured = Measure(None, "s", None, "journal", MeasureStatus.NOT_MEASURED)
    return _judge(target, limit if limit is not None else float("nan"), "s", "ge", measured, jobs)


def _error_budget(target: str, raw: Any, f: _Figures) -> Verdict:
    return _judge(target, float(raw), "ratio", "le", f.error_budget.consumed)


def _execution_delay(target: str, raw: Any, f: _Figures) -> Verdict:
    limit = seconds(raw)
    parts = [f.execution_delay.during, f.execution_delay.after, f.execution_delay.before]
    values = [p.p99_s for p in parts if p.p99_s is not None]
    measured = (
        Measure(max(values), "s", None, "exact")
        if values
        else Measure(None, "s", None, "exact", MeasureStatus.NOT_MEASURED)
    )
    return _judge(target, limit if limit is not None else float("nan"), "s", "le", measured)


TARGET_EVALUATORS: dict[str, Evaluator] = {
    "detect_within": _duration(lambda f: f.detection),
    "recover_within": _duration(lambda f: f.rto_from_inject),
    "recover_after_clear_within": _duration(lambda f: f.rto_from_clear),
    "impact_within": _duration(lambda f: f.impact_duration),
    "backlog_drain_within": _duration(lambda f: f.backlog_drain),
    "batch_margin": _batch_margin,
    "error_budget": _error_budget,
    "execution_delay_p99": _execution_delay,
    **{key: integrity_verdict for key in INTEGRITY_CHECKS},
}


def evaluate_targets(targets: dict[str, Any], **figures: Any) -> list[Verdict]:
    """A verdict per pre-set target, in the scenario's order, then the built-in integrity rules.

    The built-in rules (no order lost, duplicated, executed twice, stuck or unreconciled)
    apply whenever the journal holds an integrity record, even without a stated target.
    """
    f = _Figures(**figures)
    verdicts: list[Verdict] = []
    seen: set[str] = set()
    for key, raw in targets.items():
        name = canonical_target(key)
        seen.add(name)
        evaluator = TARGET_EVALUATORS.get(name)
        if evaluator is None:
            measured = Measure(None, "", None, "exact", MeasureStatus.NOT_MEASURED)
            value = raw if isinstance(raw, (int, float)) and not isinstance(raw, bool) else float("nan")
            verdicts.append(Verdict(target=name, target_value=float(value), unit="", comparison="le",
                                    measured=measured, outcome="not_assessed"))
            continue
        try:
            verdicts.append(evaluator(name, raw, f))
        except (TypeError, ValueError):
            measured = Measure(None, "", None, "exact", MeasureStatus.NOT_MEASURED)
            verdicts.append(Verdict(target=name, target_value=float("nan"), unit="", comparison="le",
                                    measured=measured, outcome="not_assessed"))
    if f.integrity is not None:
        for key in INTEGRITY_CHECKS:
            if key not in seen:
                verdicts.append(integrity_verdict(key, 0, f, preset=False))
    return verdicts
