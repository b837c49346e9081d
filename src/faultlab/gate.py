"""The CI gate's arithmetic: trial values, their statistics, the noise rule, the verdicts.

Pure: no I/O beyond what the caller hands in, no UI, no network. :func:`faultlab.engine.gate.run_gate`
runs the trials and calls these functions, :mod:`faultlab.report.gate` puts them in words; the
tests call them on synthetic trial values.

The noise rule (docs/gate.md explains the choice): a measure regressed only when

1. **tolerance**: the gated statistic of the new trials is worse than the baseline's
   statistic by more than the plan's tolerance (``rto.p90: +20%``), and
2. **separation**: every new trial is worse than every baseline trial (the new trials'
   best is worse than the baseline's worst), so the change exceeds the spread seen across
   trials. If nothing changed, trials are exchangeable and the chance that all ``n`` new
   ones rank below all ``m`` old ones is ``1 / C(n+m, n)`` (1 in 20 for 3 and 3): the
   exact one-sided rank test at its extreme. Ties count as overlap.

Values that have no number are ranked, not dropped: *not recovered* and *not detected* are
worse than any number (``inf``); *no customer impact* and *recovered before the fault
cleared* count as 0 for recovery and impact times. Only *not measured* leaves a trial out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from faultlab.analysis.targets import integrity_count
from faultlab.errors import InputError, Problem
from faultlab.model.plan import GATE_STATISTICS
from faultlab.stats import percentile

__all__ = [
    "BASELINE_SCHEMA",
    "GATE_SCHEMA",
    "MEASURES",
    "MeasureInfo",
    "Tolerance",
    "TrialValue",
    "Distribution",
    "RuleResult",
    "TargetResult",
    "ScenarioGate",
    "GateResult",
    "trial_values",
    "statistic",
    "distribution",
    "chance_of_separation",
    "allowed_limit",
    "compare",
    "judge_targets",
    "baseline_scenario",
    "read_baseline",
    "BaselineScenario",
    "STATISTICS",
]

BASELINE_SCHEMA = "faultlab.baseline/1"
"""The ``schema`` of a baseline file."""

GATE_SCHEMA = "faultlab.gate/1"
"""The ``schema`` of a ``gate.json``."""


@dataclass(frozen=True)
class MeasureInfo:
    """What a measure is: its unit, and whether a higher value is worse."""

    name: str
    unit: str
    higher_is_worse: bool
    label: str


MEASURES: dict[str, MeasureInfo] = {
    m.name: m
    for m in (
        MeasureInfo("rto", "s", True, "recovery time from injection (RTO)"),
        MeasureInfo("mttd", "s", True, "time to detect (MTTD)"),
        MeasureInfo("recovery_after_clear", "s", True, "recovery time after the fault cleared"),
        MeasureInfo("impact", "s", True, "customer impact duration"),
        MeasureInfo("customer_impact", "requests", True, "requests rejected, failed or delayed"),
        MeasureInfo("success_rate", "ratio", False, "share of requests answered OK"),
        MeasureInfo("p99_latency", "s", True, "worst one-window p99 latency"),
        MeasureInfo("completion_delay", "s", True, "p99 completion delay (the stack plugin declares what it is)"),
        MeasureInfo("job_margin", "s", False, "least margin of a job before its deadline"),
        MeasureInfo("integrity_violations", "count", True, "violations of the integrity checks the plugin ran"),
    )
}
"""Every measure the gate summarises, in display order. All but ``customer_impact`` are
gateable (``faultlab.model.plan.GATE_METRICS``); ``customer_impact`` is shown for context."""

_NO_NUMBER_WORST = frozenset({"not_recovered", "not_detected"})
# Nothing to recover from, or recovered before the fault cleared: as good as zero.
_NO_NUMBER_ZERO = frozenset({"no_impact", "recovered_before_clear"})


@dataclass(frozen=True)
class TrialValue:
    """One trial's value of one measure: ``value`` (``inf`` = never recovered/detected) and
    the status it came from (``measured``, ``not_recovered``, ``no_impact``...)."""

    value: float | None
    status: str = "measured"

    @property
    def usable(self) -> bool:
        """True when the trial ranks (everything but *not measured*)."""
        return self.value is not None


@dataclass(frozen=True)
class Tolerance:
    """How much worse a statistic may get: ``relative`` (fraction of the baseline) or
    ``absolute`` (in the measure's unit); both None means "not at all"."""

    text: str = "+0"
    relative: float | None = None
    absolute: float | None = None

    @classmethod
    def of(cls, value: Any) -> Tolerance:
        """From anything with ``text``, ``relative`` and ``absolute`` (a plan's GateTolerance)."""
        if isinstance(value, Tolerance):
            return value
        return cls(str(getattr(value, "text", "+0")), getattr(value, "relative", None),
                   getattr(value, "absolute", None))


def _from_measure(measure: Any, zero_when_no_impact: bool) -> TrialValue:
    status = str(getattr(measure, "status", "measured"))
    value = getattr(measure, "value", None)
    if status == "measured" and value is not None:
        return TrialValue(float(value), status)
    if status in _NO_NUMBER_WORST:
        return TrialValue(math.inf, status)
    if status in _NO_NUMBER_ZERO and zero_when_no_impact:
        return TrialValue(0.0, status)
    return TrialValue(None, status)


def trial_values(analysis: Any) -> dict[str, TrialValue]:
    """Every gate measure of one analysed run (a :class:`faultlab.analysis.Analysis`)."""
    out: dict[str, TrialValue] = {
        "rto": _from_measure(analysis.rto_from_inject, True),
        "mttd": _from_measure(analysis.detection, False),
        "recovery_after_clear": _from_measure(analysis.rto_from_clear, True),
        "impact": _from_measure(analysis.impact_duration, True),
    }
    total = [c for c in analysis.customer_impact.whole_run if c.source == "total"]
    counts = total[0] if total else None
    if counts is not None and counts.sent:
        out["customer_impact"] = TrialValue(float(counts.rejected + counts.failed + counts.delayed))
        out["success_rate"] = TrialValue(counts.ok / counts.sent)
    else:
        out["customer_impact"] = out["success_rate"] = TrialValue(None, "not_measured")
    p99s = [w.p99_latency_s for w in analysis.windows if w.p99_latency_s is not None]
    out["p99_latency"] = TrialValue(max(p99s)) if p99s else TrialValue(None, "not_measured")
    delay = analysis.completion_delay
    delays = [p.p99_s for p in (delay.before, delay.during, delay.after) if p.p99_s is not None]
    out["completion_delay"] = TrialValue(max(delays)) if delays else TrialValue(None, "not_measured")
    margins = [j.margin_s for j in analysis.jobs if j.margin_s is not None]
    out["job_margin"] = TrialValue(min(margins)) if margins else TrialValue(None, "not_measured")
    integrity = analysis.integrity
    if integrity is None or not integrity.checked:
        out["integrity_violations"] = TrialValue(None, "not_measured")
    else:
        counts = [integrity_count(integrity, check) for check in integrity.checked]
        out["integrity_violations"] = TrialValue(float(sum(c for c in counts if c is not None)))
    return out


def statistic(values: Sequence[float], name: str) -> float:
    """``p50``, ``p90``, ``p95``, ``p99`` (nearest rank, :func:`faultlab.stats.percentile`:
    always one trial's value), ``min``, ``max`` or ``mean`` of ``values`` (not empty; may
    hold inf)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    if name == "min":
        return ordered[0]
    if name == "max":
        return ordered[-1]
    if name == "mean":
        return math.fsum(ordered) / len(ordered) if math.inf not in ordered else math.inf
    if not (name.startswith("p") and name[1:].isdigit() and int(name[1:]) <= 100):
        raise ValueError(f"unknown statistic {name!r}")
    value = percentile(ordered, int(name[1:]) / 100)
    assert value is not None
    return value


STATISTICS = GATE_STATISTICS
"""The statistics a gate rule may name (``rto.p90``)."""


@dataclass(frozen=True)
class Distribution:
    """A measure over the trials: every trial's value, the usable values and statistics."""

    trials: tuple[TrialValue, ...]

    @property
    def values(self) -> list[float]:
        """The trials that rank (not-measured ones left out), in trial order."""
        return [t.value for t in self.trials if t.value is not None]

    @property
    def empty(self) -> bool:
        """True when no trial has a value."""
        return not self.values

    def stat(self, name: str) -> float | None:
        """One statistic, or None when there is no value."""
        return None if self.empty else statistic(self.values, name)

    def best(self, higher_is_worse: bool) -> float | None:
        """The best trial (lowest when higher is worse)."""
        return None if self.empty else (min(self.values) if higher_is_worse else max(self.values))

    def worst(self, higher_is_worse: bool) -> float | None:
        """The worst trial."""
        return None if self.empty else (max(self.values) if higher_is_worse else min(self.values))

    @property
    def spread(self) -> float | None:
        """max - min over the trials (inf when a trial never recovered)."""
        if self.empty:
            return None
        return max(self.values) - min(self.values) if math.inf not in self.values else math.inf

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: values (null where no number), statuses, statistics and spread."""
        return {
            "values": [_json_number(t.value) for t in self.trials],
            "statuses": [t.status for t in self.trials],
            "stats": {name: _json_number(self.stat(name)) for name in STATISTICS},
            "spread": _json_number(self.spread),
        }


def distribution(trials: Iterable[TrialValue]) -> Distribution:
    """The distribution of one measure over trials."""
    return Distribution(tuple(trials))


def _json_number(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(value, 6)


def chance_of_separation(n_new: int, n_base: int) -> float:
    """Probability that all ``n_new`` trials rank worse than all ``n_base`` when nothing
    changed (trials exchangeable, no ties): ``1 / C(n_new + n_base, n_new)``."""
    if n_new <= 0 or n_base <= 0:
        return 1.0
    return 1.0 / math.comb(n_new + n_base, n_new)


def allowed_limit(base: float, tolerance: Tolerance, higher_is_worse: bool) -> float:
    """The worst the statistic may become: baseline plus (or minus) the tolerance."""
    if math.isinf(base):
        return base
    slack = abs(base) * tolerance.relative if tolerance.relative is not None else tolerance.absolute or 0.0
    return base + slack if higher_is_worse else base - slack


@dataclass(frozen=True)
class RuleResult:
    """One gate rule (``rto.p90: +20%``) on one scenario.

    ``outcome``: ``pass``, ``improved`` (better beyond the tolerance, every trial better: a
    reason to update the baseline), ``regression``, ``missing`` (the baseline has values,
    the new trials none: counts as a failure) or ``not_applicable`` (the baseline has no
    value for it in this scenario). ``beyond_tolerance`` and ``separated`` are the two
    halves of the noise rule.
    """

    rule: str
    measure: str
    stat: str
    tolerance: str
    unit: str
    higher_is_worse: bool
    outcome: str
    baseline: float | None
    new: float | None
    limit: float | None
    baseline_range: tuple[float | None, float | None]
    new_range: tuple[float | None, float | None]
    baseline_trials: int
    new_trials: int
    beyond_tolerance: bool
    separated: bool
    chance: float | None

    @property
    def failed(self) -> bool:
        """True when this rule fails the gate."""
        return self.outcome in ("regression", "missing")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for ``gate.json``."""
        return {
            "rule": self.rule, "measure": self.measure, "statistic": self.stat,
            "tolerance": self.tolerance, "unit": self.unit,
            "higher_is_worse": self.higher_is_worse, "outcome": self.outcome,
            "baseline": _json_number(self.baseline), "new": _json_number(self.new),
            "limit": _json_number(self.limit),
            "baseline_range": [_json_number(v) for v in self.baseline_range],
            "new_range": [_json_number(v) for v in self.new_range],
            "baseline_trials": self.baseline_trials, "new_trials": self.new_trials,
            "beyond_tolerance": self.beyond_tolerance, "separated": self.separated,
            "chance_if_unchanged": self.chance,
            "unbounded": {"baseline": self.baseline is not None and math.isinf(self.baseline),
                          "new": self.new is not None and math.isinf(self.new)},
        }


def _worse(a: float, b: float, higher_is_worse: bool) -> bool:
    """True when ``a`` is strictly worse than ``b``."""
    return a > b if higher_is_worse else a < b


def compare(rule: str, tolerance: Any, baseline: Distribution, new: Distribution) -> RuleResult:
    """Judge one gate rule ``MEASURE.STATISTIC`` with the noise rule (see the module doc)."""
    measure, _, stat = rule.partition(".")
    info = MEASURES.get(measure)
    if info is None:
        raise ValueError(f"unknown measure {measure!r}")
    if stat not in STATISTICS:
        raise ValueError(f"unknown statistic {stat!r}")
    tol = Tolerance.of(tolerance)
    hw = info.higher_is_worse
    base_stat, new_stat = baseline.stat(stat), new.stat(stat)
    base_range = (baseline.best(hw), baseline.worst(hw))
    new_range = (new.best(hw), new.worst(hw))
    common = dict(rule=rule, measure=measure, stat=stat, tolerance=tol.text, unit=info.unit,
                  higher_is_worse=hw, baseline=base_stat, new=new_stat,
                  baseline_range=base_range, new_range=new_range,
                  baseline_trials=len(baseline.values), new_trials=len(new.values))
    if base_stat is None:
        return RuleResult(outcome="not_applicable", limit=None, beyond_tolerance=False,
                          separated=False, chance=None, **common)  # type: ignore[arg-type]
    limit = allowed_limit(base_stat, tol, hw)
    if new_stat is None:
        return RuleResult(outcome="missing", limit=limit, beyond_tolerance=False,
                          separated=False, chance=None, **common)  # type: ignore[arg-type]
    chance = chance_of_separation(len(new.values), len(baseline.values))
    beyond = _worse(new_stat, limit, hw)
    # Separation: the new trials' best is worse than the baseline's worst.
    separated = _worse(new.best(hw), baseline.worst(hw), hw)  # type: ignore[arg-type]
    outcome = "regression" if beyond and separated else "pass"
    if outcome == "pass":
        better_limit = allowed_limit(base_stat, tol, not hw)
        if (_worse(better_limit, new_stat, hw) and _worse(baseline.best(hw), new.worst(hw), hw)  # type: ignore[arg-type]
                and math.isfinite(base_stat)):
            outcome = "improved"
    return RuleResult(outcome=outcome, limit=limit, beyond_tolerance=beyond, separated=separated,
                      chance=chance, **common)  # type: ignore[arg-type]


@dataclass(frozen=True)
class TargetResult:
    """A scenario's pre-set target over all trials: missed when any trial missed it.

    ``worst`` is the worst measured value over the trials (None when no trial had a number),
    ``missed_trials`` how many trials missed it. The target ``run`` is "every trial completed".
    """

    target: str
    target_value: float | None
    unit: str
    comparison: str
    missed_trials: int
    trials: int
    worst: float | None
    worst_status: str
    values: list[float | None] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """True when a trial missed the target."""
        return self.missed_trials > 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for ``gate.json``."""
        return {
            "target": self.target, "target_value": _json_number(self.target_value), "unit": self.unit,
            "comparison": self.comparison, "outcome": "missed" if self.failed else "met",
            "missed_trials": self.missed_trials, "trials": self.trials,
            "worst": _json_number(self.worst), "worst_status": self.worst_status,
            "values": [_json_number(v) for v in self.values],
        }


def judge_targets(analyses: Sequence[Any]) -> list[TargetResult]:
    """Every pre-set target of a scenario over its trials (analyses of the same scenario),
    then ``run`` (every trial completed). Built-in integrity rules count like targets."""
    names: list[str] = []
    per: dict[str, list[Any]] = {}
    for analysis in analyses:
        for verdict in analysis.verdicts:
            if verdict.target not in per:
                names.append(verdict.target)
                per[verdict.target] = []
            per[verdict.target].append(verdict)
    results = []
    for target in names:
        verdicts = per[target]
        first = verdicts[0]
        sign = 1 if first.comparison == "le" else -1
        numbers = [v.measured.value for v in verdicts if v.measured.measured]
        missing = [v.measured.status for v in verdicts if not v.measured.measured]
        if missing and any(not v.met for v in verdicts if not v.measured.measured):
            worst, status = None, missing[0]
        elif numbers:
            worst, status = max(numbers, key=lambda x: sign * x), "measured"
        else:
            worst, status = None, missing[0] if missing else "not_measured"
        value = first.target_value if math.isfinite(first.target_value) else None
        results.append(TargetResult(
            target=target, target_value=value, unit=first.unit, comparison=first.comparison,
            missed_trials=sum(1 for v in verdicts if not v.met) + (len(analyses) - len(verdicts)),
            trials=len(analyses), worst=worst, worst_status=status,
            values=[v.measured.value if v.measured.measured else None for v in verdicts],
        ))
    incomplete = [a.status if a.status != "completed" else "inconclusive" for a in analyses
                  if a.status != "completed" or getattr(a, "inconclusive", False)]
    results.append(TargetResult(
        target="run", target_value=None, unit="", comparison="completed", missed_trials=len(incomplete),
        trials=len(analyses), worst=None, worst_status=incomplete[0] if incomplete else "completed",
    ))
    return results


@dataclass(frozen=True)
class ScenarioGate:
    """One scenario's gate: its measures' distributions, its rules and its targets."""

    scenario: str
    title: str
    runs: list[str]
    measures: dict[str, Distribution]
    rules: list[RuleResult]
    targets: list[TargetResult]
    warnings: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """True when a rule regressed or a target was missed."""
        return any(r.failed for r in self.rules) or any(t.failed for t in self.targets)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for ``gate.json``."""
        return {
            "scenario": self.scenario, "title": self.title, "runs": self.runs,
            "passed": not self.failed,
            "measures": {name: d.to_dict() for name, d in self.measures.items()},
            "rules": [r.to_dict() for r in self.rules],
            "targets": [t.to_dict() for t in self.targets],
            "warnings": self.warnings,
        }


@dataclass(frozen=True)
class GateResult:
    """The whole gate: every scenario, and what was compared with what."""

    scenarios: list[ScenarioGate]
    baseline_file: str
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True when no scenario failed."""
        return not any(s.failed for s in self.scenarios)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures of ``gate.json`` (``faultlab.report.gate`` adds the sentences)."""
        return {
            "schema": GATE_SCHEMA, "passed": self.passed, "baseline": self.baseline_file,
            **self.info,
            "scenarios": [s.to_dict() for s in self.scenarios],
        }


# -- the baseline file ----------------------------------------------------------------------


@dataclass(frozen=True)
class BaselineScenario:
    """One scenario of a baseline: its file hash and each measure's trial values."""

    scenario: str
    sha256: str
    measures: dict[str, Distribution]


def baseline_scenario(scenario_id: str, title: str, file: str, sha256: str, runs: Sequence[str],
                      measures: Mapping[str, Distribution]) -> dict[str, Any]:
    """A baseline file's entry for one scenario (per measure: trial values and statistics)."""
    return {"title": title, "file": file, "sha256": sha256, "runs": list(runs),
            "measures": {name: {"unit": MEASURES[name].unit, **d.to_dict()} for name, d in measures.items()}}


def _trial(value: Any, status: Any) -> TrialValue:
    status = str(status or "measured")
    if value is None:
        if status in _NO_NUMBER_WORST:
            return TrialValue(math.inf, status)
        if status in _NO_NUMBER_ZERO:
            return TrialValue(0.0, status)
        return TrialValue(None, status)
    return TrialValue(float(value), status)


def _baseline_measures(measures_json: dict[str, Any], where: str,
                       problem: Callable[[str, str], Problem]) -> tuple[dict[str, Distribution], list[Problem]]:
    """One scenario's measures of a baseline file, and what is wrong with them."""
    measures: dict[str, Distribution] = {}
    problems: list[Problem] = []
    for name, m in measures_json.items():
        mwhere = f"{where}.measures.{name}"
        if name not in MEASURES:
            problems.append(problem(mwhere, f"unknown measure; known: {', '.join(MEASURES)}"))
            continue
        values = m.get("values") if isinstance(m, dict) else None
        statuses = m.get("statuses", [None] * len(values)) if isinstance(values, list) else None
        if not isinstance(values, list) or not isinstance(statuses, list) or len(statuses) != len(values):
            problems.append(problem(f"{mwhere}.values", "expected a list of trial values (numbers or null) "
                                                        "and a `statuses` list of the same length"))
            continue
        bad = [i for i, v in enumerate(values)
               if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)))]
        if bad:
            problems.append(problem(f"{mwhere}.values[{bad[0]}]", f"not a number: {values[bad[0]]!r}"))
            continue
        measures[name] = Distribution(tuple(_trial(v, s) for v, s in zip(values, statuses, strict=True)))
    return measures, problems


