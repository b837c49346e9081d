"""The report's drill-programme sections: the runbook as carried out against the runbook as
documented, the decisions, the communication, and the people (planned against actual)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from faultlab.analysis import Analysis
from faultlab.report.format import measure_text, seconds_text
from faultlab.report.messages import Catalogue

__all__ = ["runbook_section_blocks", "decision_blocks", "communication_blocks", "people_blocks", "approval_blocks"]


def _text(value: Mapping[str, Any] | None, cat: Catalogue) -> str:
    if not value:
        return cat("none")
    return str(value.get(cat.lang) or value.get("en") or cat("none"))


def _t(t: float | None, cat: Catalogue) -> str:
    return cat("none") if t is None else f"{t:.3f}"


def _sec(value: float | None, cat: Catalogue) -> str:
    return seconds_text(value, cat)


def _word(cat: Catalogue, key: str, fallback: str) -> str:
    return cat(key) if cat.has(key) else fallback


def runbook_section_blocks(a: Analysis, cat: Catalogue) -> list[dict[str, Any]]:
    """The runbook as documented and as carried out, step by step."""
    p = a.programme
    rb = p.runbook if p is not None else None
    if rb is None:
        return [{"kind": "p", "text": cat("rb.none")}]
    status = cat(f"rb.status.{rb.status}", reason=rb.reason or cat("none"))
    rows = [
        (cat("rb.id"), f"{rb.id} — {_text(rb.title, cat)}"),
        (cat("rb.version"), rb.version or cat("none")),
        (cat("rb.sha"), rb.sha256 or cat("none")),
        (cat("rb.file"), rb.file or cat("none")),
        (cat("rb.owner"), rb.owner or cat("none")),
        (cat("rb.mode"), _word(cat, f"mode.{p.mode}", p.mode) if p is not None and p.mode else cat("none")),
        (cat("rb.trigger"), f"t = {_t(rb.started_t, cat)}: {rb.trigger}" if rb.started_t is not None else cat("none")),
        (cat("rb.status"), status),
        (cat("rb.duration"), measure_text(rb.duration, cat)),
    ]
    steps = []
    ok = []
    for number, s in enumerate(rb.steps, start=1):
        kind = cat(f"kind.{s.kind}") + (f" · {cat('four_eyes')}" if s.four_eyes else "")
        deviations = "; ".join(_word(cat, f"stepdev.{d}", d) for d in s.deviations) or cat("none")
        steps.append([
            f"{number}. {s.id} — {_text(s.title, cat)}", kind, _sec(s.expect_s, cat),
            _t(s.started_t, cat), _t(s.counted_done_t or s.done_t, cat), _sec(s.duration_s, cat),
            s.done_by or s.started_by or cat("none"),
            (f"{s.confirmed_by} (t = {s.confirmed_t:.3f})" if s.confirmed_by and s.confirmed_t is not None
             else cat("none")),
            cat(f"step.status.{s.status}"), deviations,
        ])
        ok.append(s.status == "done" and not s.deviations)
    return [
        {"kind": "p", "text": cat("rb.intro")},
        {"kind": "h", "text": cat("rb.document")},
        {"kind": "kv", "rows": rows},
        {"kind": "table",
         "headers": [cat("col.step"), cat("col.step_kind"), cat("col.expect"), cat("col.started"),
                     cat("col.finished"), cat("col.took"), cat("col.actor"), cat("col.confirmer"),
                     cat("col.status"), cat("col.deviation")],
         "rows": steps, "ok": ok},
    ]


def _values(values: Mapping[str, Any]) -> str:
    return json.dumps(values, ensure_ascii=False, sort_keys=True, default=str)


def decision_blocks(a: Analysis, cat: Catalogue) -> list[dict[str, Any]]:
    """Every decision rule that triggered, with its trigger values, time and who decided."""
    p = a.programme
    if p is None or not p.decisions:
        blocks: list[dict[str, Any]] = [{"kind": "p", "text": cat("dec.none")}]
    else:
        rows, ok = [], []
        for d in p.decisions:
            by = d.by if d.by and d.by != "rule" else cat("dec.by_rule") if d.status == "decided" else cat("none")
            rows.append([f"{d.id}: {d.rule}", _t(d.since_t, cat) + " → " + _t(d.triggered_t, cat),
                         _t(d.decided_t, cat), measure_text(d.time_to_decision, cat), by,
                         _values(d.values), ", ".join(d.actions) or cat("none"), cat(f"dec.status.{d.status}")])
            ok.append(d.status == "decided")
        blocks = [{"kind": "p", "text": cat("dec.intro")},
                  {"kind": "table", "headers": [cat("col.rule"), cat("col.triggered"), cat("col.decided"),
                                                cat("col.time_to_decision"), cat("col.decided_by"),
                                                cat("col.values"), cat("col.actions"), cat("col.status")],
                   "rows": rows, "ok": ok}]
    if p is not None and p.deadlines:
        blocks.append({"kind": "h", "text": cat("dl.title")})
        blocks.append({"kind": "list", "items": [cat(
            "dl.row", job=d.job, name=_text(d.deadline_name, cat) if isinstance(d.deadline_name, Mapping)
            else str(d.deadline_name or cat("none")), t=f"{d.deadline_t:.3f}", unhealthy=d.unhealthy,
            windows=d.windows, seconds=measure_text(d.unhealthy_s, cat),
            state=_word(cat, f"ev.job.{d.job_state}", d.job_state)) for d in p.deadlines]})
    return blocks


def communication_blocks(a: Analysis, cat: Catalogue) -> list[dict[str, Any]]:
    """Who was told what, by whom, when, and how long it took."""
    p = a.programme
    if p is None or not p.communications:
        return [{"kind": "p", "text": cat("com.none")}]
    rows = [[f"{c.step} — {_text(c.title, cat)}", ", ".join(c.to), _text(c.about, cat), c.channel or cat("none"),
             c.by or cat("none"), _t(c.done_t, cat), _sec(c.after_fault_s, cat), _sec(c.took_s, cat),
             cat(f"step.status.{c.status}")] for c in p.communications]
    return [{"kind": "p", "text": cat("com.intro")},
            {"kind": "table", "headers": [cat("col.step"), cat("col.to"), cat("col.about"), cat("col.channel"),
                                          cat("col.actor"), cat("col.finished"), cat("col.after_fault"),
                                          cat("col.took"), cat("col.status")],
             "rows": rows, "ok": [c.status == "done" for c in p.communications]}]


def people_blocks(a: Analysis, cat: Catalogue) -> list[dict[str, Any]]:
    """Planned against actual participation: who did and who confirmed which steps."""
    p = a.programme
    if p is None or not p.participants:
        return []
    rows = [[r.name, r.role or cat("none"), cat("yes") if r.planned else cat("part.unplanned"),
             cat("yes") if r.took_part else cat("no"), ", ".join(r.did) or cat("none"),
             ", ".join(r.confirmed) or cat("none"), ", ".join(r.decided) or cat("none")] for r in p.participants]
    return [{"kind": "p", "text": cat("part.planned_actual"), "strong": True},
            {"kind": "table", "headers": [cat("col.name"), cat("col.role"), cat("col.planned_p"), cat("col.attended"),
                                          cat("col.did"), cat("col.confirmed"), cat("col.decisions_taken")],
             "rows": rows, "ok": [r.took_part or not r.planned for r in p.participants]}]


def approval_blocks(plan: Mapping[str, Any], cat: Catalogue) -> list[dict[str, Any]]:
    """The approvals checked before the plan started (signed, pinned to its files' hashes)."""
    verified = plan.get("verified_approvals") or []
    if not verified:
        return []
    rows = [[str(v.get("role", "")), str(v.get("name", "")), str(v.get("approved_at", "")),
             str(v.get("key_id", ""))[:16], str(v.get("pinned", ""))[:16] + "…", cat("part.approved_ok")]
            for v in verified]
    return [{"kind": "p", "text": cat("part.approved"), "strong": True},
            {"kind": "table", "headers": [cat("col.role"), cat("col.name"), cat("col.approved_at"), cat("col.key"),
                                          cat("col.pinned"), cat("col.result")], "rows": rows}]
