"""``faultlab gate`` and ``faultlab baseline update``: the CI gate on recovery-time regressions.

``gate PLAN`` runs every scenario of the plan for N trials, compares the distributions of
the measures with the stored baseline under the plan's ``gate:`` rules (with the noise rule
of :mod:`faultlab.gate`) and with the scenarios' own targets, prints a table, and writes
``gate.json`` and ``junit.xml`` in ``reports/<plan>/gate-<time>/``. ``baseline update PLAN``
runs the same trials and writes the baseline file. See docs/gate.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from faultlab.errors import ExitCode, InputError, Problem

__all__ = ["register", "DEFAULT_TRIALS"]

DEFAULT_TRIALS = 3
"""Trials per scenario when neither ``--trials`` nor the plan says."""


def register(subparsers: Any) -> None:
    """Add ``gate`` and ``baseline update`` to the ``faultlab`` command."""
    gate = subparsers.add_parser(
        "gate",
        help="run a plan's scenarios N times and fail on a recovery-time regression",
        description=(
            "Run each scenario of the plan for N trials, summarise RTO, MTTD, impact and customer "
            "impact per scenario, and compare them with the stored baseline under the plan's "
            "`gate:` rules (a regression must exceed the tolerance and the spread of the trials) "
            "and with the scenarios' targets. Writes gate.json and junit.xml. Exit codes: 0 pass, "
            "1 regression or missed target, 2 bad input (plan or baseline), 3 infrastructure error."
        ),
        epilog="example: faultlab gate drills/ci-gate.yaml --baseline reports/baselines/ci-gate.json",
    )
    gate.add_argument("plan", type=Path, help="drill plan file")
    gate.add_argument("--baseline", type=Path, default=None,
                      help="baseline file (default: the plan's `baseline:`)")
    _common(gate)
    gate.set_defaults(handler=_gate)

    baseline = subparsers.add_parser("baseline", help="work with the gate's baselines")
    sub = baseline.add_subparsers(dest="baseline_command", metavar="SUBCOMMAND", required=True)
    update = sub.add_parser(
        "update",
        help="run a plan's scenarios N times and write the gate's baseline",
        description=(
            "Run each scenario of the plan for N trials and write the baseline: per scenario and "
            "measure the trial values and their statistics, with the machine and git commit."
        ),
        epilog="example: faultlab baseline update drills/ci-gate.yaml --out reports/baselines/ci-gate.json",
    )
    update.add_argument("plan", type=Path, help="drill plan file")
    update.add_argument("--out", type=Path, default=None,
                        help="baseline file to write (default: the plan's `baseline:`, else "
                             "reports/baselines/<plan>.json)")
    _common(update)
    update.set_defaults(handler=_baseline_update)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trials", type=int, default=None,
                        help=f"trials per scenario (default: the plan's `trials:`, else {DEFAULT_TRIALS})")
    parser.add_argument("--reports", type=Path, default=Path("reports"),
                        help="where run directories go (default: reports)")
    parser.add_argument("--state-dir", type=Path, default=None, help=argparse.SUPPRESS)


@dataclass
class _Trials:
    """The runs of one scenario: run directories and their analyses, in trial order."""

    scenario: Any
    run_dirs: list[Path]
    analyses: list[Any]


def _trial_count(args: argparse.Namespace, plan: Any) -> int:
    if args.trials is not None:
        if args.trials < 1:
            raise InputError(f"--trials must be at least 1, got {args.trials}")
        return args.trials
    return plan.trials if "trials" in plan.model_fields_set else DEFAULT_TRIALS


def _run_trials(plan: Any, trials: int, out_dir: Path, state_dir: Path | None) -> list[_Trials]:
    """Run every scenario ``trials`` times, interleaved (trial 1 of each, then trial 2...),
    so a slow drift of the machine spreads over all scenarios alike."""
    from faultlab.analysis import analyse
    from faultlab.cli.live import progress_observer
    from faultlab.engine.run import run_scenario

    scenarios = plan.resolved_scenarios
    per = [_Trials(s, [], []) for s in scenarios]
    total, done = len(scenarios) * trials, 0
    for trial in range(trials):
        for entry in per:
            done += 1
            print(f"[{done}/{total}] {entry.scenario.id} trial {trial + 1}/{trials}: {entry.scenario.title}",
                  file=sys.stderr, flush=True)
            result = run_scenario(entry.scenario, reports_dir=out_dir, group="runs",
                                  observers=[progress_observer()], state_dir=state_dir)
            entry.run_dirs.append(result.run_dir)
            entry.analyses.append(analyse(result.run_dir))
    return per


def _distributions(analyses: list[Any]) -> dict[str, Any]:
    from faultlab.gate import MEASURES, distribution, trial_values

    values = [trial_values(a) for a in analyses]
    return {name: distribution(v[name] for v in values) for name in MEASURES}


def _machine() -> dict[str, Any]:
    return {"host": socket.gethostname(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform()}


def _provenance(plan: Any, trials: int) -> dict[str, Any]:
    from faultlab import __version__
    from faultlab.loader import display_path
    from faultlab.report.manifest import git_commit

    return {
        "plan": {"file": display_path(plan.source), "title": plan.title},
        "trials": trials,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": _machine(),
        "git": git_commit(),
        "faultlab_version": __version__,
    }


def _scenario_sha(scenario: Any) -> str:
    from faultlab.report.manifest import file_sha256

    return file_sha256(Path(scenario.source))


def _load_baseline(path: Path, plan: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read and check the baseline before anything starts: every problem at once (exit 2)."""
    from faultlab.gate import read_baseline

    file = str(path)
    hint = "create it with `faultlab baseline update PLAN --out FILE`"
    if not path.exists():
        raise InputError([Problem(file, 0, 0, "", f"the baseline file does not exist; {hint}")])
    if path.is_dir():
        raise InputError([Problem(file, 0, 0, "", f"the baseline is a directory, not a baseline file; {hint}")])
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError([Problem(file, 0, 0, "", f"cannot read the baseline: {exc}")]) from exc
    header, scenarios = read_baseline(text, file)
    missing = [s.id for s in plan.resolved_scenarios if s.id not in scenarios]
    if missing:
        raise InputError([Problem(file, 0, 0, "scenarios", (
            f"no baseline for scenario {sid} of the plan (the baseline has: {', '.join(scenarios) or 'none'}); "
            "run `faultlab baseline update` after adding a scenario") ) for sid in missing])
    return header, scenarios


