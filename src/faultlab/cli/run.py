"""``faultlab run``, ``drill``, ``stack up`` and ``cleanup``: the commands that touch a stack."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from faultlab.errors import ExitCode

__all__ = ["register"]


def register(subparsers: Any) -> None:
    run = subparsers.add_parser(
        "run",
        help="run one scenario end to end and write its reports",
        description=(
            "Bring the scenario's stack up with its runtime (local processes and embedded PostgreSQL "
            "by default; containers with --runtime docker), drive load, "
            "inject the faults on the timeline, measure detection, recovery and data integrity, "
            "always revert, and write the run directory with its reports."
        ),
        epilog="example: faultlab run scenarios/ft-01-db-freeze.yaml",
    )
    run.add_argument("scenario", type=Path, help="scenario file")
    _common(run)
    run.set_defaults(handler=_run)

    drill = subparsers.add_parser(
        "drill",
        help="run every scenario of a drill plan and write its book",
        description="Run each scenario of a drill plan (trials times) and write an index over all runs.",
        epilog="example: faultlab drill drills/smoke.yaml",
    )
    drill.add_argument("plan", type=Path, help="drill plan file")
    _common(drill)
    drill.set_defaults(handler=_drill)

    stack = subparsers.add_parser("stack", help="work with a stack without a scenario")
    stack_sub = stack.add_subparsers(dest="stack_command", metavar="SUBCOMMAND", required=True)
    up = stack_sub.add_parser(
        "up",
        help="bring a stack up and print its addresses until Ctrl-C",
        description=(
            "Bring a stack up with the runtime it names (local by default), print every address, "
            "wait for Ctrl-C, tear down."
        ),
        epilog="example: faultlab stack up examples/payments/stack.yaml",
    )
    up.add_argument("stack", type=Path, help="stack file")
    up.add_argument("--run-dir", type=Path, default=None,
                    help="where logs go (default: a new dir under reports/stacks)")
    add_runtime_option(up)
    up.set_defaults(handler=_stack_up)

    cleanup = subparsers.add_parser(
        "cleanup",
        help="revert and remove what killed runs left behind",
        description=(
            "Find the ledgers of runs whose harness is gone and revert or remove everything they "
            "recorded: stopped processes are continued then stopped, process groups killed, "
            "lock-holding sessions terminated, settings undone, data directories removed."
        ),
    )
    cleanup.add_argument("--force", action="store_true", help="also clean runs whose harness still runs")
    cleanup.add_argument("--state-dir", type=Path, default=None,
                         help="ledger folder (default: $FAULTLAB_STATE_DIR or ~/.local/state/faultlab)")
    cleanup.set_defaults(handler=_cleanup)


def add_runtime_option(parser: argparse.ArgumentParser) -> None:
    """``--runtime NAME``: run the stack with this runtime whatever its file's ``runtime:`` says."""
    parser.add_argument("--runtime", metavar="NAME", default=None,
                        help="the runtime that brings the stack up (local, docker, ...), instead of the "
                             "stack file's `runtime:`; `faultlab kinds` lists them")


def _common(parser: argparse.ArgumentParser) -> None:
    add_runtime_option(parser)
    parser.add_argument("--reports", type=Path, default=Path("reports"),
                        help="where run directories go (default: reports)")
    parser.add_argument("--lang", action="append", choices=["en", "ja"], default=None,
                        help="report language; repeat for several (default: the plan's, else en)")
    parser.add_argument("--state-dir", type=Path, default=None, help=argparse.SUPPRESS)


_DOCUMENTS = {
    "stack": ("a stack file", "bring it up with `faultlab stack up {path}`"),
    "scenario": ("a scenario", "run it with `faultlab run {path}`"),
    "plan": ("a drill plan", "run it with `faultlab drill {path}`"),
}


def _expect_kind(path: Path, wanted: str) -> None:
    """Refuse, with the right command, a document of another kind than the command takes
    (its own problems, if any, are the loader's to report)."""
    from faultlab.errors import InputError, Problem
    from faultlab.loader import document_kind, parse_yaml

    try:
        parsed = parse_yaml(path.read_bytes(), str(path))
    except (OSError, InputError):
        return
    kind = document_kind(parsed.data, path) if isinstance(parsed.data, dict) else None
    if kind in _DOCUMENTS and kind != wanted:
        found, hint = _DOCUMENTS[kind]
        raise InputError([Problem(str(path), 0, 0, "", f"this is {found}, not {_DOCUMENTS[wanted][0]}; "
                                                        + hint.format(path=path))])


