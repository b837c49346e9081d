"""The programme's register in words: md, html and json beside the drill books, and the view
of one drill that its book shows.

:func:`register_sections` builds the register's sections in one language (the failure tests,
coverage, impact tolerances, findings carried forward); :func:`drill_view` the part a drill's
book shows (what passed and was missed in that drill, what is overdue, the findings carried
forward); :func:`write_register` writes ``register.md`` / ``register.html`` (one per language)
and ``register.json``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from faultlab.model.types import text_of
from faultlab.plugin.declaration import Text
from faultlab.register import CarriedFinding, Register, TestStatus
from faultlab.report.document import Document, Section, finding_text
from faultlab.report.format import seconds_text
from faultlab.report.messages import Catalogue
from faultlab.report.writer import render_html, render_markdown

__all__ = ["register_sections", "drill_view", "register_document", "write_register", "verdict_word", "label_of",
           "REGISTER_FILES"]

REGISTER_FILES = ("register.md", "register.html", "register.json")
"""What :func:`write_register` writes (``register.<lang>.md`` / ``.html`` for a second language)."""


def _date(moment: Any) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment is not None else "—"


def verdict_word(verdict: str, cat: Catalogue) -> str:
    """``passed``, ``failed``, ``inconclusive`` or ``never_run`` in words."""
    return cat(f"reg.verdict.{verdict}")


def label_of(value: Any, lang: str) -> str:
    """A text as written (a string, ``{en, ja}`` or a localised model) in ``lang``."""
    if isinstance(value, str):
        return value
    if hasattr(value, "model_dump"):
        return text_of(value, lang) or str(value)
    return Text.of(value, Text(str(value))).get(lang)


def _link(base: Path | None, run_dir: Path) -> str:
    if base is None:
        return str(run_dir)
    return Path(os.path.relpath(run_dir, base)).as_posix()


def _tests_table(register: Register, cat: Catalogue, base: Path | None) -> dict[str, Any]:
    rows = []
    for t in register.tests:
        last = t.last
        rows.append([
            t.test.id, label_of(t.test.title, lang=cat.lang) or cat("reg.not_in_plan"),
            [{"text": _date(last.started), "href": _link(base, last.run_dir / "report.html")}] if last else "—",
            verdict_word(t.verdict, cat),
            "—" if t.age_days is None else cat("reg.days", days=f"{t.age_days:.1f}"),
            cat("reg.yes") if t.overdue else cat("reg.no"),
            t.test.owner or cat("owner.tbd"),
        ])
    return {"kind": "table", "headers": [cat(f"reg.col.{k}") for k in
                                         ("test", "title", "last", "verdict", "age", "overdue", "owner")],
            "rows": rows, "ok": [t.verdict == "passed" and not t.overdue for t in register.tests]}


def _coverage(register: Register, cat: Catalogue) -> list[dict[str, Any]]:
    operations = list(register.operations)
    classes = register.classes
    headers = [cat("reg.col.test"), *(label_of(register.operations[o].label, cat.lang) for o in operations),
               *(cat(f"reg.class.{c}") for c in classes)]
    rows = [[t.test.id, *("●" if o in t.test.operations else "" for o in operations),
             *("●" if c in t.test.classes else "" for c in classes)] for t in register.tests]
    totals = [cat("reg.covered_by"), *(str(sum(o in t.test.operations for t in register.tests)) for o in operations),
              *(str(sum(c in t.test.classes for t in register.tests)) for c in classes)]
    gaps = [label_of(register.operations[o].label, cat.lang) for o in operations
            if not any(o in t.test.operations for t in register.tests)]
    blocks: list[dict[str, Any]] = [{"kind": "p", "text": cat("reg.coverage_intro")},
                                    {"kind": "table", "headers": headers, "rows": [*rows, totals]}]
    if gaps:
        blocks.append({"kind": "p", "text": cat("reg.coverage_gap", operations=", ".join(gaps)), "ok": False})
    return blocks


def _tolerances(register: Register, cat: Catalogue) -> list[dict[str, Any]]:
    if register.last_drill is None:
        return [{"kind": "p", "text": cat("reg.no_drill")}]
    rows, oks = [], []
    for c in register.tolerances:
        worst = "—" if c.worst_s is None else ("≥ " if c.at_least else "") + seconds_text(c.worst_s, cat)
        within = "—" if c.within is None else cat("reg.yes") if c.within else cat("reg.no")
        rows.append([label_of(c.label, cat.lang), cat(f"reg.measure.{c.measure}"), seconds_text(c.tolerance_s, cat),
                     worst, c.worst_test or "—", within])
        oks.append(c.within is not False)
    return [{"kind": "p", "text": cat("reg.tolerance_intro", drill=register.last_drill.name)},
            {"kind": "table", "headers": [cat(f"reg.col.{k}") for k in
                                          ("operation", "measure", "tolerance", "worst", "worst_test", "within")],
             "rows": rows, "ok": oks}]


def _finding_rows(findings: Sequence[CarriedFinding], cat: Catalogue) -> list[list[Any]]:
    rows = []
    for f in findings:
        words = Catalogue(cat.lang, f.run.analysis.declaration)
        retest = "—"
        if f.retested_by is not None:
            retest = cat("reg.retested", run=f.retested_by.run_id, verdict=verdict_word(f.retested_by.outcome, cat))
        rows.append([f.run.test_id, f.run.run_id, _date(f.run.started), f.finding.id,
                     words(f"sev.{f.finding.severity}"), finding_text(f.finding, f.run.analysis, words),
                     f.owner or cat("owner.tbd"), cat(f"reg.status.{f.status}"), retest])
    return rows


def _findings(findings: Sequence[CarriedFinding], cat: Catalogue, empty_key: str) -> list[dict[str, Any]]:
    if not findings:
        return [{"kind": "p", "text": cat(empty_key)}]
    return [{"kind": "table", "headers": [cat(f"reg.col.{k}") for k in
                                          ("test", "run", "date", "id", "severity", "finding", "owner", "status",
                                           "retest")],
             "rows": _finding_rows(findings, cat), "ok": [not f.carried for f in findings]}]


def _counts_text(register: Register, cat: Catalogue) -> str:
    return cat("reg.totals", period=f"{register.period_days:g}", **register.counts())


def register_sections(register: Register, lang: str, base: Path | None = None, first: int = 1) -> list[Section]:
    """The register's sections in ``lang``, numbered from ``first`` (links relative to ``base``)."""
    cat = Catalogue(lang)
    counts = register.counts()
    n = first
    carried = [f for f in register.findings if f.carried]
    closed = [f for f in register.findings if not f.carried]
    sections = [
        Section("register", f"{n}. {cat('reg.sec.tests')}", [
            {"kind": "p", "text": _counts_text(register, cat), "strong": True,
             "ok": counts["overdue"] == 0 and counts["carried"] == 0 and counts["passed"] == counts["tests"]},
            _tests_table(register, cat, base)]),
        Section("coverage", f"{n + 1}. {cat('reg.sec.coverage')}", _coverage(register, cat)),
        Section("tolerance", f"{n + 2}. {cat('reg.sec.tolerance')}", _tolerances(register, cat)),
        Section("carried", f"{n + 3}. {cat('reg.sec.findings')}", [
            *_findings(carried, cat, "reg.no_carried"),
            {"kind": "h", "text": cat("reg.closed")},
            *_findings(closed, cat, "reg.no_closed")]),
    ]
    return sections