def _gate(args: argparse.Namespace) -> ExitCode:
    from faultlab.gate import GateResult, ScenarioGate, compare, distribution, judge_targets
    from faultlab.loader import display_path, load_plan

    plan = load_plan(args.plan)
    trials = _trial_count(args, plan)
    baseline_path = args.baseline or plan.baseline
    if baseline_path is None:
        raise InputError([Problem(str(args.plan), 0, 0, "baseline", (
            "no baseline to compare with: pass --baseline FILE or set `baseline:` in the plan; "
            "create one with `faultlab baseline update PLAN`"))])
    baseline_header, baseline = _load_baseline(Path(baseline_path), plan)
    warnings: list[str] = []
    if not plan.gate:
        warnings.append("the plan has no `gate:` rules: only the scenarios' targets are checked")
    if trials < 2:
        warnings.append("one trial cannot show the spread between runs: the noise rule is weak")

    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    gate_dir = args.reports / Path(plan.source).stem / f"gate-{stamp}"
    gate_dir.mkdir(parents=True, exist_ok=True)
    info = {**_provenance(plan, trials), "baseline_info": {
        k: baseline_header.get(k) for k in ("created", "machine", "git", "trials")}}
    started = time.monotonic()
    try:
        per = _run_trials(plan, trials, gate_dir, args.state_dir)
    except BaseException as exc:
        _write_json(gate_dir / "gate.json", {"schema": "faultlab.gate/1", "passed": False, **info,
                                              "error": f"{type(exc).__name__}: {exc}"})
        raise
    scenario_gates = []
    for entry in per:
        sid = entry.scenario.id
        measures = _distributions(entry.analyses)
        base = baseline[sid]
        notes = []
        if base.sha256 and base.sha256 != _scenario_sha(entry.scenario):
            notes.append(f"the scenario file changed since the baseline was measured ({display_path(entry.scenario.source)})")
        rules = [compare(key, tol, base.measures.get(key.partition('.')[0], distribution(())),
                         measures[key.partition('.')[0]])
                 for key, tol in plan.gate.items()]
        scenario_gates.append(ScenarioGate(
            scenario=sid, title=entry.scenario.title, runs=[str(d) for d in entry.run_dirs],
            measures=measures, rules=rules, targets=judge_targets(entry.analyses), warnings=notes,
        ))
    info["duration_s"] = round(time.monotonic() - started, 1)
    info["warnings"] = warnings
    result = GateResult(scenario_gates, display_path(Path(baseline_path)), info)
    _write_json(gate_dir / "gate.json", result.to_dict())
    _write_junit(result, gate_dir / "junit.xml")
    _print_result(result, warnings)
    print(f"gate: {'PASSED' if result.passed else 'FAILED'} in {info['duration_s']:.0f} s; "
          f"{gate_dir / 'gate.json'}, {gate_dir / 'junit.xml'}")
    return ExitCode.OK if result.passed else ExitCode.TARGET_MISSED


