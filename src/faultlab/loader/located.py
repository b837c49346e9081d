"""Pydantic's validation errors as located problems, each saying what is wrong in words.

A pydantic error carries a ``loc`` in the model's terms (union tags such as ``fault-step``,
``[key]`` for a mapping key); :func:`located` maps it onto the document's own path and the
position the parser recorded, and :func:`message` words it for the person who wrote the file.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from faultlab.errors import Problem
from faultlab.loader.positions import Loc, Parsed, short
from faultlab.model import DrillPlan, Scenario, Stack
from faultlab.model.operators import OperatorScript
from faultlab.model.programme import Programme
from faultlab.model.runbook import Runbook
from faultlab.model.types import describe
from faultlab.registry import unknown_name_message

__all__ = ["located", "message", "known_keys", "validate", "KIND_NAMES"]

KIND_NAMES: dict[type[BaseModel], str] = {Stack: "stack", Scenario: "scenario", DrillPlan: "drill plan",
                                          Runbook: "runbook", OperatorScript: "operator script", Programme: "programme"}
"""Each document model as messages name it."""


def _unwrap(tp: Any) -> Any:
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    return tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _union_member(members: tuple[Any, ...], part: Any) -> Any:
    for member in members:
        if get_origin(member) is Annotated and any(
            getattr(meta, "tag", None) == part for meta in get_args(member)[1:]
        ):
            return get_args(member)[0]
    for member in members:
        found = _step_type(member, part)
        if found is not None:
            return found
    return None


def _step_type(tp: Any, part: Any) -> Any:
    """The type found at ``part`` inside a value of type ``tp`` (for naming known keys)."""
    tp = _unwrap(tp)
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        return _union_member(get_args(tp), part)
    if _is_model(tp):
        for name, info in tp.model_fields.items():
            if part in (name, info.alias):
                return info.annotation
        return None
    if origin is list and isinstance(part, int):
        return get_args(tp)[0]
    if origin is dict:
        return get_args(tp)[0] if part == "[key]" else get_args(tp)[1]
    return None


def known_keys(model: Any, loc: Loc) -> list[str] | None:
    """The keys allowed at ``loc`` (a pydantic loc) inside ``model``, or None if not a model."""
    tp: Any = model
    for part in loc:
        tp = _step_type(tp, part)
        if tp is None:
            return None
    tp = _unwrap(tp)
    if get_origin(tp) in (Union, types.UnionType):
        tp = next((m for m in map(_unwrap, get_args(tp)) if _is_model(m)), None)
    if _is_model(tp):
        return [info.alias or name for name, info in tp.model_fields.items()]
    return None


def _data_path(data: Any, loc: Loc) -> Loc:
    """The part of a pydantic loc that names places in the document.

    Union tags such as ``fault-step`` are in pydantic's loc but not in the document, so
    they are dropped; a missing key (the last part) is kept.
    """
    path: list[Any] = []
    current = data
    for i, part in enumerate(loc):
        if (isinstance(current, dict) and part in current) or (
            isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)
        ):
            current = current[part]
        elif not (i == len(loc) - 1 and isinstance(part, str) and part != "[key]"):
            continue
        path.append(part)
    return tuple(path)


def _literal_message(error: ErrorDetails) -> str:
    expected = re.findall(r"'([^']*)'|(\d+|True|False)", error.get("ctx", {}).get("expected", ""))
    options = [a or b for a, b in expected]
    loc = error["loc"]
    names = [part for part in loc if isinstance(part, str)]
    what = names[-1] if names else "value"
    value = error.get("input")
    if options == ["True"]:  # Literal[True]: a switch that is either on or left out
        rather = f" (leave `{what}` out rather than set it to false)" if value is False else ""
        return f"expected true, got {describe(value)}{rather}"
    if loc and isinstance(loc[-1], int) and what.endswith("s"):
        what = what[:-1]  # one entry of a list: "languages" -> "language"
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return unknown_name_message(what, value, options)
    return f"expected one of {', '.join(options)}; got {describe(value)}"


def _quote_hint(value: Any) -> str:
    if isinstance(value, bool):
        return f" (quote it, '{str(value).lower()}', to make it text)"
    if isinstance(value, (int, float)):
        return f" (quote it, '{value}', to make it text)"
    return ""


def _length(value: Any, ctx: dict[str, Any]) -> int:
    """How many entries ``value`` has: pydantic's count when it gives one (2.14 may leave
    ``actual_length`` as None), else counted here."""
    actual = ctx.get("actual_length")
    return actual if isinstance(actual, int) else len(value or ())


def _too_short(value: Any, ctx: dict[str, Any]) -> str:
    least = ctx.get("min_length", 1)
    if least == 1:
        return "needs at least one entry"
    return f"needs at least {least} entries, not {_length(value, ctx)}"


def _too_long(value: Any, ctx: dict[str, Any]) -> str:
    return f"has {_length(value, ctx)} entries; at most {ctx.get('max_length')}"


def _string_too_short(value: Any, ctx: dict[str, Any]) -> str:
    least = ctx.get("min_length", 1)
    return "cannot be empty" if least == 1 else f"needs at least {least} characters"


_WHOLE = "expected a whole number, got {got}"
_NUMBER = "expected a number, got {got}"
_SWITCH = "expected true or false, got {got}"
_DATE = "expected a date like 2026-11-20, got {got}"

_WORDS: dict[str, Callable[[Any, dict[str, Any]], str]] = {
    "string_type": lambda value, ctx: f"expected text, got {describe(value)}{_quote_hint(value)}",
    **dict.fromkeys(("int_type", "int_parsing", "int_from_float", "int_parsing_size"),
                    lambda value, ctx: _WHOLE.format(got=describe(value))),
    **dict.fromkeys(("float_type", "float_parsing", "finite_number"),
                    lambda value, ctx: _NUMBER.format(got=describe(value))),
    **dict.fromkeys(("bool_type", "bool_parsing"), lambda value, ctx: _SWITCH.format(got=describe(value))),
    **dict.fromkeys(
        ("date_type", "date_parsing", "date_from_datetime_parsing", "date_from_datetime_inexact"),
        lambda value, ctx: _DATE.format(got=describe(value)),
    ),
    "list_type": lambda value, ctx: f"expected a list (one `- item` per line, or [a, b]), got {describe(value)}",
    "dict_type": lambda value, ctx: (
        f"expected a mapping (one `key: value` per line, or {{key: value}}), got {describe(value)}"
    ),
    "model_type": lambda value, ctx: f"expected a mapping of keys, got {describe(value)}",
    "path_type": lambda value, ctx: f"expected a file path, got {describe(value)}",
    "too_short": _too_short,
    "too_long": _too_long,
    "string_too_short": _string_too_short,
    "string_too_long": lambda value, ctx: f"is longer than {ctx.get('max_length')} characters",
    "greater_than_equal": lambda value, ctx: f"must be at least {ctx.get('ge')}, got {short(value)}",
    "greater_than": lambda value, ctx: f"must be more than {ctx.get('gt')}, got {short(value)}",
    "less_than_equal": lambda value, ctx: f"must be at most {ctx.get('le')}, got {short(value)}",
    "less_than": lambda value, ctx: f"must be less than {ctx.get('lt')}, got {short(value)}",
    "string_pattern_mismatch": lambda value, ctx: f"{short(value)} is not written in the form this value takes",
}
"""Pydantic's error types in words (its own messages say "Input should be a valid ...")."""


