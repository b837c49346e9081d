"""``faultlab report RUN_DIR`` and ``faultlab verify RUN_DIR``: offline, from the saved run alone."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from faultlab.errors import ExitCode, InputError, Problem

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
    from faultlab.report import write_reports
    from faultlab.report.manifest import file_sha256

    langs = _languages(args.lang)
    plan = _plan_info(args.plan)
    analysis = analyse(args.run_dir)
    files = write_reports(args.run_dir, langs=langs, plan_info=plan, analysis=analysis)
    for md, html in files.reports.values():
        print(f"wrote {md}")
        print(f"wrote {html}")
    for path in (files.result, files.junit, files.timeseries, files.manifest):
        print(f"wrote {path}")
    print(f"manifest SHA-256 (keep it apart from the run to prove the files unchanged): {file_sha256(files.manifest)}")
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
    from faultlab.report.manifest import MANIFEST_FILE, file_sha256, verify_manifest

    root = Path(args.run_dir)
    if not root.is_dir():
        raise InputError([Problem(str(root), 0, 0, "", "not a directory")])
    if not (root / MANIFEST_FILE).is_file():
        raise InputError([Problem(str(root), 0, 0, "", f"no {MANIFEST_FILE} here: run `faultlab report` first")])
    mismatches = verify_manifest(root)
    for mismatch in mismatches:
        print(f"FAILED {mismatch}")
    if mismatches:
        print(f"{root}: {len(mismatches)} file(s) do not match {MANIFEST_FILE}")
        return ExitCode.TARGET_MISSED
    print(f"{root}: every file matches {MANIFEST_FILE} (SHA-256 {file_sha256(root / MANIFEST_FILE)})")
    return ExitCode.OK


def register(subparsers: Any) -> None:
    """Add the ``report`` and ``verify`` commands."""
    report = subparsers.add_parser(
        "report",
        help="(re)compute the analysis and write the reports of a saved run",
        description=(
            "Recompute every measure from RUN_DIR's journal and write report.md, report.html, "
            "result.json, junit.xml, timeseries.csv and manifest.json into it. Needs no running "
            "stack. Exit 0 when every target was met, 1 when one was missed or the run did not complete."
        ),
    )
    report.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (holds journal.jsonl)")
    report.add_argument("--lang", action="append", metavar="LANG",
                        help="report language: en (default) or ja; repeat or comma-separate for several, "
                             "the first becomes report.md/report.html")
    report.add_argument("--plan", metavar="PLAN", help="the drill plan (YAML): participants, approvals, scope")
    report.set_defaults(handler=_report)

    verify = subparsers.add_parser(
        "verify",
        help="check every file of a run directory against its manifest.json",
        description="Exit 0 when every byte matches; 1 naming each changed, missing or extra file.",
    )
    verify.add_argument("run_dir", metavar="RUN_DIR", help="a run (or drill-plan) directory with manifest.json")
    verify.set_defaults(handler=_verify)