def register_document(register: Register, lang: str, base: Path | None = None) -> Document:
    """The register as a document in ``lang``."""
    cat = Catalogue(lang)
    intro = Section("about", f"1. {cat('reg.sec.about')}", [{"kind": "kv", "rows": [
        (cat("reg.programme"), label_of(register.title, lang)),
        (cat("reg.now"), _date(register.now)),
        (cat("reg.period"), cat("reg.days", days=f"{register.period_days:g}")),
        (cat("reg.last_drill"), str(register.last_drill) if register.last_drill else cat("none")),
    ]}, {"kind": "p", "text": cat("reg.rules")}])
    title = cat("reg.title", title=label_of(register.title, lang))
    return Document(lang=lang, title=title, banners=[], sections=[intro, *register_sections(register, lang, base, 2)])


def _in_drill(t: TestStatus, register: Register) -> str:
    runs = [r for r in register.drill_runs if r.test_id == t.test.id]
    return runs[-1].outcome if runs else "not_run"


def drill_view(register: Register, lang: str, base: Path | None = None, number: int = 1) -> Section:
    """The register's view of the last drill, for its book: every failure test's verdict in
    this drill (passed, missed, not run), the overdue ones, the findings carried forward."""
    cat = Catalogue(lang)
    rows, oks = [], []
    for t in register.tests:
        outcome = _in_drill(t, register)
        rows.append([t.test.id, label_of(t.test.title, lang) or cat("reg.not_in_plan"), cat(f"reg.drill.{outcome}"),
                     cat("reg.yes") if t.overdue else cat("reg.no"), t.test.owner or cat("owner.tbd")])
        oks.append(outcome == "passed" and not t.overdue)
    outcomes = [_in_drill(t, register) for t in register.tests]
    carried = [f for f in register.findings if f.carried]
    summary = cat("reg.drill_totals", tests=len(register.tests), passed=outcomes.count("passed"),
                  missed=len(outcomes) - outcomes.count("passed"),
                  overdue=sum(t.overdue for t in register.tests), carried=len(carried),
                  period=f"{register.period_days:g}")
    blocks: list[dict[str, Any]] = [
        {"kind": "p", "text": cat("reg.drill_intro", programme=label_of(register.title, lang))},
        {"kind": "p", "text": summary, "strong": True, "ok": all(oks) and not carried},
        {"kind": "table", "headers": [cat(f"reg.col.{k}") for k in ("test", "title", "this_drill", "overdue",
                                                                    "owner")],
         "rows": rows, "ok": oks},
        {"kind": "h", "text": cat("reg.sec.findings")},
        *_findings(carried, cat, "reg.no_carried"),
    ]
    return Section("register", f"{number}. {cat('reg.sec.drill')}", blocks)


def write_register(register: Register, out_dir: str | os.PathLike[str], langs: Sequence[str] = ("en",)) -> list[Path]:
    """Write ``register.md``, ``register.html`` (``register.<lang>.*`` for each further
    language) and ``register.json`` into ``out_dir``; the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i, lang in enumerate(dict.fromkeys(langs)):
        doc = register_document(register, lang, base=out)
        suffix = "" if i == 0 else f".{lang}"
        for ext, text in (("md", render_markdown(doc)), ("html", render_html(doc))):
            path = out / f"register{suffix}.{ext}"
            path.write_text(text, encoding="utf-8")
            written.append(path)
    path = out / "register.json"
    path.write_text(json.dumps(register.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    written.append(path)
    return written
