"""Telling the documents apart: a stack, a scenario, a drill plan, a runbook, an operator
script or a programme (and a stack's Prometheus rules file, which sits beside its stack file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from faultlab.model import DrillPlan, Scenario, Stack
from faultlab.model.operators import OperatorScript
from faultlab.model.programme import Programme
from faultlab.model.runbook import Runbook

__all__ = ["document_kind", "KIND_WORDS"]

KIND_WORDS = {"stack": "a stack file", "scenario": "a scenario", "plan": "a drill plan", "runbook": "a runbook",
              "operators": "an operator script", "programme": "a programme", "rules": "a Prometheus rules file"}
"""Each kind as messages name it."""

_MODELS: tuple[tuple[str, type[BaseModel]], ...] = (
    ("scenario", Scenario), ("stack", Stack), ("plan", DrillPlan), ("runbook", Runbook), ("operators", OperatorScript),
    ("programme", Programme))
_MARKERS = (("scenario", "timeline"), ("stack", "services"), ("plan", "scenarios"), ("runbook", "steps"),
            ("operators", "participants"), ("programme", "operations"))
_FOLDERS = {"stacks": "stack", "scenarios": "scenario", "drills": "plan", "runbooks": "runbook",
            "operators": "operators"}


def _field_names(model: type[BaseModel]) -> set[str]:
    return {info.alias or name for name, info in model.model_fields.items()}


def document_kind(data: Any, path: Path | None = None) -> str | None:
    """``stack``, ``scenario``, ``plan``, ``runbook``, ``operators``, ``programme``, or None, judged by the keys
    (then by the folder); ``rules`` for a Prometheus rules file (``groups:`` and no document's marker)."""
    if isinstance(data, dict) and "groups" in data and not any(marker in data for _, marker in _MARKERS):
        return "rules"
    if isinstance(data, dict):
        scores = {kind: len(_field_names(model) & set(data)) for kind, model in _MODELS}
        for kind, marker in _MARKERS:
            if marker in data:
                scores[kind] += 10
        best = max(scores.values())
        leaders = [kind for kind, score in scores.items() if score == best]
        if best > 0 and len(leaders) == 1:
            return leaders[0]
    if path is not None:
        return _FOLDERS.get(path.parent.name)
    return None
