"""Telling the documents apart: a stack, a scenario, a drill plan or a programme."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from faultlab.model import DrillPlan, Scenario, Stack
from faultlab.model.programme import Programme

__all__ = ["document_kind", "KIND_WORDS"]

KIND_WORDS = {"stack": "a stack file", "scenario": "a scenario", "plan": "a drill plan", "programme": "a programme"}
"""Each kind as messages name it."""

_MODELS: tuple[tuple[str, type[BaseModel]], ...] = (("scenario", Scenario), ("stack", Stack), ("plan", DrillPlan),
                                                   ("programme", Programme))
_MARKERS = (("scenario", "timeline"), ("stack", "services"), ("plan", "scenarios"), ("programme", "operations"))
_FOLDERS = {"stacks": "stack", "scenarios": "scenario", "drills": "plan"}


def _field_names(model: type[BaseModel]) -> set[str]:
    return {info.alias or name for name, info in model.model_fields.items()}


def document_kind(data: Any, path: Path | None = None) -> str | None:
    """``stack``, ``scenario``, ``plan``, ``programme``, or None, judged by the keys (then by the folder)."""
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
