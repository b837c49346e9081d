"""The CI gate in words: its table rows, failure sentences, ``gate.json`` and ``junit.xml``.

:mod:`faultlab.gate` computes; this module writes what it computed, so the terminal, the
JSON and the JUnit file say the same thing in the same words.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from faultlab.gate import MEASURES, GateResult, RuleResult, TargetResult

__all__ = [
    "number_text",
    "range_text",
    "rule_message",
    "target_message",
    "failure_lines",
    "check_rows",
    "spread_rows",
    "CHECK_HEADER",
    "SPREAD_HEADER",
    "write_gate_json",
    "write_gate_junit",
]

CHECK_HEADER = ("scenario", "check", "baseline [best .. worst]", "new [best .. worst]", "allowed", "result")
SPREAD_HEADER = ("scenario", "measure", "trials", "p50", "p90", "spread")
FAILED_RESULTS = frozenset({"REGRESSION", "MISSING", "MISSED"})
"""The ``result`` cells of :func:`check_rows` that are failures."""


def number_text(value: float | None, unit: str) -> str:
    """``8.20 s``, ``97.5%``, ``3``; ``not recovered`` for inf, ``-`` for None."""
    if value is None:
        return "-"
    if math.isinf(value):
        return "never (not recovered/detected)" if unit == "s" else "inf"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "ratio":
        return f"{value * 100:.2f}%"
    return f"{value:g}"


def range_text(pair: tuple[float | None, float | None], unit: str) -> str:
    """``8.10–8.30 s`` (best to worst)."""
    lo, hi = pair
    if lo is None:
        return "-"
    return f"{number_text(lo, unit)} .. {number_text(hi, unit)}"


def rule_message(r: RuleResult) -> str:
    """``rto.p90 regressed: baseline 8.20 s (trials 8.10 s .. 8.30 s), new ...``."""
    if r.outcome == "missing":
        return (f"{r.rule} not measured in the new trials; baseline {number_text(r.baseline, r.unit)} "
                f"(trials {range_text(r.baseline_range, r.unit)})")
    verb = {"regression": "regressed", "improved": "improved", "pass": "within tolerance",
            "not_applicable": "not applicable (no baseline value)"}[r.outcome]
    text = (f"{r.rule} {verb}: baseline {number_text(r.baseline, r.unit)} "
            f"(trials {range_text(r.baseline_range, r.unit)}), new {number_text(r.new, r.unit)} "
            f"(trials {range_text(r.new_range, r.unit)})")
    if r.limit is not None:
        text += f", allowed {'≤' if r.higher_is_worse else '≥'} {number_text(r.limit, r.unit)} ({r.tolerance})"
    if r.outcome == "pass" and r.beyond_tolerance and not r.separated:
        text += "; beyond the tolerance but within the spread of the trials (noise)"
    return text


def target_message(t: TargetResult) -> str:
    """``target recover_within missed in 2/3 trials: worst 31.00 s vs target ≤ 30.00 s``."""
    if t.target == "run":
        return f"{t.missed_trials}/{t.trials} trials did not complete or were inconclusive (first: {t.worst_status})"
    worst = number_text(t.worst, t.unit) if t.worst is not None else t.worst_status.replace("_", " ")
    cmp = "≤" if t.comparison == "le" else "≥"
    state = f"missed in {t.missed_trials}/{t.trials} trials" if t.failed else f"met in {t.trials}/{t.trials} trials"
    return f"target {t.target} {state}: worst {worst} vs target {cmp} {number_text(t.target_value, t.unit)}"


def failure_lines(result: GateResult) -> list[str]:
    """One line per failure: scenario, measure, baseline and new value."""
    lines = []
    for s in result.scenarios:
        lines += [f"{s.scenario}: {rule_message(r)}" for r in s.rules if r.failed]
        lines += [f"{s.scenario}: {target_message(t)}" for t in s.targets if t.failed]
    return lines


def _rule_row(scenario: str, r: RuleResult) -> tuple[str, ...]:
    verdict = {"regression": "REGRESSION", "missing": "MISSING"}.get(r.outcome, r.outcome)
    if r.outcome == "pass" and r.beyond_tolerance and not r.separated:
        verdict = "pass (noise)"
    limit = "-" if r.limit is None else f"{'≤' if r.higher_is_worse else '≥'} {number_text(r.limit, r.unit)}"
    return (scenario, f"{r.rule} {r.tolerance}",
            f"{number_text(r.baseline, r.unit)} [{range_text(r.baseline_range, r.unit)}]",
            f"{number_text(r.new, r.unit)} [{range_text(r.new_range, r.unit)}]", limit, verdict)


def _target_row(scenario: str, t: TargetResult) -> tuple[str, ...]:
    if t.target == "run":
        return (scenario, "runs completed", "-", f"{t.trials - t.missed_trials}/{t.trials}",
                f"{t.trials}/{t.trials}", "MISSED" if t.failed else "met")
    worst = number_text(t.worst, t.unit) if t.worst is not None else t.worst_status.replace("_", " ")
    cmp = "≤" if t.comparison == "le" else "≥"
    return (scenario, f"target {t.target}", "-", f"worst {worst}",
            f"{cmp} {number_text(t.target_value, t.unit)}", "MISSED" if t.failed else "met")


def check_rows(result: GateResult) -> list[tuple[str, ...]]:
    """The gate's table (:data:`CHECK_HEADER`): every rule and target of every scenario."""
    rows: list[tuple[str, ...]] = []
    for s in result.scenarios:
        rows += [_rule_row(s.scenario, r) for r in s.rules]
        rows += [_target_row(s.scenario, t) for t in s.targets]
    return rows


def spread_rows(result: GateResult) -> list[tuple[str, ...]]:
    """The measures over the trials (:data:`SPREAD_HEADER`), those that have values."""
    rows: list[tuple[str, ...]] = []
    for s in result.scenarios:
        for name, d in s.measures.items():
            if d.empty:
                continue
            unit = MEASURES[name].unit
            trials = ", ".join(number_text(v, unit) for v in d.values)
            rows.append((s.scenario, name, trials, number_text(d.stat("p50"), unit),
                         number_text(d.stat("p90"), unit), number_text(d.spread, unit)))
    return rows


def write_gate_json(path: Path, body: dict[str, Any] | GateResult) -> Path:
    """Write ``gate.json`` (a result gets its failure sentences added)."""
    if isinstance(body, GateResult):
        data = body.to_dict()
        data["failures"] = failure_lines(body)
    else:
        data = body
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")
    return path


def write_gate_junit(result: GateResult, path: Path) -> Path:
    """One test case per scenario x rule (and per target); a failure names both values."""
    root = ET.Element("testsuites", {"name": "faultlab.gate"})
    for s in result.scenarios:
        cases = [(f"gate {r.rule} {r.tolerance}", r.failed, rule_message(r), r.outcome) for r in s.rules]
        cases += [(f"target {t.target}", t.failed, target_message(t), "missed") for t in s.targets]
        suite = ET.SubElement(root, "testsuite", {
            "name": f"faultlab.gate.{s.scenario}", "tests": str(len(cases)),
            "failures": str(sum(1 for c in cases if c[1])), "errors": "0", "skipped": "0"})
        for name, failed, message, kind in cases:
            case = ET.SubElement(suite, "testcase", {"classname": f"faultlab.gate.{s.scenario}", "name": name})
            if failed:
                ET.SubElement(case, "failure", {"message": message, "type": kind}).text = message
            else:
                ET.SubElement(case, "system-out").text = message
    ET.indent(root)
    path.write_bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n")
    return path
