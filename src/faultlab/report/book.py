"""The drill-plan book: an index over every scenario run of a plan, with a combined manifest."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faultlab.analysis import Analysis, analyse
from faultlab.report.document import (
    Document,
    Section,
    finding_text,
    outcome_text,
    participants_section,
    target_label,
)
from faultlab.report.format import measure_text, target_text
from faultlab.report.manifest import MANIFEST_FILE, file_sha256, write_manifest
from faultlab.report.messages import Catalogue
from faultlab.report.writer import render_html, render_markdown, report_name, write_reports

__all__ = ["BookFiles", "write_book"]


@dataclass(frozen=True)
class BookFiles:
    """What ``write_book`` wrote."""

    index_md: Path
    index_html: Path
    manifest: Path


def _link(plan_dir: Path, run_dir: Path, name: str) -> str:
    return Path(os.path.relpath(run_dir / name, plan_dir)).as_posix()


_OUTCOME_RANK = {"passed": 0, "inconclusive": 1, "failed": 2}


def _worst(outcomes: Iterable[str]) -> str:
    return max(outcomes, key=lambda o: _OUTCOME_RANK[o], default="passed")


def _attention(analyses: Sequence[Analysis], lang: str, cat: Catalogue) -> list[dict[str, Any]]:
    """Every target missed (or not judged on an inconclusive run) and every finding of every
    run, so the index never says less than the reports it links."""
    targets, findings = [], []
    for a in analyses:
        words = Catalogue(lang, a.declaration)
        scenario = str(a.scenario.get("id") or "")
        for v in a.verdicts:
            if not v.met or a.inconclusive:
                outcome = words("book.inconclusive") if a.inconclusive and v.met else outcome_text(v, words)
                targets.append([scenario, a.run_id, target_label(v.target, words),
                                f"{measure_text(v.measured, words)} / {target_text(v, words)}", outcome])
        findings += [[scenario, a.run_id, f.id, words(f"sev.{f.severity}"), finding_text(f, a, words)]
                     for f in a.findings]
    blocks: list[dict[str, Any]] = [{"kind": "h", "text": cat("book.attention_targets")}]
    blocks.append({"kind": "table", "headers": [cat(f"book.col.{k}") for k in ("scenario", "run", "target",
                                                                                "measured", "verdict")],
                   "rows": targets} if targets else {"kind": "p", "text": cat("book.no_attention_targets")})
    blocks.append({"kind": "h", "text": cat("book.findings")})
    blocks.append({"kind": "table", "headers": [cat(f"book.col.{k}") for k in ("scenario", "run", "id",
                                                                                "severity", "finding")],
                   "rows": findings} if findings else {"kind": "p", "text": cat("summary.no_findings")})
    return blocks


def _book(plan_dir: Path, analyses: Sequence[Analysis], plan: dict[str, Any], lang: str,
          register: Any = None) -> Document:
    cat = Catalogue(lang)
    groups: dict[str, list[Analysis]] = {}
    for a in analyses:
        groups.setdefault(str(a.scenario.get("id") or a.run_id), []).append(a)
    rows, oks = [], []
    for scenario_id, runs in groups.items():
        title = runs[0].scenario.get("title", "")
        parts = []
        for a in runs:
            words = Catalogue(lang, a.declaration)
            for v in a.verdicts:
                parts.append(f"{target_label(v.target, words)}: {measure_text(v.measured, words)} / "
                             f"{target_text(v, words)} ({outcome_text(v, words)})")
            if a.status != "completed":
                parts.append(cat(f"status.{a.status}") if cat.has(f"status.{a.status}") else a.status)
        outcome = _worst(a.outcome for a in runs)
        passed = outcome == "passed"
        rows.append([
            f"{scenario_id} — {title}",
            "; ".join(parts) or cat("none"),
            cat(f"book.{outcome}"),
            [{"text": a.run_id, "href": _link(plan_dir, Path(a.run_dir), report_name(lang, True, "html"))}
             for a in runs],
        ])
        oks.append(passed)
    met = sum(1 for a in analyses for v in a.verdicts if v.met)
    missed = sum(1 for a in analyses for v in a.verdicts if not v.met)
    outcomes = [a.outcome for a in analyses]
    totals = cat("book.totals", scenarios=len(groups), runs=len(analyses), passed=outcomes.count("passed"),
                 failed=outcomes.count("failed"), inconclusive=outcomes.count("inconclusive"), met=met, missed=missed,
                 findings=sum(len(a.findings) for a in analyses))
    summary = Section("summary", f"1. {cat('sec.summary')}", [
        {"kind": "p", "text": cat("book.intro")},
        {"kind": "p", "text": totals, "strong": True, "ok": outcomes.count("passed") == len(analyses)},
        {"kind": "table",
         "headers": [cat(f"book.col.{key}") for key in ("scenario", "targets", "verdict", "report")],
         "rows": rows, "ok": oks},
        *_attention(analyses, lang, cat),
    ])
    extra = []
    if register is not None:
        from faultlab.report.register import drill_view

        extra.append(drill_view(register, lang, base=plan_dir, number=2))
    n = 2 + len(extra)
    ident = Section("identification", f"{n}. {cat('sec.identification')}", [{"kind": "kv", "rows": [
        (cat("id.plan"), str(plan.get("title") or plan.get("id") or plan_dir.name)),
        (cat("id.environment"), str(plan.get("environment") or cat("none"))),
        (cat("id.classification"), str(plan.get("classification") or cat("none"))),
        (cat("id.language"), cat("lang.name")),
    ]}])
    people = participants_section(cat, plan)
    people.title = f"{n + 1}. {people.title}"
    appendix = Section("appendices", f"{n + 2}. {cat('sec.appendices')}",
                       [{"kind": "p", "text": cat("book.manifest")}])
    title = cat("book.title", title=str(plan.get("title") or plan_dir.name))
    return Document(lang=lang, title=title, banners=[], sections=[summary, *extra, ident, people, appendix])


def write_book(
    plan_dir: str | Path,
    runs: Sequence[str | Path | Analysis],
    plan_info: dict[str, Any] | None = None,
    *,
    langs: Sequence[str] = ("en",),
    register: Any = None,
) -> BookFiles:
    """Write ``index.md`` / ``index.html`` over ``runs`` and a manifest of the whole plan dir.

    ``runs`` are run directories (or their analyses). A run without reports gets them
    written first, so every row links to a report that exists. With the programme's
    ``register`` (:class:`faultlab.register.Register`, drawn up after this drill), the book
    shows its view of this drill: what passed, what was missed, what is overdue, the findings
    carried forward.
    """
    plan_dir = Path(plan_dir)
    plan_dir.mkdir(parents=True, exist_ok=True)
    langs = [langs] if isinstance(langs, str) else list(langs)
    plan = dict(plan_info or {})
    analyses: list[Analysis] = []
    for run in runs:
        a = run if isinstance(run, Analysis) else analyse(run)
        if not (Path(a.run_dir) / MANIFEST_FILE).exists():
            write_reports(a.run_dir, langs=langs, plan_info=plan, analysis=a)
        analyses.append(a)
    index_md = index_html = plan_dir / "index.md"
    for i, lang in enumerate(dict.fromkeys(langs)):
        doc = _book(plan_dir, analyses, plan, lang, register)
        md = plan_dir / ("index.md" if i == 0 else f"index.{lang}.md")
        html = plan_dir / ("index.html" if i == 0 else f"index.{lang}.html")
        md.write_text(render_markdown(doc), encoding="utf-8")
        html.write_text(render_html(doc), encoding="utf-8")
        if i == 0:
            index_md, index_html = md, html
    runs_info = []
    for a in analyses:
        manifest = Path(a.run_dir) / MANIFEST_FILE
        runs_info.append({
            "run_id": a.run_id,
            "scenario": a.scenario.get("id"),
            "path": Path(os.path.relpath(a.run_dir, plan_dir)).as_posix(),
            "passed": a.passed,
            "outcome": a.outcome,
            "manifest_sha256": file_sha256(manifest) if manifest.exists() else None,
        })
    manifest = write_manifest(plan_dir, {"kind": "plan", "title": plan.get("title"), "runs": runs_info})
    return BookFiles(index_md=index_md, index_html=index_html, manifest=manifest)
