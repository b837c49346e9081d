"""Writing a run's reports into its run directory: md, html, json, junit, csv, manifest, seal."""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faultlab.analysis import Analysis, analyse
from faultlab.errors import EvidenceTampered, InputError
from faultlab.report.document import Document, EvidenceFile, build_document
from faultlab.report.format import seconds_text
from faultlab.report.junit import write_junit
from faultlab.report.manifest import (
    MANIFEST_FILE,
    SEAL_FILE,
    file_sha256,
    listing_sha256,
    tool_versions,
    write_manifest,
)
from faultlab.report.messages import LANGUAGES, Catalogue

if TYPE_CHECKING:
    from faultlab.evidence.seal import Seal, Sealer

__all__ = [
    "RESULT_SCHEMA",
    "TIMESERIES_COLUMNS",
    "ReportFiles",
    "report_name",
    "render_markdown",
    "render_html",
    "render_reports",
    "json_safe",
    "refuse_tampered",
    "result_data",
    "write_reports",
]

RESULT_SCHEMA = "faultlab.result/1"
TIMESERIES_COLUMNS = ("start", "end", "samples", "ok", "success_rate", "p99_latency_s",
                      "throughput_rps", "completion_delay_p99_s", "healthy")
_GENERATED = ("report.md", "report.html", "result.json", "junit.xml", "timeseries.csv", MANIFEST_FILE, SEAL_FILE)


@dataclass(frozen=True)
class ReportFiles:
    """The files ``write_reports`` wrote, by role."""

    reports: dict[str, tuple[Path, Path]]
    result: Path
    junit: Path
    timeseries: Path
    manifest: Path
    seal: Seal | None = None


def report_name(lang: str, primary: bool, suffix: str) -> str:
    """``report.md`` for the primary language, ``report.ja.md`` for the others."""
    return f"report.{suffix}" if primary else f"report.{lang}.{suffix}"


def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("faultlab.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "html.j2"]),
        trim_blocks=False,
        lstrip_blocks=False,
        keep_trailing_newline=True,
    )
    env.filters["md"] = _md_escape
    env.filters["inline"] = inline_html
    env.filters["css_string"] = _css_string
    return env


_CODE = re.compile(r"`([^`]+)`")


def inline_html(value: Any) -> Any:
    """A document's text as html: escaped, with ```code``` spans (journal text quoted as
    recorded, commands) set as ``<code>``, as Markdown shows them."""
    from markupsafe import Markup, escape

    return Markup(_CODE.sub(r"<code>\1</code>", str(escape(value))))


def _css_string(value: Any) -> Any:
    """``value`` as a quoted CSS string, safe inside ``<style>`` (no quote, backslash or ``<``
    can end it)."""
    from markupsafe import Markup

    text = "".join(c if c.isalnum() or c in " -_.:/()（）" else f"\\{ord(c):x} " for c in str(value))
    return Markup(f'"{text}"')


def _md_escape(value: Any) -> str:
    text = str(value).replace("\r", " ").replace("\n", " ")
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;")


def render_markdown(doc: Document) -> str:
    """The document as Markdown."""
    cat = Catalogue(doc.lang, doc.declaration)
    return _environment().get_template("report.md.j2").render(doc=doc, chart_note=cat("chart.md_note"),
                                                             kv_sep=cat.sep("kv"))


def render_html(doc: Document, analysis: Analysis | None = None, charts: Sequence[Any] = ()) -> str:
    """The document as one self-contained html page with the charts inline, printable (A4,
    a running header with the run ID and the evidence digest, page x / y)."""
    cat = Catalogue(doc.lang, doc.declaration)
    window = analysis.window_s if analysis is not None else 1.0
    missing = ""
    if analysis is not None and not analysis.completion_delay.recorded:
        missing = cat("chart.no_exec")
    legend = cat("chart.legend", window=seconds_text(window, cat))
    if analysis is not None and analysis.jobs:
        legend += " " + cat("chart.legend_jobs")
    return _environment().get_template("report.html.j2").render(
        doc=doc,
        charts=[{"key": c.key, "title": cat(c.title_key), "svg": c.svg, "note": cat(c.note_key) if c.note_key else ""}
                for c in charts],
        charts_title=cat("res.charts"),
        charts_missing=missing,
        chart_legend=legend,
        labels={"run_id": cat("id.run"), "digest": cat("id.evidence_digest"), "page": cat("print.page")},
    )


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def json_safe(value: Any) -> Any:
    """``value`` as it reads back from JSON (dates and other values as their text), so the
    manifest keeps exactly what the reports were written from."""
    return None if value is None else json.loads(json.dumps(value, ensure_ascii=False, default=str))


def result_data(analysis: Analysis) -> dict[str, Any]:
    """What ``result.json`` holds: every figure of the analysis (non-finite numbers as null)."""
    return {"schema": RESULT_SCHEMA, "analysis": _clean(analysis.to_dict())}


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def _write_timeseries(analysis: Analysis, path: Path) -> None:
    # repr() keeps every float exact, so the CSV equals the analysis to the last bit.
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(TIMESERIES_COLUMNS)
        for w in analysis.windows:
            out.writerow([_csv_cell(getattr(w, c)) for c in TIMESERIES_COLUMNS])


