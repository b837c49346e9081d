"""The report as a language-specific document: sections of blocks, rendered to md and html.

Both formats render the same ``Document``, so they can never disagree on a figure.
Block kinds: ``p`` (paragraph), ``banner``, ``kv`` (label/value rows), ``table``,
``list`` and ``charts`` (html only; markdown points to report.html and the CSV).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from faultlab import __version__
from faultlab.analysis import Analysis, ImpactCounts, LatencyStats, Measure, Verdict
from faultlab.analysis.targets import violations_for
from faultlab.model.types import text_of
from faultlab.plugin.declaration import Declaration
from faultlab.report.format import (
    measure_text,
    percent_text,
    resolution_text,
    seconds_text,
    target_text,
)
from faultlab.report.manifest import listing_sha256
from faultlab.report.messages import Catalogue

__all__ = [
    "Document",
    "Section",
    "EvidenceFile",
    "build_document",
    "finding_text",
    "outcome_text",
    "participants_section",
    "target_label",
    "verdict_row",
    "verbatim",
    "local_text",
]


@dataclass(frozen=True)
class EvidenceFile:
    """A file of the run directory listed in the appendix with its size and SHA-256."""

    path: str
    size: int
    sha256: str


@dataclass
class Section:
    """A numbered section of the report."""

    id: str
    title: str
    blocks: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Document:
    """One report in one language, ready to render.

    ``run_id`` and ``evidence_digest`` head every printed page (see report.html.j2).
    """

    lang: str
    title: str
    banners: list[dict[str, str]]
    sections: list[Section]
    declaration: Declaration = field(default_factory=Declaration)
    run_id: str = ""
    evidence_digest: str = ""


def verbatim(text: Any) -> str:
    """Text quoted from the journal as it was recorded, set as code: ```text```.

    The harness and the system journal their own words (revert plans, clean-up steps,
    reasons, notes) in English; a report in another language quotes them as evidence, set
    apart so that they are never read as the report's own prose. Empty stays empty.
    """
    value = " ".join(str(text or "").split())
    quoted = value.replace("`", "'")
    return f"`{quoted}`" if value else ""


def local_text(value: Any, cat: Catalogue) -> str:
    """A localisable text (plain, ``{en, ja}`` or :class:`~faultlab.model.types.Localised`) in the
    report's language, English when it has no such variant; empty for None."""
    return text_of(value, cat.lang) or ""


def _evidence_items(items: Sequence[Any], cat: Catalogue) -> str:
    return cat.sep("comma").join(verbatim(e) for e in items)


def target_label(name: str, cat: Catalogue) -> str:
    """The words for a target key (see :meth:`Catalogue.target`)."""
    return cat.target(name)


def outcome_text(verdict: Verdict, cat: Catalogue) -> str:
    """``met`` / ``MISSED`` / ``NOT ASSESSED``."""
    return cat(f"outcome.{verdict.outcome}")


def verdict_row(v: Verdict, cat: Catalogue) -> list[str]:
    """Objective, target, measured, resolution, verdict, evidence: the summary's row."""
    evidence = _evidence_items(v.evidence, cat)
    return [
        target_label(v.target, cat),
        target_text(v, cat),
        measure_text(v.measured, cat),
        resolution_text(v.measured, cat),
        outcome_text(v, cat),
        evidence or cat("none"),
    ]


def _status(a: Analysis, cat: Catalogue) -> str:
    key = f"status.{a.status}"
    return cat(key) if cat.has(key) else a.status


def _t(t: float | None, cat: Catalogue) -> str:
    return cat("none") if t is None else f"{t:.3f}"


def _point(m: Measure, cat: Catalogue) -> str:
    """A moment of the run: ``t = 20.000 s`` or why there is none."""
    if not m.measured:
        return measure_text(m, cat)
    return f"t = {seconds_text(m.value, cat)}"


def _is_local(value: Any) -> bool:
    return isinstance(value, dict) and set(value) <= {"en", "ja"} and "en" in value


def _as_list(value: Any, cat: Catalogue) -> list[str]:
    """Free text of a plan or scenario as a list of items, each in the report's language."""
    if value is None:
        return []
    if isinstance(value, str) or _is_local(value) or hasattr(value, "en"):
        return [local_text(value, cat)]
    if isinstance(value, dict):
        return [f"{k}: {local_text(v, cat) if _is_local(v) else v}" for k, v in value.items()]
    return [item for v in value for item in _as_list(v, cat)]


def _yes_no(value: Any, cat: Catalogue) -> str:
    if value is None:
        return cat("none")
    return cat("yes") if value else cat("no")


