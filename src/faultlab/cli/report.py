"""``faultlab report RUN_DIR`` and ``faultlab verify DIR``: offline, from the saved package alone."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from faultlab.errors import EvidenceTampered, ExitCode, InputError, Problem

__all__ = ["register"]


def _languages(values: list[str] | None) -> list[str]:
    from faultlab.report.messages import LANGUAGES

    langs = [part.strip() for value in values or ["en"] for part in value.split(",") if part.strip()]
    unknown = [lang for lang in langs if lang not in LANGUAGES]
    if unknown:
        raise InputError(f"unknown report language(s) {', '.join(unknown)}; known: {', '.join(LANGUAGES)}")
    return langs


def _plan_info(path: str | None) -> dict[str, Any] | None:
    if path is None:
        return None
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError([Problem(path, 0, 0, "", f"cannot read the drill plan: {exc.strerror}")]) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise InputError([Problem(path, line, column, "", f"not valid YAML: {exc}")]) from exc
    if not isinstance(data, dict):
        raise InputError([Problem(path, 1, 1, "", "a drill plan must be a mapping")])
    return data


def _report(args: argparse.Namespace) -> ExitCode:
    from faultlab.analysis import analyse
    from faultlab.cli.evidence import print_seal
    from faultlab.evidence.seal import Sealer
    from faultlab.report import write_reports
    from faultlab.report.writer import refuse_tampered

    langs = _languages(args.lang)
    plan = _plan_info(args.plan)
    sealer = Sealer.choose(args.sign_with)
    try:
        refuse_tampered(Path(args.run_dir))
    except EvidenceTampered as exc:
        print(exc)
        return ExitCode.TARGET_MISSED
    analysis = analyse(args.run_dir)
    files = write_reports(args.run_dir, langs=langs, plan_info=plan, analysis=analysis, sealer=sealer)
    for md, html in files.reports.values():
        print(f"wrote {md}")
        print(f"wrote {html}")
    for path in (files.result, files.junit, files.timeseries, files.manifest):
        print(f"wrote {path}")
    print_seal(files.seal)
    missed = [v for v in analysis.verdicts if not v.met]
    if analysis.crashed:
        print("RUN CRASHED: the journal has no end record")
    elif analysis.status != "completed":
        print(f"RUN DID NOT COMPLETE: status {analysis.status}")
    for v in missed:
        print(f"MISSED {v.target}")
    print(f"{len(analysis.verdicts) - len(missed)} of {len(analysis.verdicts)} targets met")
    return ExitCode.OK if analysis.passed else ExitCode.TARGET_MISSED


def _verify(args: argparse.Namespace) -> ExitCode:
    from faultlab.evidence.keys import load_public_key
    from faultlab.evidence.verify import Failure, recompute, verify_package
    from faultlab.report.manifest import MANIFEST_FILE

    root = Path(args.run_dir)
    if not root.is_dir():
        raise InputError([Problem(str(root), 0, 0, "", "not a directory")])
    if not (root / MANIFEST_FILE).is_file():
        raise InputError([Problem(str(root), 0, 0, "", f"no {MANIFEST_FILE} here: run `faultlab report` first")])
    trust = [load_public_key(spec) for spec in args.trust or []]
    found = verify_package(root, trust)
    failures = list(found.failures)
    notes = list(found.notes)
    if args.recompute:
        differences, recompute_notes = recompute(root)
        failures += [Failure(f.where, f"recomputed: {f.what}") for f in differences]
        notes += recompute_notes
    for failure in failures:
        print(f"FAILED {failure}")
    for note in notes:
        print(f"note: {note}")
    packages = f"{found.packages} package(s)" if found.packages > 1 else f"the {found.kind} package"
    if failures:
        print(f"{root}: {len(failures)} problem(s): the evidence does not hold as sealed")
        return ExitCode.TARGET_MISSED
    print(f"{root}: {packages} intact: every file matches {MANIFEST_FILE} (SHA-256 {found.manifest_sha256}), "
          "every journal chain holds from its pre-registration to its sealed head"
          + ("; every figure and report recomputed from the raw files agrees"
             if args.recompute and found.kind != "gate" else ""))
    if trust and found.signer is not None:
        print(f"signed by {found.signer.short()}, a trusted key: integrity and authorship checked")
    else:
        who = f" (the seal names {found.signer.short()})" if found.signer is not None else ""
        print(f"NOT CHECKED: who sealed it{who}. Only the integrity of the package was checked, not its "
              "authorship: pass --trust KEY.pub with the drill lead's public key")
    return ExitCode.OK


def register(subparsers: Any) -> None:
    """Add the ``report`` and ``verify`` commands."""
    from faultlab.cli.keys import add_sign_with

    report = subparsers.add_parser(
        "report",
        help="(re)compute the analysis and write the reports of a saved run",
        description=(
            "Recompute every measure from RUN_DIR's journal and write report.md, report.html, "
            "result.json, junit.xml, timeseries.csv and manifest.json into it, and seal it "
            "(manifest.sig, a register line). Needs no running stack. The targets are the "
            "pre-registered ones (inputs/); a run whose journal was changed after it was written "
            "is reported as tampered and not re-judged. Exit 0 when every target was met, 1 when "
            "one was missed, the run did not complete or its evidence was tampered with."
        ),
    )
    report.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (holds journal.jsonl)")
    report.add_argument("--lang", action="append", metavar="LANG",
                        help="report language: en (default) or ja; repeat or comma-separate for several, "
                             "the first becomes report.md/report.html")
    report.add_argument("--plan", metavar="PLAN", help="the drill plan (YAML): participants, approvals, scope")
    add_sign_with(report)
    report.set_defaults(handler=_report)

    verify = subparsers.add_parser(
        "verify",
        help="check a run's or drill plan's evidence: files, seal, journal chain, pre-registration",
        description=(
            "Check every file against manifest.json, every nested run's manifest against the plan's "
            "record of it, the seal (manifest.sig) against the trusted keys (a signature by any other "
            "key fails), every journal's hash chain and the pre-registered inputs and targets. Without "
            "--trust only integrity is checked, not authorship, and the output says so. --recompute "
            "re-derives every figure from the raw files (the analysis, and the integrity check on "
            "state/ through the stack's plugin) and regenerates the reports, naming the first that "
            "differs. Exit 0 when everything holds; 1 naming what does not; 2 for bad input."
        ),
        epilog="example: faultlab verify reports/smoke/20261130T094257 --trust drill-lead.pub --recompute",
    )
    verify.add_argument("run_dir", metavar="RUN_OR_PLAN_DIR", help="a run (or drill-plan, or gate) directory "
                                                                   "with manifest.json")
    verify.add_argument("--trust", nargs="+", action="extend", metavar="PUBKEY", default=None,
                        help="public keys (NAME.pub files, or names of keys in the key folder) whose signature "
                             "is accepted")
    verify.add_argument("--recompute", action="store_true",
                        help="also re-derive every figure from the raw files and compare with the reports")
    verify.set_defaults(handler=_verify)