def _evidence(run_dir: Path) -> list[EvidenceFile]:
    files = []
    for path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(run_dir).as_posix()
        if _generated(rel):
            continue
        files.append(EvidenceFile(rel, path.stat().st_size, file_sha256(path)))
    return files


def _generated(rel: str) -> bool:
    return rel in _GENERATED or (rel.startswith("report.") and rel.endswith((".md", ".html")))


def _remove_stale(run_dir: Path) -> None:
    for path in run_dir.iterdir():
        if path.is_file() and _generated(path.name):
            path.unlink()


def refuse_tampered(run_dir: Path) -> None:
    """Raise :class:`~faultlab.errors.EvidenceTampered` when the run's journal or its
    pre-registration was changed after the run wrote them: such a run is never re-judged."""
    from faultlab.journal import check_journal

    tampering = check_journal(run_dir).tampering
    if tampering:
        raise EvidenceTampered(
            "\n".join(str(t) for t in tampering)
            + f"\n{run_dir}: the evidence was changed after the run wrote it; it is not re-judged "
            "and no report was written")


def render_reports(
    run_dir: Path,
    analysis: Analysis,
    *,
    langs: Sequence[str],
    plan_info: dict[str, Any] | None,
    tools: dict[str, str],
    generated: str,
) -> dict[str, bytes]:
    """Every generated file of a run but the manifest, by name, as :func:`write_reports`
    writes it: the same inputs give the same bytes (``verify --recompute`` relies on it)."""
    import tempfile

    from faultlab.report.charts import render_charts

    evidence = _evidence(run_dir)
    out: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory(prefix="faultlab-render-") as tmp:
        _write_timeseries(analysis, Path(tmp) / "timeseries.csv")
        write_junit(analysis, Path(tmp) / "junit.xml")
        out["timeseries.csv"] = (Path(tmp) / "timeseries.csv").read_bytes()
        out["junit.xml"] = (Path(tmp) / "junit.xml").read_bytes()
    out["result.json"] = (json.dumps(result_data(analysis), indent=2, ensure_ascii=False, allow_nan=False)
                          + "\n").encode("utf-8")
    for index, lang in enumerate(dict.fromkeys(langs)):
        doc = build_document(analysis, lang, plan_info=plan_info, evidence=evidence, tools=tools,
                             generated=generated)
        out[report_name(lang, index == 0, "md")] = render_markdown(doc).encode("utf-8")
        out[report_name(lang, index == 0, "html")] = render_html(doc, analysis, render_charts(analysis, lang)).encode(
            "utf-8")
    return out


def write_reports(
    run_dir: str | Path,
    *,
    langs: Sequence[str] = ("en",),
    plan_info: dict[str, Any] | None = None,
    analysis: Analysis | None = None,
    sealer: Sealer | None = None,
) -> ReportFiles:
    """(Re)compute the analysis from the saved journal and write every report into ``run_dir``.

    The first language is written as ``report.md`` / ``report.html``, others as
    ``report.<lang>.md`` / ``.html``. Previously generated reports are replaced, and
    ``manifest.json`` is written last, over every file of the run directory; with a
    ``sealer`` the package is then sealed (``manifest.sig``, a register line).

    A run whose journal or pre-registration was changed after the run is refused
    (:class:`~faultlab.errors.EvidenceTampered`): it is never re-judged.
    """
    run_dir = Path(run_dir)
    langs = [langs] if isinstance(langs, str) else list(langs)
    for lang in langs:
        if lang not in LANGUAGES:
            raise InputError(f"unknown report language {lang!r}; known: {', '.join(LANGUAGES)}")
    refuse_tampered(run_dir)
    plan_info = json_safe(plan_info)
    analysis = analysis or analyse(run_dir)
    _remove_stale(run_dir)
    tools = tool_versions(analysis.tools)
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    rendered = render_reports(run_dir, analysis, langs=langs, plan_info=plan_info, tools=tools, generated=generated)
    for name, data in rendered.items():
        (run_dir / name).write_bytes(data)
    reports = {lang: (run_dir / report_name(lang, i == 0, "md"), run_dir / report_name(lang, i == 0, "html"))
               for i, lang in enumerate(dict.fromkeys(langs))}
    evidence = _evidence(run_dir)

    manifest = write_manifest(run_dir, {
        "kind": "run",
        "run_id": analysis.run_id,
        "status": analysis.status,
        "scenario": analysis.scenario,
        "stack": analysis.stack,
        "run_faultlab_version": analysis.faultlab_version,
        "run_host": analysis.host,
        "run_git": analysis.header.get("git"),
        "tools": tools,
        "evidence": {"files": [e.path for e in evidence],
                     "sha256": listing_sha256((e.path, e.sha256) for e in evidence)},
        "report": {"languages": list(dict.fromkeys(langs)), "plan_info": plan_info, "generated": generated},
    })
    sealed = None
    if sealer is not None:
        from faultlab.evidence.seal import seal

        sealed = seal(run_dir, kind="run", id=analysis.run_id, sealer=sealer)
    return ReportFiles(reports=reports, result=run_dir / "result.json", junit=run_dir / "junit.xml",
                       timeseries=run_dir / "timeseries.csv", manifest=manifest, seal=sealed)