def _wall_range(a: Analysis) -> str:
    if not a.origin_wall:
        return "—"
    try:
        origin = datetime.fromisoformat(a.origin_wall).astimezone(UTC)
    except ValueError:
        return a.origin_wall
    start = origin.strftime("%Y-%m-%d %H:%M:%S")
    if a.last_t is None:
        return start
    end = (origin + timedelta(seconds=a.last_t)).strftime("%H:%M:%S")
    return f"{start} – {end}"


def _identification(a: Analysis, cat: Catalogue, plan: dict[str, Any], generated: str, digest: str) -> Section:
    sc, st = a.scenario, a.stack
    rows = [
        (cat("id.run"), a.run_id),
        (cat("id.plan"), local_text(plan.get("title") or plan.get("id"), cat) or cat("none")),
        (cat("id.scenario"), f"{sc.get('id', '?')} — {local_text(sc.get('title'), cat)}"),
        (cat("id.scenario_file"), str(sc.get("file") or cat("none"))),
        (cat("id.scenario_hash"), str(sc.get("sha256") or cat("none"))),
        (cat("id.stack"), cat("paren", a=st.get("name", "?"), b=st.get("file", ""))),
        (cat("id.stack_hash"), str(st.get("sha256") or cat("none"))),
        (cat("id.window"), _wall_range(a)),
        (cat("id.duration"), seconds_text(a.duration_s, cat)),
        (cat("id.status"), _status(a, cat)),
        (cat("id.environment"),
         local_text(plan.get("environment") or a.header.get("environment"), cat) or cat("none")),
        (cat("id.classification"), local_text(plan.get("classification"), cat) or cat("none")),
        (cat("id.system_version"), str(plan.get("system_version") or a.header.get("system_version") or cat("none"))),
        (cat("id.runbook"), str(plan.get("runbook") or plan.get("runbook_version") or cat("none"))),
        (cat("id.host"), str(a.host or cat("none"))),
        (cat("id.faultlab"), cat.sep("slash").join((a.faultlab_version or "?", __version__))),
        (cat("id.schema"), a.schema),
        (cat("id.language"), cat("lang.name")),
        (cat("id.generated"), generated),
        (cat("id.evidence_digest"), digest or cat("none")),
    ]
    return Section("identification", cat("sec.identification"),
                   [{"kind": "kv", "rows": rows}, {"kind": "p", "text": cat("id.verbatim")}])


def _overall(a: Analysis, cat: Catalogue) -> tuple[str, bool]:
    total = len(a.verdicts)
    missed = sum(1 for v in a.verdicts if not v.met)
    if a.status != "completed":
        text = cat("overall.incomplete", status=_status(a, cat), missed=missed, total=total)
    elif a.inconclusive:
        text = cat("overall.inconclusive", missed=missed, total=total)
    elif missed:
        text = cat("overall.failed", missed=missed, total=total)
    else:
        text = cat("overall.passed", total=total)
    if a.findings:
        counts = {level: sum(1 for f in a.findings if f.severity == level) for level in ("high", "medium", "low")}
        text += cat.sep("sentence") + cat("overall.findings", n=len(a.findings), **counts)
    return text, a.passed


def _timed(params: dict[str, Any], cat: Catalogue) -> dict[str, Any]:
    """Parameters named ``*_s`` are seconds: write them as every other duration is written."""
    return {k: seconds_text(v, cat) if k.endswith("_s") and isinstance(v, (int, float)) else v
            for k, v in params.items()}


_QUOTED = ("what", "why", "message", "reason", "problem")
"""Parameters of deviations and findings that are journal text, quoted as recorded."""


def _quoted(params: dict[str, Any]) -> dict[str, Any]:
    return {k: verbatim(v) if k in _QUOTED else v for k, v in params.items()}


def finding_text(f: Any, a: Analysis, cat: Catalogue) -> str:
    """A finding of ``a`` as the sentence the reports write (journal text quoted as code)."""
    params = _quoted(_timed(dict(f.params), cat))
    if f.kind == "target_missed":
        verdict = next(v for v in a.verdicts if v.target == params["target"])
        key = "find.target_missed" if verdict.measured.measured else "find.target_missed_novalue"
        text = cat(key, target=target_label(verdict.target, cat),
                   measured=measure_text(verdict.measured, cat), limit=target_text(verdict, cat))
        if verdict.evidence:
            text += cat.sep("sentence") + cat("find.evidence", evidence=_evidence_items(verdict.evidence, cat))
        return text
    if f.kind == "job_overran":
        params["margin"] = seconds_text(f.params.get("margin_s"), cat)
        job = next((j for j in a.jobs if j.job == f.params.get("job")), None)
        params["deadline"] = _deadline_name(job.deadline_name if job else None, cat)
    if f.kind == "error_budget_exceeded":
        params["consumed"] = percent_text(params.get("consumed"), cat)
    params.setdefault("reason", "")
    key = f"find.{f.kind}"
    return cat(key, **params) if cat.has(key) else f"{f.kind}: {json.dumps(params, ensure_ascii=False)}"


