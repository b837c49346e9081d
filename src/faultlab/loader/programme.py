"""The programme document: its model, then the drill plan it names, loaded with its scenarios."""

from __future__ import annotations

from pathlib import Path

from faultlab.errors import Problem
from faultlab.loader.kind import KIND_WORDS, document_kind
from faultlab.loader.located import validate
from faultlab.loader.plan import plan_from
from faultlab.loader.positions import Parsed, display_path, read_document
from faultlab.model.document import relative_to_file
from faultlab.model.programme import Programme

__all__ = ["programme_from"]


def programme_from(doc: Parsed, path: Path) -> tuple[Programme | None, list[Problem]]:
    """Check a parsed programme and load the plan it names; the programme, or every problem."""
    programme = validate(doc, Programme, path.parent)
    if not isinstance(doc.data, dict):
        return None, doc.problems
    problems: list[Problem] = []
    plan = None
    value = doc.data.get("plan")
    if isinstance(value, str) and value.strip():
        plan_path = relative_to_file(value, path.parent)
        plan_doc = read_document(plan_path) if plan_path.is_file() else None
        if plan_doc is None:
            doc.add(("plan",), f"plan file not found: {display_path(plan_path)} (the path is relative to this file)")
        elif plan_doc.data is None:
            doc.add(("plan",), f"the plan {display_path(plan_path)} has problems (listed too)")
            problems.extend(plan_doc.problems)
        elif (kind := document_kind(plan_doc.data, plan_path)) not in (None, "plan"):
            doc.add(("plan",), f"{value!r} is {KIND_WORDS.get(kind or '', kind)}, not a drill plan")
        else:
            plan, found = plan_from(plan_doc, plan_path)
            if found:
                doc.add(("plan",), f"the plan {display_path(plan_path)} has problems (listed too)")
                problems.extend(found)
    problems = doc.problems + problems
    if problems or programme is None or plan is None:
        return None, problems
    programme._source = path
    programme._plan = plan
    return programme, []
