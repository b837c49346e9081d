"""The drill-plan book: an index over every scenario run of a plan, with a combined manifest."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faultlab.analysis import Analysis, analyse
from faultlab.report.document import (
    Document,
    Section,
    finding_text,
    local_text,
    outcome_text,
    participants_section,
    target_label,
)
from faultlab.report.format import measure_text, target_text
from faultlab.report.manifest import MANIFEST_FILE, file_sha256, write_manifest
from faultlab.report.messages import Catalogue
from faultlab.report.writer import json_safe, render_html, render_markdown, report_name, write_reports

if TYPE_CHECKING:
    from faultlab.evidence.seal import Seal, Sealer

__all__ = ["BookFiles", "render_book", "write_book"]


@dataclass(frozen=True)
class BookFiles:
    """What ``write_book`` wrote."""

    index_md: Path
    index_html: Path
    manifest: Path
    seal: Seal | None = None


def _link(plan_dir: Path, run_dir: Path, name: str) -> str:
    return Path(os.path.relpath(run_dir / name, plan_dir)).as_posix()


def _report_of(run_dir: Path, lang: str, primary: bool) -> str:
    """The run's html report in ``lang``: written as the primary or as a second language, or
    (a run reported without it) its primary report."""
    for name in (report_name(lang, primary, "html"), report_name(lang, False, "html")):
        if (run_dir / name).is_file():
            return name
    return report_name(lang, True, "html")


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
                                words.sep("slash").join((measure_text(v.measured, words), target_text(v, words))),
                                outcome])
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
          primary: bool = True) -> Document:
    cat = Catalogue(lang)
    groups: dict[str, list[Analysis]] = {}
    for a in analyses:
        groups.setdefault(str(a.scenario.get("id") or a.run_id), []).append(a)
    rows, oks = [], []
    for scenario_id, runs in groups.items():
        title = local_text(runs[0].scenario.get("title"), cat)
        parts = []
        for a in runs:
            words = Catalogue(lang, a.declaration)
            for v in a.verdicts:
                parts.append(words("book.target", target=target_label(v.target, words),
                                   measured=measure_text(v.measured, words), limit=target_text(v, words),
                                   outcome=outcome_text(v, words)))
            if a.status != "completed":
                parts.append(cat(f"status.{a.status}") if cat.has(f"status.{a.status}") else a.status)
        outcome = _worst(a.outcome for a in runs)
        passed = outcome == "passed"
        rows.append([
            f"{scenario_id} — {title}",
            cat.sep("list").join(parts) or cat("none"),
            cat(f"book.{outcome}"),
            [{"text": a.run_id, "href": _link(plan_dir, Path(a.run_dir), _report_of(Path(a.run_dir), lang, primary))}
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
    extra = [view] if (view := _register_view(plan_dir, lang)) is not None else []
    n = 2 + len(extra)
    ident = Section("identification", f"{n}. {cat('sec.identification')}", [{"kind": "kv", "rows": [
        (cat("id.plan"), local_text(plan.get("title") or plan.get("id"), cat) or plan_dir.name),
        (cat("id.environment"), local_text(plan.get("environment"), cat) or cat("none")),
        (cat("id.classification"), local_text(plan.get("classification"), cat) or cat("none")),
        (cat("id.language"), cat("lang.name")),
    ]}])
    people = participants_section(cat, plan)
    people.title = f"{n + 1}. {people.title}"
    appendix = Section("appendices", f"{n + 2}. {cat('sec.appendices')}",
                       [{"kind": "p", "text": cat("book.manifest")}])
    title = cat("book.title", title=local_text(plan.get("title"), cat) or plan_dir.name)
    return Document(lang=lang, title=title, banners=[], sections=[summary, *extra, ident, people, appendix])


REGISTER_VIEW = "register-view.{lang}.json"
"""The register's view of the drill as drawn up after it, one file per language."""