def message(error: ErrorDetails, known: list[str] | None = None) -> str:
    """One pydantic error in words: what is wrong and what would be right."""
    kind = error["type"]
    text = error["msg"]
    value = error.get("input")
    loc = error["loc"]
    if kind == "extra_forbidden":
        return unknown_name_message("key", loc[-1], known) if known else f"unknown key {short(loc[-1])}"
    if kind == "missing":
        return f"required key {loc[-1]!r} is missing"
    if kind in ("value_error", "assertion_error"):
        return re.sub(r"^(Value|Assertion) error, ", "", text)
    if kind == "literal_error":
        return _literal_message(error)
    if kind in _WORDS:
        return _WORDS[kind](value, dict(error.get("ctx", {})))
    if isinstance(value, (str, int, float, bool)) or value is None:
        return f"{text} (got {short(value)})"
    return text


def located(
    doc: Parsed,
    exc: ValidationError,
    model: Any,
    prefix: Loc = (),
    extra_known: list[str] | None = None,
) -> list[Problem]:
    """Pydantic's errors as located problems; ``extra_known`` adds keys allowed at the top."""
    problems = []
    for error in exc.errors(include_url=False):
        path = _data_path(doc.data, (*prefix, *error["loc"]))
        if doc.reported(path):
            continue
        known = None
        if error["type"] == "extra_forbidden":
            known = known_keys(model, tuple(error["loc"][:-1]))
            if known is not None and extra_known and not error["loc"][:-1]:
                known = [*extra_known, *known]
        at_key = error["type"] == "extra_forbidden" or isinstance(error.get("input"), (dict, list))
        problems.append(doc.problem(path, message(error, known), at_key=at_key))
    return problems


def validate(doc: Parsed, model: type[BaseModel], base_dir: Path) -> Any:
    """``model`` validated from the document (paths relative to ``base_dir``), or None.

    Every problem found goes into ``doc.problems``.
    """
    if not isinstance(doc.data, dict):
        doc.add((), f"expected a mapping of keys (a {KIND_NAMES[model]}), got {describe(doc.data)}")
        return None
    try:
        return model.model_validate(doc.data, context={"base_dir": base_dir})
    except ValidationError as exc:
        doc.problems.extend(located(doc, exc, model))
        return None