def _summary(a: Analysis, cat: Catalogue) -> Section:
    text, passed = _overall(a, cat)
    blocks: list[dict[str, Any]] = [{"kind": "p", "text": text, "strong": True, "ok": passed}]
    rows = [verdict_row(v, cat) for v in a.verdicts]
    blocks.append({
        "kind": "table",
        "headers": [cat("col.objective"), cat("col.target"), cat("col.measured"), cat("col.resolution"),
                    cat("col.verdict"), cat("col.evidence")],
        "rows": rows,
        "ok": [v.met for v in a.verdicts],
    })
    top = [cat("summary.finding", id=f.id, severity=cat(f"sev.{f.severity}"), text=finding_text(f, a, cat))
           for f in a.findings[:5]]
    blocks.append({"kind": "p", "text": cat("summary.top_findings"), "strong": True})
    blocks.append({"kind": "list", "items": top} if top else {"kind": "p", "text": cat("summary.no_findings")})
    return Section("summary", cat("sec.summary"), blocks)


def _scope(a: Analysis, cat: Catalogue, plan: dict[str, Any]) -> Section:
    scope = plan.get("scope")
    scope_d = scope if isinstance(scope, dict) and not _is_local(scope) else {"functions": scope} if scope else {}
    services = sorted({p.rsplit("/", 1)[-1].removesuffix(".log") for p in a.header.get("services", [])} |
                      set(_services_logged(a)))
    targets = sorted({f.target for f in a.faults if f.target})
    not_stated = cat("scope.not_stated")
    rows = [
        (cat("scope.system"), cat("paren", a=a.stack.get("name", "?"), b=a.stack.get("file", ""))),
        (cat("scope.services"), ", ".join(services) or cat("none")),
        (cat("scope.fault_targets"), ", ".join(targets) or cat("none")),
        (cat("scope.functions"), cat.sep("list").join(_as_list(scope_d.get("functions"), cat)) or not_stated),
        (cat("scope.exclusions"),
         cat.sep("list").join(_as_list(scope_d.get("exclusions") or plan.get("exclusions"), cat)) or not_stated),
        (cat("scope.rationale"), cat.sep("list").join(_as_list(scope_d.get("rationale"), cat)) or not_stated),
    ]
    return Section("scope", cat("sec.scope"), [{"kind": "kv", "rows": rows}])


def _services_logged(a: Analysis) -> list[str]:
    logs = Path(a.run_dir) / "services"
    return [p.stem for p in logs.glob("*.log")] if logs.is_dir() else []


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def _scenario(a: Analysis, cat: Catalogue, plan: dict[str, Any]) -> Section:
    ss = a.steady_state
    rate = ss.get("success_rate_min")
    blocks: list[dict[str, Any]] = [
        {"kind": "p", "text": cat("sc.heading", id=a.scenario.get("id", "?"),
                                  title=local_text(a.scenario.get("title"), cat)), "strong": True},
    ]
    description = local_text(a.scenario.get("description"), cat)
    if description:
        blocks.append({"kind": "kv", "rows": [(cat("sc.description"), description)]})
    blocks.append({"kind": "p", "text": cat("sc.faults"), "strong": True})
    if a.faults:
        blocks.append({
            "kind": "table",
            "headers": [cat("col.fault"), cat("col.kind"), cat("col.fault_target"), cat("col.params"),
                        cat("col.planned"), cat("col.active"), cat("col.cleared"), cat("col.slip"),
                        cat("col.revert_plan")],
            "rows": [[f.fault_id, f.kind, f.target, _params_text(f.params), _t(f.planned_t, cat),
                      _t(f.active_t, cat), _t(f.reverted_t, cat), seconds_text(f.slip_s, cat),
                      verbatim(f.revert_plan) or cat("none")] for f in a.faults],
        })
    else:
        blocks.append({"kind": "p", "text": cat("sc.no_faults")})
    rows = [
        (cat("sc.steady"), cat("sc.steady_value",
                               rate=percent_text(rate, cat) if rate is not None else cat("none"),
                               p99=seconds_text(ss.get("p99_latency_max_s"), cat))
         + (cat("sc.steady_completion", max=seconds_text(ss["completion_delay_max_s"], cat))
            if ss.get("completion_delay_max_s") is not None else "")),
        (cat("sc.window"), cat.sep("slash").join(seconds_text(x, cat) for x in (a.window_s, a.step_s, a.hold_s))),
        (cat("id.duration"), seconds_text(a.duration_s, cat)),
    ]
    for key, label in (("load", "sc.load"), ("canary", "sc.canary")):
        value = a.scenario.get(key) or a.header.get(key)
        if isinstance(value, dict):
            rows.append((cat(label), _params_text(value)))
    blocks.append({"kind": "kv", "rows": rows})
    assumptions = _as_list(plan.get("assumptions"), cat) + _as_list(a.scenario.get("assumptions"), cat)
    if assumptions:
        blocks.append({"kind": "p", "text": cat("sc.assumptions"), "strong": True})
        blocks.append({"kind": "list", "items": assumptions})
    return Section("scenario", cat("sec.scenario"), blocks)


