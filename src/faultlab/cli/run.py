"""``faultlab run``, ``drill``, ``stack up`` and ``cleanup``: the commands that touch a stack."""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping
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
    from faultlab.cli.keys import add_sign_with

    add_runtime_option(parser)
    parser.add_argument("--reports", type=Path, default=Path("reports"),
                        help="where run directories go (default: reports)")
    add_sign_with(parser)
    parser.add_argument("--lang", action="append", choices=["en", "ja"], default=None,
                        help="report language; repeat for several (default: the plan's, else en)")
    parser.add_argument("--state-dir", type=Path, default=None, help=argparse.SUPPRESS)
    people = parser.add_argument_group("people (runbooks and decision rules)")
    people.add_argument("--operator-script", type=Path, default=None, metavar="FILE",
                        help="scripted people answer the runbook's and the rules' prompts (tests, CI)")
    people.add_argument("--gameday", action="store_true",
                        help="game-day mode: people start the runbook's actions themselves, at the operator console")
    people.add_argument("--console-port", type=int, default=8700, metavar="PORT",
                        help="the operator console's port on 127.0.0.1 in game-day mode (default 8700; 0: any free)")


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
    from faultlab.cli.evidence import print_seal
    from faultlab.cli.live import progress_observer
    from faultlab.engine.plan import run_trial
    from faultlab.evidence.seal import Sealer
    from faultlab.loader import load_scenario

    _expect_kind(args.scenario, "scenario")
    scenario = load_scenario(args.scenario, runtime=args.runtime)
    crew = people_for(args, [scenario], [])
    sealer = Sealer.choose(args.sign_with)
    try:
        trial = run_trial(scenario, reports_dir=args.reports, langs=args.lang or ["en"],
                          observers=[progress_observer()], state_dir=args.state_dir, sealer=sealer,
                          crew=crew(scenario))
    finally:
        crew.close()
    _print_verdicts(trial.analysis)
    print(f"report: {trial.run_dir / 'report.html'}")
    print_seal(trial.seal)
    return ExitCode.OK if trial.analysis.passed else ExitCode.TARGET_MISSED


def _drill(args: argparse.Namespace) -> ExitCode:
    from faultlab.cli.evidence import print_seal
    from faultlab.cli.live import progress_observer
    from faultlab.engine.plan import run_plan
    from faultlab.evidence.seal import Sealer
    from faultlab.loader import load_plan

    _expect_kind(args.plan, "plan")
    plan = load_plan(args.plan, runtime=args.runtime)
    check_approvals(plan)
    crew = people_for(args, plan.resolved_scenarios, [p.person() for p in plan.participants])
    sealer = Sealer.choose(args.sign_with)
    try:
        result = run_plan(plan, reports_dir=args.reports, langs=args.lang, observers=[progress_observer()],
                          state_dir=args.state_dir, sealer=sealer, crew=crew)
    finally:
        crew.close()
    for analysis in result.analyses:
        print(f"{analysis.outcome.upper():<12}  {analysis.scenario.get('id')}  {analysis.run_dir}")
        _print_verdicts(analysis)
    print(f"drill finished in {result.duration_s:.0f} s; book: {result.book.index_html}")
    print_seal(result.seal, "drill plan")
    return ExitCode.OK if result.passed else ExitCode.TARGET_MISSED


def people_for(args: argparse.Namespace, scenarios: list[Any], planned: list[dict[str, str]]) -> Any:
    """``crew(scenario)``: who answers for the people of each run, from ``--operator-script``,
    ``--gameday`` or the terminal; refused before anything starts when a runbook or a rule
    needs people and nobody can answer (or the script names steps no runbook has)."""
    import sys

    from faultlab.errors import InputError, Problem
    from faultlab.loader.runbook import check_script_against, load_operator_script_file
    from faultlab.programme.run import needs_people

    script = None
    if args.operator_script is not None:
        script, doc, problems = load_operator_script_file(args.operator_script.resolve())
        if doc is not None and script is not None:
            steps = [s.id for sc in scenarios if sc.runbook is not None for s in sc.runbook.runbook.steps]
            rules = [r.id for sc in scenarios for r in sc.decisions]
            problems = check_script_against(doc, steps, rules)
        if problems:
            raise InputError(problems)
    needing = [sc.id for sc in scenarios if needs_people(sc)]
    if needing and script is None and not args.gameday and not sys.stdin.isatty():
        raise InputError([Problem(str(getattr(args, "plan", None) or getattr(args, "scenario", "")), 0, 0, "",
                                  f"{', '.join(needing)} need people (manual or notify steps, a second person, "
                                  "a decision to confirm): give --operator-script FILE, or --gameday for the "
                                  "operator console")])
    console = None
    if args.gameday:
        from faultlab.programme.console import Console

        console = Console(port=args.console_port)
        try:
            console.serve()
        except OSError as exc:
            raise InputError([Problem("--console-port", 0, 0, "", f"the operator console cannot listen on "
                                      f"127.0.0.1:{args.console_port}: {exc.strerror}; choose another port "
                                      "(0: any free one)")]) from exc
        print(f"operator console: {console.url}", flush=True)
    people = planned or ([p.person() for p in script.participants] if script is not None else [])
    return _Crews(script, console, people, args.gameday)


class _Crews:
    """``crews(scenario)``: a new crew for each run; ``close()`` stops the console after the last."""

    def __init__(self, script: Any, console: Any, people: list[dict[str, str]], gameday: bool):
        self.script, self.console, self.people, self.gameday = script, console, people, gameday

    def close(self) -> None:
        if self.console is not None:
            self.console.close()

    def __call__(self, scenario: Any) -> Any:
        import sys

        from faultlab.programme.operators import ScriptedOperator, TerminalOperator
        from faultlab.programme.run import Crew, needs_people

        script, console, people = self.script, self.console, self.people

        operators: list[Any] = []
        mode = "automatic"
        if script is not None:
            operators.append(ScriptedOperator(script, gameday=self.gameday))
            mode = "scripted"
        if console is not None:
            operators.append(console.for_run())
            mode = "gameday" if script is None else "gameday, scripted"
        elif script is None and needs_people(scenario) and sys.stdin.isatty():
            operators.append(TerminalOperator())
            mode = "terminal"
        known: list[Mapping[str, str]] = list(people)
        if script is not None:
            known += [p.person() for p in script.participants if p.person()["name"] not in {q["name"] for q in people}]
        return Crew(participants=known, operators=operators, gameday=self.gameday, mode=mode)


def check_approvals(plan: Any) -> None:
    """Refuse to start a plan whose required approvals are missing, expired, made by its
    requester or made for other bytes (InputError naming what changed)."""
    if plan.require_approvals:
        from faultlab.programme.approvals import verify_approvals

        verify_approvals(plan)


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