def _print_verdicts(analysis: Any) -> None:
    from faultlab.report.junit import verdict_message
    from faultlab.report.messages import Catalogue

    cat = Catalogue("en", analysis.declaration)
    findings = f"; {len(analysis.findings)} finding(s)" if analysis.findings else ""
    print(f"result: {analysis.outcome.upper()}{findings}")
    for verdict in analysis.verdicts:
        mark = "met   " if verdict.outcome == "met" else "MISSED"
        print(f"  {mark} {verdict_message(verdict, cat)}")


def _run(args: argparse.Namespace) -> ExitCode:
    from faultlab.cli.live import progress_observer
    from faultlab.engine.plan import run_trial
    from faultlab.loader import load_scenario

    _expect_kind(args.scenario, "scenario")
    scenario = load_scenario(args.scenario, runtime=args.runtime)
    trial = run_trial(scenario, reports_dir=args.reports, langs=args.lang or ["en"],
                      observers=[progress_observer()], state_dir=args.state_dir)
    _print_verdicts(trial.analysis)
    print(f"report: {trial.run_dir / 'report.html'}")
    return ExitCode.OK if trial.analysis.passed else ExitCode.TARGET_MISSED


def _drill(args: argparse.Namespace) -> ExitCode:
    from faultlab.cli.live import progress_observer
    from faultlab.engine.plan import run_plan
    from faultlab.loader import load_plan

    _expect_kind(args.plan, "plan")
    plan = load_plan(args.plan, runtime=args.runtime)
    result = run_plan(plan, reports_dir=args.reports, langs=args.lang, observers=[progress_observer()],
                      state_dir=args.state_dir)
    for analysis in result.analyses:
        print(f"{analysis.outcome.upper():<12}  {analysis.scenario.get('id')}  {analysis.run_dir}")
        _print_verdicts(analysis)
    print(f"drill finished in {result.duration_s:.0f} s; book: {result.book.index_html}")
    return ExitCode.OK if result.passed else ExitCode.TARGET_MISSED


def _stack_up(args: argparse.Namespace) -> ExitCode:
    from faultlab.engine.run import new_run_id, sigterm_as_interrupt
    from faultlab.loader import load_stack
    from faultlab.registry import runtimes
    from faultlab.runtime.ledger import Ledger

    _expect_kind(args.stack, "stack")
    stack = load_stack(args.stack, runtime=args.runtime)
    run_id = new_run_id(stack.name)
    run_dir = args.run_dir or Path("reports") / "stacks" / run_id
    runtime = runtimes.get(stack.runtime)()
    ledger = Ledger(run_id)
    try:
        with sigterm_as_interrupt(), runtime.bring_up(stack, run_dir, ledger=ledger) as handle:
            print(f"stack {stack.name} is up with the {stack.runtime} runtime (logs in {run_dir}); "
                  "Ctrl-C to tear it down")
            print(f"  fault proxy API  {handle.proxy_api}")
            for name, service in stack.services.items():
                extra = f"  ({handle.dsn(name)})" if service.postgres is not None else ""
                where = handle.address(name) if service.has_port else "(no port)"
                print(f"  service {name:<12} {where}{extra}")
            for name, link in stack.links.items():
                print(f"  link    {name:<12} {handle.link_address(name)} -> {link.to}", flush=True)
            while True:
                time.sleep(1)
    except KeyboardInterrupt:
        print("tearing down")
    finally:
        ledger.close()
    return ExitCode.OK


def _cleanup(args: argparse.Namespace) -> ExitCode:
    from faultlab.runtime.ledger import cleanup

    def show(action: Any) -> None:
        state = "ok  " if action.ok else "FAIL"
        print(f"  {state} {action.run_id} {action.kind}: {action.what} {action.detail}".rstrip())

    report = cleanup(args.state_dir, force=args.force, on_action=show)
    print(f"cleaned {len(report.cleaned_runs)} run(s); skipped {len(report.skipped_runs)} with a live harness")
    return ExitCode.OK