def _targets(a: Analysis, cat: Catalogue) -> Section:
    if not a.verdicts:
        return Section("targets", cat("sec.targets"), [{"kind": "p", "text": cat("tg.none")}])
    rows = [[target_label(v.target, cat), target_text(v, cat),
             cat("source.preset") if v.preset else cat("source.builtin")] for v in a.verdicts]
    return Section("targets", cat("sec.targets"), [
        {"kind": "p", "text": cat("tg.intro")},
        {"kind": "table", "headers": [cat("col.objective"), cat("col.target"), cat("col.source")], "rows": rows},
    ])


def _people(raw: Any) -> list[dict[str, Any]]:
    if isinstance(raw, dict):
        return [{"name": k, "role": v} if not isinstance(v, dict) or _is_local(v) else {"name": k, **v}
                for k, v in raw.items()]
    return [p if isinstance(p, dict) else {"name": str(p)} for p in raw or []]


def participants_section(cat: Catalogue, plan: dict[str, Any]) -> Section:
    """Participants and approvals from the drill plan (or a note that none was given)."""
    blocks: list[dict[str, Any]] = []
    people = _people(plan.get("participants"))
    if not plan:
        blocks.append({"kind": "p", "text": cat("part.none")})
    elif people:
        blocks.append({
            "kind": "table",
            "headers": [cat("col.name"), cat("col.role"), cat("col.attended")],
            "rows": [[local_text(p.get("name"), cat), local_text(p.get("role"), cat),
                      _yes_no(p.get("attended", p.get("present")), cat)] for p in people],
        })
    approvals = _people(plan.get("approvals"))
    if plan:
        blocks.append({"kind": "p", "text": cat("part.approvals"), "strong": True})
        if approvals:
            blocks.append({
                "kind": "table",
                "headers": [cat("col.role"), cat("col.name"), cat("col.decision"), cat("col.date")],
                "rows": [[local_text(p.get("role"), cat), local_text(p.get("name"), cat),
                          local_text(p.get("decision"), cat) or cat("none"), str(p.get("date") or cat("none"))]
                         for p in approvals],
            })
        else:
            blocks.append({"kind": "p", "text": cat("part.no_approvals")})
    return Section("participants", cat("sec.participants"), blocks)


def _baseline(a: Analysis, cat: Catalogue) -> Section:
    b = a.baseline
    if b is None or not b.samples:
        return Section("baseline", cat("sec.baseline"), [{"kind": "p", "text": cat("bl.none")}])
    rows = [
        (cat("bl.period"), f"t = {b.start:.3f} – {b.end:.3f}"),
        (cat("bl.samples"), str(b.samples)),
        (cat("bl.success"), percent_text(b.success_rate, cat)),
        (cat("bl.p50"), seconds_text(b.latency.p50_s, cat)),
        (cat("bl.p99"), seconds_text(b.latency.p99_s, cat)),
        (cat("bl.max"), seconds_text(b.latency.max_s, cat)),
        (cat("bl.throughput"), f"{b.throughput_rps:.2f}" if b.throughput_rps is not None else cat("none")),
        (cat("bl.healthy"), cat.sep("slash").join((str(b.healthy_windows), str(b.windows)))),
        (cat("bl.steady_met"), _yes_no(b.met_steady_state, cat)),
        (cat("col.resolution"), cat("bl.resolution", window=seconds_text(a.window_s, cat),
                                    step=seconds_text(a.step_s, cat))),
    ]
    return Section("baseline", cat("sec.baseline"), [{"kind": "kv", "rows": rows}])


def _event_text(e: Any, a: Analysis, cat: Catalogue) -> str:
    key = f"ev.{e.what}"
    if e.kind == "phase":
        phase = f"phase.{e.detail}"
        return cat(key, detail=cat(phase) if cat.has(phase) else e.detail)
    if e.what == "recovered":
        return cat(key, hold=seconds_text(a.hold_s, cat)) + cat.sep("sentence") + cat("ev.derived")
    if e.derived:
        return cat(key) + cat.sep("sentence") + cat("ev.derived")
    return cat(key) if cat.has(key) else cat("ev.other", kind=e.what)


