"""JSON Schemas (draft 2020-12) of the three documents, generated from the models.

Editors use them to complete and check the files; ``faultlab schema --out schemas`` writes
them, and a test keeps the committed copies in ``schemas/`` in step with the models. A
timeline fault entry is checked against its kind's parameters through ``if``/``then`` on
``fault``, built from the fault-kind registry (plugins' kinds included).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from typing import Any

from faultlab.model import DrillPlan, Scenario, Stack
from faultlab.model.operators import OperatorScript
from faultlab.model.runbook import Runbook

__all__ = ["KINDS", "FILE_NAMES", "document_schema", "all_schemas", "render"]

DRAFT = "https://json-schema.org/draft/2020-12/schema"

KINDS = ("stack", "scenario", "plan", "runbook", "operators")
"""The document kinds, as ``faultlab schema --kind`` names them."""

FILE_NAMES = {
    "stack": "stack.schema.json",
    "scenario": "scenario.schema.json",
    "plan": "drill-plan.schema.json",
    "runbook": "runbook.schema.json",
    "operators": "operator-script.schema.json",
}
"""The file each schema is committed as, under ``schemas/``."""

_TITLES = {
    "stack": "faultlab stack",
    "scenario": "faultlab scenario",
    "plan": "faultlab drill plan",
    "runbook": "faultlab runbook",
    "operators": "faultlab operator script",
}


def _fault_step_schema(base: dict[str, Any], kinds: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    core = {key: value for key, value in base["properties"].items() if key != "params"}
    names = []
    branches = []
    for name, kind in kinds:
        names.append(name)
        params = kind.Params.model_json_schema()
        if "$defs" in params:
            raise ValueError(f"fault kind {name}: parameter models must not need $defs")
        properties = {
            "at": core["at"],
            "fault": {"const": name},
            "target": copy.deepcopy(core["target"]),
        }
        required = ["at", "fault"]
        if set(kind.target_types) != {"stack"}:
            properties["target"] = properties["target"]["anyOf"][0] | {
                "description": "a " + " or ".join(sorted(kind.target_types)) + " of the stack"
            }
            required.append("target")
        else:
            properties["target"]["description"] = "the stack's name, or leave it out"
        if kind.needs_for:
            properties["for"] = core["for"]["anyOf"][0] | {"description": core["for"]["description"]}
            required.append("for")
        properties |= params.get("properties", {})
        required += [key for key in params.get("required", []) if key not in required]
        branches.append(
            {
                "if": {"properties": {"fault": {"const": name}}, "required": ["fault"]},
                "then": {
                    "description": kind.summary,
                    "properties": properties,
                    "required": required,
                    "additionalProperties": False,
                },
            }
        )
    return {
        "type": "object",
        "title": "FaultStep",
        "description": "{at, fault, target, for?, <that fault kind's parameters inline>}",
        "required": ["at", "fault"],
        "properties": {
            "fault": {"enum": names, "description": "the fault kind (see `faultlab kinds`)"},
            "at": core["at"],
        },
        "allOf": branches,
    }


def _close_pattern_maps(node: Any) -> None:
    # pydantic writes dict[Name, X] as patternProperties but lets other keys through;
    # the model refuses them, so the schema must too.
    if isinstance(node, dict):
        if "patternProperties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            _close_pattern_maps(value)
    elif isinstance(node, list):
        for value in node:
            _close_pattern_maps(value)


def document_schema(kind: str, fault_kinds: Iterable[tuple[str, Any]] | None = None) -> dict[str, Any]:
    """The JSON Schema of one document kind (``stack``, ``scenario`` or ``plan``).

    ``fault_kinds`` defaults to every kind in the registry, as ``(name, class)`` pairs.
    """
    if kind == "stack":
        from faultlab.registry import runtimes

        schema = Stack.model_json_schema()
        runtime = schema["properties"]["runtime"]
        runtime["enum"] = runtimes.names()  # the registered runtimes, as `fault:` lists the kinds
        runtime.pop("pattern", None)
        runtime.pop("maxLength", None)
        runtime.pop("minLength", None)
    elif kind == "plan":
        schema = DrillPlan.model_json_schema()
    elif kind == "runbook":
        schema = Runbook.model_json_schema()
    elif kind == "operators":
        schema = OperatorScript.model_json_schema()
    elif kind == "scenario":
        if fault_kinds is None:
            from faultlab.registry import fault_kinds as registry

            fault_kinds = registry.items()
        schema = Scenario.model_json_schema()
        schema["$defs"]["FaultStep"] = _fault_step_schema(schema["$defs"]["FaultStep"], fault_kinds)
    else:
        raise ValueError(f"unknown document kind {kind!r}; known: {', '.join(KINDS)}")
    _close_pattern_maps(schema)
    return {"$schema": DRAFT, "title": _TITLES[kind], **{k: v for k, v in schema.items() if k != "title"}}


def all_schemas(fault_kinds: Iterable[tuple[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Every schema by its file name (``scenario.schema.json`` ...)."""
    kinds = list(fault_kinds) if fault_kinds is not None else None
    return {FILE_NAMES[kind]: document_schema(kind, kinds) for kind in KINDS}


def render(schema: dict[str, Any]) -> str:
    """The schema as committed: indented JSON with a final newline."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