def _write_register_view(plan_dir: Path, register: Any, langs: Sequence[str]) -> None:
    from faultlab.report.register import drill_view

    for lang in dict.fromkeys(langs):
        view = drill_view(register, lang, base=plan_dir, number=2)
        data = {"id": view.id, "title": view.title, "blocks": view.blocks}
        (plan_dir / REGISTER_VIEW.format(lang=lang)).write_text(
            json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def _register_view(plan_dir: Path, lang: str) -> Section | None:
    """The register's view kept in the plan dir for ``lang``, if the drill drew one up."""
    path = plan_dir / REGISTER_VIEW.format(lang=lang)
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return Section(str(data["id"]), str(data["title"]), list(data["blocks"]))


def render_book(plan_dir: Path, analyses: Sequence[Analysis], plan: dict[str, Any],
                langs: Sequence[str]) -> dict[str, bytes]:
    """The index files of a plan's book by name (``index.md``, ``index.html``, then
    ``index.<lang>.*`` for the other languages), as :func:`write_book` writes them."""
    out: dict[str, bytes] = {}
    for i, lang in enumerate(dict.fromkeys(langs)):
        doc = _book(plan_dir, analyses, plan, lang, primary=i == 0)
        out["index.md" if i == 0 else f"index.{lang}.md"] = render_markdown(doc).encode("utf-8")
        out["index.html" if i == 0 else f"index.{lang}.html"] = render_html(doc).encode("utf-8")
    return out


def write_book(
    plan_dir: str | Path,
    runs: Sequence[str | Path | Analysis],
    plan_info: dict[str, Any] | None = None,
    *,
    langs: Sequence[str] = ("en",),
    plan_id: str | None = None,
    sealer: Sealer | None = None,
    register: Any = None,
) -> BookFiles:
    """Write ``index.md`` / ``index.html`` over ``runs`` and a manifest of the whole plan dir,
    which records each run's manifest by its SHA-256; with a ``sealer`` the plan dir is sealed
    (``manifest.sig``, a register line) as ``plan_id`` (the folder's name by default).

    ``runs`` are run directories (or their analyses). A run without reports gets them
    written first, so every row links to a report that exists. With the programme's
    ``register`` (:class:`faultlab.register.Register`, drawn up after this drill), the book
    shows its view of this drill: what passed, what was missed, what is overdue, the findings
    carried forward. That view is kept in the plan dir (``register-view.<lang>.json``, in its
    manifest) as it was drawn up, so the book can be rendered again from the plan dir alone.
    """
    plan_dir = Path(plan_dir)
    plan_dir.mkdir(parents=True, exist_ok=True)
    langs = [langs] if isinstance(langs, str) else list(langs)
    plan = dict(json_safe(plan_info) or {})
    analyses: list[Analysis] = []
    for run in runs:
        a = run if isinstance(run, Analysis) else analyse(run)
        if not (Path(a.run_dir) / MANIFEST_FILE).exists():
            write_reports(a.run_dir, langs=langs, plan_info=plan, analysis=a, sealer=sealer)
        analyses.append(a)
    if register is not None:
        _write_register_view(plan_dir, register, langs)
    for name, data in render_book(plan_dir, analyses, plan, langs).items():
        (plan_dir / name).write_bytes(data)
    index_md, index_html = plan_dir / "index.md", plan_dir / "index.html"
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
    plan_id = plan_id or plan_dir.name
    manifest = write_manifest(plan_dir, {"kind": "plan", "id": plan_id, "title": plan.get("title"), "runs": runs_info,
                                         "report": {"languages": list(dict.fromkeys(langs)), "plan_info": plan}})
    sealed = None
    if sealer is not None:
        from faultlab.evidence.seal import seal

        sealed = seal(plan_dir, kind="plan", id=plan_id, sealer=sealer)
    return BookFiles(index_md=index_md, index_html=index_html, manifest=manifest, seal=sealed)