_JOURNAL_TEXT = ("decision", "note", "cleanup", "end")
"""Timeline events whose detail is text the harness or the system journalled."""


def _signal_text(signal: str, cat: Catalogue) -> str:
    """How detection was seen (``not ready; alert: a, b``), in the report's language."""
    parts = []
    for part in filter(None, signal.split("; ")):
        if part == "not ready":
            parts.append(cat("sig.not_ready"))
        elif part.startswith("alert: "):
            parts.append(cat("sig.alert", names=part.removeprefix("alert: ")))
        else:
            parts.append(verbatim(part))
    return cat.sep("list").join(parts)


def _event_detail(e: Any, a: Analysis, cat: Catalogue) -> str:
    if e.kind == "phase":
        return ""
    if e.what == "detected":
        return _signal_text(e.detail, cat)
    if e.kind == "integrity" and a.integrity is not None:
        violations = sum(len(v.get("ids") or []) or 1 for v in a.integrity.violations)
        return cat("ev.integrity.detail", acknowledged=a.integrity.acknowledged if a.integrity.acknowledged
                   is not None else cat("none"), violations=violations)
    if e.kind == "end":
        status, _, reason = e.detail.partition(" ")
        key = f"status.{status}"
        return " ".join(part for part in (cat(key) if cat.has(key) else verbatim(status), verbatim(reason)) if part)
    return verbatim(e.detail) if e.kind in _JOURNAL_TEXT else e.detail


def _timeline(a: Analysis, cat: Catalogue) -> Section:
    if not a.timeline:
        return Section("timeline", cat("sec.timeline"), [{"kind": "p", "text": cat("tl.none")}])
    rows = [[f"{e.t:.3f}", e.wall or cat("none"), _event_text(e, a, cat), _event_detail(e, a, cat)]
            for e in a.timeline]
    return Section("timeline", cat("sec.timeline"), [{
        "kind": "table",
        "headers": [cat("col.t"), cat("col.wall"), cat("col.event"), cat("col.detail")],
        "rows": rows,
        "ok": [e.ok for e in a.timeline],
    }])


def _stats_row(label: str, s: LatencyStats, cat: Catalogue) -> list[str]:
    return [label, str(s.count), seconds_text(s.p50_s, cat), seconds_text(s.p99_s, cat), seconds_text(s.max_s, cat)]


def _impact_rows(rows: Sequence[ImpactCounts], cat: Catalogue, late: bool) -> list[list[str]]:
    return [[cat(f"src.{r.source}"), str(r.sent), str(r.ok), str(r.rejected), str(r.failed), str(r.delayed),
             *([str(r.late)] if late else [])] for r in rows]