def _baseline_update(args: argparse.Namespace) -> ExitCode:
    from faultlab.gate import BASELINE_SCHEMA, MEASURES, baseline_scenario, judge_targets, number_text, target_message
    from faultlab.loader import display_path, load_plan

    plan = load_plan(args.plan)
    trials = _trial_count(args, plan)
    out = args.out or plan.baseline or Path("reports") / "baselines" / f"{Path(plan.source).stem}.json"
    out = Path(out)
    if out.is_dir():
        raise InputError([Problem(str(out), 0, 0, "", "is a directory; --out names the baseline file to write")])
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    run_root = args.reports / Path(plan.source).stem / f"baseline-{stamp}"
    per = _run_trials(plan, trials, run_root, args.state_dir)
    body: dict[str, Any] = {"schema": BASELINE_SCHEMA, **_provenance(plan, trials), "scenarios": {}}
    missed = []
    summary = []
    for entry in per:
        measures = _distributions(entry.analyses)
        body["scenarios"][entry.scenario.id] = baseline_scenario(
            entry.scenario.id, entry.scenario.title, display_path(entry.scenario.source),
            _scenario_sha(entry.scenario), [a.run_id for a in entry.analyses], measures)
        missed += [f"{entry.scenario.id}: {target_message(t)}" for t in judge_targets(entry.analyses) if t.failed]
        for name in ("rto", "mttd", "impact", "customer_impact"):
            unit = MEASURES[name].unit
            summary.append(f"  {entry.scenario.id:<14} {name:<16} "
                           f"trials {', '.join(number_text(v, unit) for v in measures[name].values) or '-'}; "
                           f"spread {number_text(measures[name].spread, unit)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_json(out, body)
    print("\n".join(summary))
    for line in missed:
        print(f"  MISSED {line}", file=sys.stderr)
    print(f"baseline written: {display_path(out)} ({trials} trials per scenario; runs under {run_root})")
    if missed:
        print("faultlab: the baseline's runs missed targets; the baseline was written, but check it",
              file=sys.stderr)
        return ExitCode.TARGET_MISSED
    return ExitCode.OK


def _write_json(path: Path, body: dict[str, Any]) -> None:
    path.write_text(json.dumps(body, indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")


def _write_junit(result: Any, path: Path) -> None:
    """One test case per scenario x rule (and per target); a failure names both values."""
    import xml.etree.ElementTree as ET

    from faultlab.gate import rule_message, target_message

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


def _rows(result: Any) -> list[tuple[str, str, str, str, str, str]]:
    from faultlab.gate import number_text, range_text

    rows = []
    for s in result.scenarios:
        for r in s.rules:
            verdict = {"regression": "REGRESSION", "missing": "MISSING"}.get(r.outcome, r.outcome)
            if r.outcome == "pass" and r.beyond_tolerance and not r.separated:
                verdict = "pass (noise)"
            limit = "-" if r.limit is None else f"{'≤' if r.higher_is_worse else '≥'} {number_text(r.limit, r.unit)}"
            rows.append((s.scenario, f"{r.rule} {r.tolerance}",
                         f"{number_text(r.baseline, r.unit)} [{range_text(r.baseline_range, r.unit)}]",
                         f"{number_text(r.new, r.unit)} [{range_text(r.new_range, r.unit)}]", limit, verdict))
        for t in s.targets:
            if t.target == "run":
                rows.append((s.scenario, "runs completed", "-",
                             f"{t.trials - t.missed_trials}/{t.trials}", f"{t.trials}/{t.trials}",
                             "MISSED" if t.failed else "met"))
                continue
            worst = number_text(t.worst, t.unit) if t.worst is not None else t.worst_status.replace("_", " ")
            cmp = "≤" if t.comparison == "le" else "≥"
            rows.append((s.scenario, f"target {t.target}", "-", f"worst {worst}",
                         f"{cmp} {number_text(t.target_value, t.unit)}", "MISSED" if t.failed else "met"))
    return rows


def _spread_rows(result: Any) -> list[tuple[str, str, str, str, str, str]]:
    from faultlab.gate import MEASURES, number_text

    rows = []
    for s in result.scenarios:
        for name, d in s.measures.items():
            if d.empty:
                continue
            unit = MEASURES[name].unit
            trials = ", ".join(number_text(v, unit) for v in d.values)
            rows.append((s.scenario, name, trials, number_text(d.stat("p50"), unit),
                         number_text(d.stat("p90"), unit), number_text(d.spread, unit)))
    return rows


def _print_result(result: Any, warnings: list[str]) -> None:
    checks = ("scenario", "check", "baseline [best .. worst]", "new [best .. worst]", "allowed", "result")
    spread = ("scenario", "measure", "trials", "p50", "p90", "spread")
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        console = Console()
        for title, header, rows in (("Measures over the trials", spread, _spread_rows(result)),
                                    ("Gate", checks, _rows(result))):
            table = Table(title=title)
            for column in header:
                table.add_column(column)
            for row in rows:
                style = "bold red" if row[-1] in ("REGRESSION", "MISSING", "MISSED") else None
                table.add_row(*(Text(cell) for cell in row), style=style)
            console.print(table)
    else:
        for header, rows in ((spread, _spread_rows(result)), (checks, _rows(result))):
            widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
            for row in [header, *rows]:
                print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
            print()
    for line in warnings:
        print(f"warning: {line}", file=sys.stderr)
    for s in result.scenarios:
        for line in s.warnings:
            print(f"warning: {s.scenario}: {line}", file=sys.stderr)
    for line in result.failures():
        print(f"FAIL {line}")

