"""``faultlab programme``: the programme's register over the reports folder."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from faultlab.errors import ExitCode, InputError, Problem

__all__ = ["register"]


def register(subparsers: Any) -> None:
    command = subparsers.add_parser(
        "programme",
        help="the programme's register: each failure test's last run, verdict, age, overdue state",
        description=(
            "Read every run under the reports folder and show, for each failure test of the programme, "
            "its last run, verdict, age and whether it is overdue; the coverage of the critical operations "
            "and fault classes; each operation's impact tolerance against the worst outage of the last "
            "drill; and the findings carried forward. Writes register.md, register.html and register.json "
            "beside the drill books (<reports>/<plan name>/)."
        ),
        epilog="example: faultlab programme programme.yaml --reports reports",
    )
    command.add_argument("programme", type=Path, nargs="?", default=Path("programme.yaml"),
                         help="programme file (default: programme.yaml)")
    command.add_argument("--reports", type=Path, default=Path("reports"), help="reports folder (default: reports)")
    command.add_argument("--out", type=Path, default=None,
                         help="where the register files go (default: <reports>/<plan name>/)")
    command.add_argument("--lang", action="append", choices=["en", "ja"], default=None,
                         help="language of the files; repeat for several (default: en)")
    command.add_argument("--now", default=None,
                         help="judge ages at this ISO time instead of now (like 2026-12-01T09:00:00+00:00)")
    command.set_defaults(handler=_programme)


def _now(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InputError([Problem("--now", 0, 0, "", f"not an ISO time like 2026-12-01T09:00:00+00:00: {text!r}")]) \
            from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _programme(args: argparse.Namespace) -> ExitCode:
    from faultlab.loader import load_programme
    from faultlab.register import programme_register
    from faultlab.report.register import write_register

    now = _now(args.now)
    programme = load_programme(args.programme)
    if not args.reports.is_dir():
        raise InputError([Problem(str(args.reports), 0, 0, "", "no such reports folder")])
    reg = programme_register(programme, args.reports, now)
    out = args.out or args.reports / Path(programme.plan).stem
    written = write_register(reg, out, langs=args.lang or ["en"])
    _print(reg)
    print(f"register: {', '.join(str(p) for p in written)}")
    return ExitCode.OK


def _rows(reg: Any) -> tuple[list[str], list[list[str]], list[str | None]]:
    from faultlab.report.messages import Catalogue
    from faultlab.report.register import label_of, verdict_word

    cat = Catalogue("en")
    header = ["failure test", "title", "last run", "verdict", "age", "overdue", "owner"]
    rows, styles = [], []
    for t in reg.tests:
        last = t.last.started.strftime("%Y-%m-%d %H:%M") if t.last and t.last.started else "—"
        age = "—" if t.age_days is None else f"{t.age_days:.1f} d"
        title = label_of(t.test.title, "en") or "(not in the plan yet)"
        rows.append([t.test.id, title[:60], last, verdict_word(t.verdict, cat),
                     age, "OVERDUE" if t.overdue else "", t.test.owner or "to be assigned"])
        styles.append("bold red" if t.verdict in ("failed", "inconclusive") else "yellow" if t.overdue else None)
    return header, rows, styles


def _tolerance_rows(reg: Any) -> list[list[str]]:
    from faultlab.report.register import label_of

    rows = []
    for c in reg.tolerances:
        label = label_of(c.label, "en") or c.operation
        worst = "—" if c.worst_s is None else f"{'≥ ' if c.at_least else ''}{c.worst_s:.3f} s"
        within = "—" if c.within is None else "yes" if c.within else "NO"
        rows.append([label, f"{c.tolerance_s:g} s", worst, c.worst_test or "—", within])
    return rows


def _print(reg: Any) -> None:
    from faultlab.report.register import label_of

    counts = reg.counts()
    title = label_of(reg.title, "en")
    summary = (f"{title}: {counts['tests']} failure tests, {counts['passed']} passed at their last run, "
               f"{counts['failed']} failed, {counts['inconclusive']} inconclusive, {counts['never_run']} never run; "
               f"{counts['overdue']} overdue (period {reg.period_days:g} days); {counts['carried']} findings carried "
               f"forward")
    header, rows, styles = _rows(reg)
    tolerance_header = ["critical operation", "impact tolerance", "worst in the last drill", "by", "within"]
    tolerance_rows = _tolerance_rows(reg)
    carried = [[f.run.test_id, f.run.run_id, f.finding.id, f.finding.severity, f.finding.kind,
                f.owner or "to be assigned", f.status.replace("_", " ")] for f in reg.findings if f.carried]
    finding_header = ["failure test", "run", "id", "severity", "kind", "owner", "status"]
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        console = Console()
        console.print(Text(summary, style="bold"))
        for title, head, body, style in (("Failure tests", header, rows, styles),
                                         ("Impact tolerances (last drill)", tolerance_header, tolerance_rows, None),
                                         ("Findings carried forward", finding_header, carried, None)):
            table = Table(title=title)
            for column in head:
                table.add_column(column)
            for i, row in enumerate(body):
                table.add_row(*(Text(cell) for cell in row), style=style[i] if style else None)
            console.print(table)
        return
    print(summary)
    for head, body in ((header, rows), (tolerance_header, tolerance_rows), (finding_header, carried)):
        if not body:
            continue
        widths = [max(len(str(r[i])) for r in [head, *body]) for i in range(len(head))]
        for row in [head, *body]:
            print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        print()