def _results(a: Analysis, cat: Catalogue) -> Section:
    hold = seconds_text(a.hold_s, cat)
    eb = a.error_budget
    blocks: list[dict[str, Any]] = [
        {"kind": "p", "text": cat("res.intro", window=seconds_text(a.window_s, cat), step=seconds_text(a.step_s, cat))},
        {"kind": "h", "text": cat("res.times")},
    ]
    journal_point = lambda t: Measure(t, "s", None, "journal", "measured" if t is not None else "not_measured")  # noqa: E731
    measures: list[tuple[str, Measure, bool, dict[str, Any]]] = [
        ("m.t_inject", journal_point(a.t_inject), True, {}),
        ("m.impact_start", a.impact_start, True, {}),
        ("m.detection", a.detection, False, {}),
        ("m.recovery_point", a.recovery_point, True, {"hold": hold}),
        ("m.t_clear", journal_point(a.t_clear), True, {}),
        ("m.rto_inject", a.rto_from_inject, False, {}),
        ("m.rto_clear", a.rto_from_clear, False, {}),
        ("m.impact_duration", a.impact_duration, False, {}),
        ("m.backlog", a.backlog_drain, False, {}),
        ("m.data_loss", a.data_loss, False, {}),
        ("m.error_budget", eb.consumed, False, {"failures": eb.failures, "requests": eb.requests}),
    ]
    blocks.append({
        "kind": "table",
        "headers": [cat("col.measure"), cat("col.value"), cat("col.resolution"), cat("col.definition")],
        "rows": [[cat(key), _point(m, cat) if is_point else measure_text(m, cat), resolution_text(m, cat),
                  cat(f"{key}.def", **params)] for key, m, is_point, params in measures],
    })
    blocks.append({"kind": "charts"})

    blocks.append({"kind": "h", "text": cat("res.integrity")})
    if a.integrity is None:
        blocks.append({"kind": "p", "text": cat("int.none")})
    else:
        acknowledged = a.integrity.acknowledged
        blocks.append({"kind": "p", "text": cat("int.acknowledged",
                                                n=acknowledged if acknowledged is not None else cat("none"))})
        rows, oks = [], []
        judged = {v.target: v for v in a.verdicts}
        for check in a.declaration.check_names:
            v = judged.get(check)
            if v is None:  # declared, not run, no target on it: say so, claim nothing
                rows.append([target_label(check, cat), cat("mstatus.not_checked"), cat("none"), cat("none"),
                             cat("none")])
                oks.append(True)
                continue
            ids = [str(i) for viol in violations_for(a.integrity, check) for i in viol.get("ids") or []]
            rows.append([target_label(check, cat), measure_text(v.measured, cat), target_text(v, cat),
                         outcome_text(v, cat), cat.sep("comma").join(ids) or cat("none")])
            oks.append(v.met)
        blocks.append({"kind": "table",
                       "headers": [cat(f"col.{key}") for key in ("check", "count", "target", "verdict", "ids")],
                       "rows": rows, "ok": oks})
        blocks += _integrity_detail(a, cat)

    ci = a.customer_impact
    limit = seconds_text(ci.delayed_threshold_s, cat)
    late_limit = a.steady_state.get("completion_delay_max_s")
    headers = [cat("col.source_req"), cat("col.sent"), cat("col.ok"), cat("col.rejected"), cat("col.failed"),
               cat("col.delayed", limit=limit)]
    if late_limit is not None:
        headers.append(cat("col.late", limit=seconds_text(late_limit, cat)))
    blocks += [
        {"kind": "h", "text": cat("res.impact")},
        {"kind": "p", "text": cat("imp.whole"), "strong": True},
        {"kind": "table", "headers": headers, "rows": _impact_rows(ci.whole_run, cat, late_limit is not None)},
        {"kind": "p", "text": cat("imp.during"), "strong": True},
    ]
    if a.impact_start.measured:
        blocks.append({"kind": "table", "headers": headers,
                       "rows": _impact_rows(ci.during_impact, cat, late_limit is not None)})
    else:
        blocks.append({"kind": "p", "text": cat("imp.none")})

    blocks.append({"kind": "h", "text": cat("res.exec")})
    ed = a.completion_delay
    if ed.recorded:
        blocks.append({"kind": "table",
                       "headers": [cat("col.period"), cat("col.count"), cat("col.p50"), cat("col.p99"), cat("col.max")],
                       "rows": [_stats_row(cat("period.before"), ed.before, cat),
                                _stats_row(cat("period.during"), ed.during, cat),
                                _stats_row(cat("period.after"), ed.after, cat)]})
    else:
        blocks.append({"kind": "p", "text": cat("exec.none")})

    blocks += _alerts(a, cat)
    blocks.append({"kind": "h", "text": cat("res.jobs")})
    if a.jobs:
        blocks.append({"kind": "table",
                       "headers": [cat("col.job"), cat("col.started"), cat("col.finished"), cat("col.duration"),
                                   cat("col.window"), cat("col.within"), cat("col.deadline"), cat("col.margin")],
                       "rows": [[j.job, _t(j.started_t, cat), _t(j.finished_t, cat), seconds_text(j.duration_s, cat),
                                 seconds_text(j.window_s, cat), _yes_no(j.within_window, cat),
                                 _deadline(j, cat), seconds_text(j.margin_s, cat)] for j in a.jobs],
                       "ok": [bool(j.ok and j.within_window is not False and (j.margin_s is None or j.margin_s >= 0))
                              for j in a.jobs]})
    else:
        blocks.append({"kind": "p", "text": cat("jobs.none")})
    return Section("results", cat("sec.results"), blocks)