def read_baseline(text: str, file: str) -> tuple[dict[str, Any], dict[str, BaselineScenario]]:
    """Parse a baseline file's text; every problem is reported at once as an InputError
    naming the file and the JSON path. Returns the header and the scenarios by id."""
    import json

    def problem(path: str, message: str) -> Problem:
        return Problem(file, 0, 0, path, message)

    hint = "re-create it with `faultlab baseline update PLAN --out FILE`"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError([Problem(file, exc.lineno, exc.colno, "", f"not valid JSON: {exc.msg}; {hint}")]) from exc
    if not isinstance(data, dict):
        raise InputError([problem("", f"a baseline is a JSON object, got {type(data).__name__}; {hint}")])
    problems: list[Problem] = []
    if data.get("schema") != BASELINE_SCHEMA:
        problems.append(problem("schema", f"expected {BASELINE_SCHEMA!r}, got {data.get('schema')!r}; {hint}"))
    scenarios = data.get("scenarios")
    out: dict[str, BaselineScenario] = {}
    if not isinstance(scenarios, dict) or not scenarios:
        problems.append(problem("scenarios", f"expected an object of scenarios by id, got {scenarios!r:.60}; {hint}"))
        raise InputError(problems)
    for sid, entry in scenarios.items():
        where = f"scenarios.{sid}"
        if not isinstance(entry, dict) or not isinstance(entry.get("measures"), dict):
            problems.append(problem(f"{where}.measures", "missing or not an object"))
            continue
        measures, found = _baseline_measures(entry["measures"], where, problem)
        problems += found
        out[str(sid)] = BaselineScenario(str(sid), str(entry.get("sha256") or ""), measures)
    if problems:
        raise InputError(problems)
    header = {k: v for k, v in data.items() if k != "scenarios"}
    return header, out
