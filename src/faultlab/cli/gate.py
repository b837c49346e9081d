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
import sys
from pathlib import Path
from typing import Any

from faultlab.engine.gate import DEFAULT_TRIALS
from faultlab.errors import ExitCode, InputError, Problem

__all__ = ["register", "DEFAULT_TRIALS"]


def register(subparsers: Any) -> None:
    """Add ``gate`` and ``baseline update`` to the ``faultlab`` command."""
    from faultlab.cli.keys import add_sign_with

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
    add_sign_with(gate)
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
    from faultlab.cli.run import add_runtime_option

    add_runtime_option(parser)
    parser.add_argument("--trials", type=int, default=None,
                        help=f"trials per scenario (default: the plan's `trials:`, else {DEFAULT_TRIALS})")
    parser.add_argument("--reports", type=Path, default=Path("reports"),
                        help="where run directories go (default: reports)")
    parser.add_argument("--state-dir", type=Path, default=None, help=argparse.SUPPRESS)


def _gate(args: argparse.Namespace) -> ExitCode:
    from faultlab.cli.evidence import print_seal
    from faultlab.cli.live import progress_observer
    from faultlab.engine.gate import run_gate
    from faultlab.evidence.seal import Sealer
    from faultlab.loader import load_plan
    from faultlab.report.gate import failure_lines

    plan = load_plan(args.plan, runtime=args.runtime)
    sealer = Sealer.choose(args.sign_with)
    run = run_gate(plan, baseline=args.baseline, trials=args.trials, reports_dir=args.reports,
                   observers=[progress_observer()], state_dir=args.state_dir, sealer=sealer)
    _print_result(run.result)
    for line in run.warnings:
        print(f"warning: {line}", file=sys.stderr)
    for s in run.result.scenarios:
        for line in s.warnings:
            print(f"warning: {s.scenario}: {line}", file=sys.stderr)
    for line in failure_lines(run.result):
        print(f"FAIL {line}")
    print(f"gate: {'PASSED' if run.result.passed else 'FAILED'} in {run.result.info['duration_s']:.0f} s; "
          f"{run.gate_dir / 'gate.json'}, {run.gate_dir / 'junit.xml'}")
    print_seal(run.seal, "gate")
    return ExitCode.OK if run.result.passed else ExitCode.TARGET_MISSED


def _baseline_update(args: argparse.Namespace) -> ExitCode:
    from faultlab.cli.live import progress_observer
    from faultlab.engine.gate import measure_baseline
    from faultlab.gate import MEASURES
    from faultlab.loader import display_path, load_plan
    from faultlab.report.gate import number_text

    plan = load_plan(args.plan, runtime=args.runtime)
    out = Path(args.out or plan.baseline or f"reports/baselines/{Path(str(plan.source)).stem}.json")
    if out.is_dir():
        raise InputError([Problem(str(out), 0, 0, "", "is a directory; --out names the baseline file to write")])
    run = measure_baseline(plan, trials=args.trials, reports_dir=args.reports, observers=[progress_observer()],
                           state_dir=args.state_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(run.body, indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")
    for scenario_id, measures in run.measures.items():
        for name in ("rto", "mttd", "impact", "customer_impact"):
            unit = MEASURES[name].unit
            print(f"  {scenario_id:<14} {name:<16} "
                  f"trials {', '.join(number_text(v, unit) for v in measures[name].values) or '-'}; "
                  f"spread {number_text(measures[name].spread, unit)}")
    for line in run.missed:
        print(f"  MISSED {line}", file=sys.stderr)
    print(f"baseline written: {display_path(out)} ({run.body['trials']} trials per scenario; "
          f"runs under {run.run_root})")
    if run.missed:
        print("faultlab: the baseline's runs missed targets; the baseline was written, but check it",
              file=sys.stderr)
        return ExitCode.TARGET_MISSED
    return ExitCode.OK


def _print_result(result: Any) -> None:
    from faultlab.report.gate import CHECK_HEADER, FAILED_RESULTS, SPREAD_HEADER, check_rows, spread_rows

    tables = (("Measures over the trials", SPREAD_HEADER, spread_rows(result)),
              ("Gate", CHECK_HEADER, check_rows(result)))
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        console = Console()
        for title, header, rows in tables:
            table = Table(title=title)
            for column in header:
                table.add_column(column)
            for row in rows:
                style = "bold red" if row[-1] in FAILED_RESULTS else None
                table.add_row(*(Text(cell) for cell in row), style=style)
            console.print(table)
        return
    for _, header, rows in tables:
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        print()