def _integrity_detail(a: Analysis, cat: Catalogue) -> list[dict[str, Any]]:
    """Where the requests ended up, each violation in a sentence naming the id and its times,
    and whether the check can be re-performed from the package."""
    result = a.integrity
    assert result is not None
    blocks: list[dict[str, Any]] = [{"kind": "p", "text": cat("int.state", state=result.state) if result.state
                                     else cat("int.live")}]

    def outcome_rows(counts: dict[str, int]) -> list[list[str]]:
        return [[a.declaration.outcome_label(name, cat.lang) if name != "absent" else cat("int.absent"), str(n)]
                for name, n in sorted(counts.items(), key=lambda kv: -kv[1])]

    acknowledged = result.outcomes.get("acknowledged") or {}
    if acknowledged:
        blocks.append({"kind": "p", "text": cat("int.outcomes"), "strong": True})
        blocks.append({"kind": "table", "headers": [cat("col.outcome"), cat("col.count")],
                       "rows": outcome_rows(acknowledged), "ok": [True] * len(acknowledged)})
    if result.attempted:
        blocks.append({"kind": "p", "text": cat("int.attempted", n=result.attempted)})
        attempted = result.outcomes.get("attempted") or {}
        blocks.append({"kind": "table", "headers": [cat("col.outcome"), cat("col.count")],
                       "rows": outcome_rows(attempted)})
    sentences = []
    for violation in result.violations:
        label = target_label(str(violation.get("check", "")), cat)
        for i in [str(x) for x in violation.get("ids") or []] or [cat("none")]:
            times = result.ack_times.get(i)
            detail = verbatim(violation.get("detail")) or cat("none")
            if times is None:
                sentences.append(cat("int.violation_untimed", check=label, id=i, detail=detail))
            else:
                sentences.append(cat("int.violation", check=label, id=i, sent=f"{times[0]:.3f}",
                                     answered=f"{times[1]:.3f}", wall=wall_time_text(a, times[1]), detail=detail))
    if sentences:
        blocks.append({"kind": "p", "text": cat("int.violations"), "strong": True})
        blocks.append({"kind": "list", "items": sentences[:200]})
    return blocks


def wall_time_text(a: Analysis, t: float) -> str:
    """The UTC wall-clock time of run time ``t`` (``10:00:21.302``), or a dash."""
    if not a.origin_wall:
        return "—"
    try:
        origin = datetime.fromisoformat(a.origin_wall).astimezone(UTC)
    except ValueError:
        return "—"
    return (origin + timedelta(seconds=t)).strftime("%H:%M:%S.%f")[:-3] + " UTC"


def _alerts(a: Analysis, cat: Catalogue) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [{"kind": "h", "text": cat("res.alerts")}]
    if not a.alerts:
        return [*blocks, {"kind": "p", "text": cat("alerts.none")}]
    intake = a.declaration.monitor.intake_alert
    for span in a.alerts:
        if span.name == intake:
            end = span.cleared_t if span.cleared_t is not None else a.last_t
            blocks.append({"kind": "p", "strong": True, "text": cat(
                "alerts.intake", start=seconds_text(span.raised_t, cat),
                end=seconds_text(span.cleared_t, cat) if span.cleared_t is not None else cat("alerts.still"),
                length=seconds_text((end or span.raised_t) - span.raised_t, cat))})
    blocks.append({"kind": "table",
                   "headers": [cat("col.alert"), cat("col.raised"), cat("col.cleared_alert"), cat("col.duration")],
                   "rows": [[s.name, _t(s.raised_t, cat),
                             _t(s.cleared_t, cat) if s.cleared_t is not None else cat("alerts.still"),
                             seconds_text(s.cleared_t - s.raised_t, cat) if s.cleared_t is not None else cat("none")]
                            for s in a.alerts]})
    return blocks


def _deadline_name(raw: Any, cat: Catalogue) -> str:
    """What happens at a job's deadline, in the report's language (as the stack file names it)."""
    return local_text(raw, cat) or cat("jobs.no_name")


def _deadline(job: Any, cat: Catalogue) -> str:
    if job.deadline_t is None:
        return cat("none")
    return cat("jobs.deadline", deadline=_deadline_name(job.deadline_name, cat), t=_t(job.deadline_t, cat))


def _deviation_text(d: Any, cat: Catalogue) -> str:
    params = _quoted(_timed(dict(d.params), cat))
    params.setdefault("reason", "")
    return cat(f"dev.{d.kind}", **params)


def _deviations(a: Analysis, cat: Catalogue) -> Section:
    blocks: list[dict[str, Any]] = []
    if a.deviations:
        blocks.append({"kind": "table", "headers": [cat("col.t"), cat("col.what")],
                       "rows": [[_t(d.t, cat), _deviation_text(d, cat)] for d in a.deviations],
                       "ok": [d.kind in ("slip", "journal_problem", "warning") for d in a.deviations]})
    else:
        blocks.append({"kind": "p", "text": cat("dev.none")})
    blocks.append({"kind": "h", "text": cat("dev.reverts")})
    if a.faults:
        def result(f: Any) -> str:
            if f.revert_failed:
                return cat("revert.failed")
            return cat("revert.ok") if f.reverted_t is not None else cat("revert.missing")
        blocks.append({"kind": "table",
                       "headers": [cat("col.fault"), cat("col.kind"), cat("col.active"), cat("col.cleared"),
                                   cat("col.revert_plan"), cat("col.result")],
                       "rows": [[f.fault_id, f.kind, _t(f.active_t, cat), _t(f.reverted_t, cat),
                                 verbatim(f.revert_plan) or cat("none"), result(f)] for f in a.faults],
                       "ok": [not f.revert_failed and f.reverted_t is not None for f in a.faults]})
    else:
        blocks.append({"kind": "p", "text": cat("sc.no_faults")})
    blocks.append({"kind": "h", "text": cat("dev.cleanup")})
    if a.cleanup:
        blocks.append({"kind": "table", "headers": [cat("col.t"), cat("col.what"), cat("col.result")],
                       "rows": [[_t(c.get("t"), cat), verbatim(c.get("what")),
                                 cat("cleanup.ok") if c.get("ok") else cat("cleanup.failed")] for c in a.cleanup],
                       "ok": [bool(c.get("ok")) for c in a.cleanup]})
    else:
        blocks.append({"kind": "p", "text": cat("cleanup.none")})
    return Section("deviations", cat("sec.deviations"), blocks)


def _findings(a: Analysis, cat: Catalogue, plan: dict[str, Any]) -> Section:
    if not a.findings:
        return Section("findings", cat("sec.findings"), [{"kind": "p", "text": cat("find.none")}])
    owners: dict[str, Any] = plan["owners"] if isinstance(plan.get("owners"), dict) else {}
    rows = []
    for f in a.findings:
        subject = f.params.get("target", f.kind)
        owner = local_text(owners.get(subject) or owners.get("default"), cat) or cat("owner.tbd")
        rem = cat("rem.target_missed") if f.kind == "target_missed" else cat("rem.default")
        rows.append([f.id, cat(f"sev.{f.severity}"), finding_text(f, a, cat), rem, owner])
    return Section("findings", cat("sec.findings"), [{
        "kind": "table",
        "headers": [cat("col.id"), cat("col.severity"), cat("col.finding"), cat("col.remediation"), cat("col.owner")],
        "rows": rows,
    }])


_RECORDED = " (recorded by the run)"


def _tool_name(name: str, cat: Catalogue) -> str:
    """A tool of :func:`~faultlab.report.manifest.tool_versions` in the report's language."""
    if name.endswith(_RECORDED):
        return cat("app.tool_recorded", tool=name.removesuffix(_RECORDED))
    return name


def _appendices(a: Analysis, cat: Catalogue, evidence: Sequence[EvidenceFile], tools: dict[str, str],
                digest: str) -> Section:
    blocks: list[dict[str, Any]] = [
        {"kind": "p", "text": cat("app.manifest_note")},
        {"kind": "h", "text": cat("app.evidence")},
        {"kind": "table", "headers": [cat("col.file"), cat("col.size"), cat("col.sha")],
         "rows": [[e.path, str(e.size), e.sha256] for e in evidence]},
        {"kind": "p", "text": cat("app.digest", digest=digest)},
        {"kind": "h", "text": cat("app.tools")},
        {"kind": "table", "headers": [cat("col.tool"), cat("col.version")],
         "rows": [[_tool_name(k, cat), v] for k, v in tools.items()]},
    ]
    if a.problems:
        blocks += [{"kind": "h", "text": cat("app.problems")},
                   {"kind": "list", "items": [verbatim(p) for p in a.problems]}]
    return Section("appendices", cat("sec.appendices"), blocks)


def build_document(
    analysis: Analysis,
    lang: str = "en",
    *,
    plan_info: dict[str, Any] | None = None,
    evidence: Sequence[EvidenceFile] = (),
    tools: dict[str, str] | None = None,
    generated: str | None = None,
) -> Document:
    """Lay out the report of ``analysis`` in ``lang`` (sections follow auditors.md)."""
    cat = Catalogue(lang, analysis.declaration)
    plan = dict(plan_info or {})
    a = analysis
    generated = generated or datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    digest = listing_sha256((e.path, e.sha256) for e in evidence)
    banners = []
    if a.crashed:
        banners.append({"level": "danger", "text": cat("banner.crashed")})
    elif a.status != "completed":
        banners.append({"level": "danger",
                        "text": cat("banner.status", status=_status(a, cat), reason=verbatim(a.end_reason))})
    sections = [
        _identification(a, cat, plan, generated, digest),
        _summary(a, cat),
        _scope(a, cat, plan),
        _scenario(a, cat, plan),
        _targets(a, cat),
        participants_section(cat, plan),
        _baseline(a, cat),
        _timeline(a, cat),
        _results(a, cat),
        _deviations(a, cat),
        _findings(a, cat, plan),
        _appendices(a, cat, evidence, tools or {}, digest),
    ]
    for number, section in enumerate(sections, start=1):
        section.title = f"{number}. {section.title}"
    title = cat("report.title", scenario_id=a.scenario.get("id", "?"),
                 scenario_title=local_text(a.scenario.get("title"), cat))
    return Document(lang=lang, title=title, banners=banners, sections=sections, declaration=a.declaration,
                    run_id=a.run_id, evidence_digest=digest)
