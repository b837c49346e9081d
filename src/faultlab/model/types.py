"""Field types shared by the documents and the fault parameters: values with units, names.

Each type parses with the one parser in :mod:`faultlab.units` and carries its JSON Schema,
so editors check the unit as the loader does. Text of a fixed form (names, hosts, module
names, URL paths) carries its pattern in the schema and says in words what it must look like
when it does not.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator, WithJsonSchema, model_validator

from faultlab import units

__all__ = [
    "StrictModel",
    "Duration",
    "Rate",
    "Size",
    "Bandwidth",
    "Percentage",
    "Fraction",
    "Name",
    "Identifier",
    "Host",
    "ModuleName",
    "UrlPath",
    "NAME_PATTERN",
    "Localised",
    "LocalText",
    "text_of",
    "text_json",
    "as_written",
    "describe",
    "text_of_form",
]

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


def describe(value: Any) -> str:
    """What a YAML value is, in words, for "got ...": ``a text value 'x'``, ``a number 5``, ``a list``."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"a text value {_shown(value)}"
    if isinstance(value, (int, float)):
        return f"a number {_shown(value)}"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _shown(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class StrictModel(BaseModel):
    """Base of every document model: unknown keys are errors, values are not coerced silently."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_default=True)

    @model_validator(mode="before")
    @classmethod
    def _a_mapping(cls, data: Any) -> Any:
        # Without this, pydantic says "Input should be a valid dictionary or instance of X".
        if isinstance(data, dict):
            return data
        required = [info.alias or name for name, info in cls.model_fields.items() if info.is_required()]
        if required:
            shape = "like {" + ", ".join(f"{key}: ..." for key in required) + "}"
        else:
            shape = "with any of " + ", ".join(info.alias or name for name, info in cls.model_fields.items())
        raise ValueError(f"expected a mapping {shape}, got {describe(data)}")


def as_written(text: str) -> Any:
    """A field's default given as it is written in YAML: ``hold: Duration = Field(default=as_written("5s"))``.

    The models validate their defaults, so the field's own parser reads it like any written
    value, and the JSON Schema shows it as a person would write it. (Typed ``Any``: the
    field's type is what the parser returns, not the text.)
    """
    return text


def _fraction(value: Any) -> float:
    right = "write a fraction between 0 and 1 (like 0.99) or a percentage (like '99%')"
    if isinstance(value, str):
        return units.parse_percentage(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a fraction, got {value!r}; {right}")
    if not math.isfinite(value) or not 0 <= value <= 1:
        raise ValueError(f"{value!r} is not between 0 and 1; {right}")
    return float(value)


Duration = Annotated[
    float,
    PlainValidator(units.parse_duration),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": units.DURATION_PATTERN,
            "description": "a duration with its unit: 250ms, 20s, 2m, 1h",
        }
    ),
]
"""Seconds, written with a unit (``"250ms"``, ``"20s"``, ``"2m"``)."""

Rate = Annotated[
    float,
    PlainValidator(units.parse_rate),
    WithJsonSchema(
        {"type": "string", "pattern": units.RATE_PATTERN, "description": "a rate: 20/s, 600/m"}
    ),
]
"""Events per second, written as ``"20/s"`` or ``"600/m"``."""

Size = Annotated[
    int,
    PlainValidator(units.parse_size),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": units.SIZE_PATTERN},
                {"type": "integer", "minimum": 0, "maximum": units.MAX_BYTES},
            ],
            "description": "a size: 64KB, 1MiB, or a number of bytes",
        }
    ),
]
"""Bytes, written as ``"64KB"``, ``"1MiB"`` or a whole number of bytes."""

Bandwidth = Annotated[
    int,
    PlainValidator(units.parse_bandwidth),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": units.BANDWIDTH_PATTERN,
            "description": "a bandwidth: 100KB/s, 1MB/s",
        }
    ),
]
"""Bytes per second, written as ``"100KB/s"``."""

Percentage = Annotated[
    float,
    PlainValidator(units.parse_percentage),
    WithJsonSchema(
        {"type": "string", "pattern": units.PERCENTAGE_PATTERN, "description": "a percentage: 50%"}
    ),
]
"""A fraction in 0..1, written as a percentage (``"50%"``)."""

Fraction = Annotated[
    float,
    PlainValidator(_fraction),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": 1},
                {"type": "string", "pattern": units.PERCENTAGE_PATTERN},
            ],
            "description": "a fraction 0..1 (0.99) or a percentage (99%)",
        }
    ),
]
"""A fraction in 0..1, written as ``0.99`` or ``"99%"`` (both mean the same)."""

def text_of_form(pattern: str, what: str, rule: str, max_length: int) -> Any:
    """A text type of one form: ``pattern`` (JSON Schema and check), and in words ``what`` it is
    and the ``rule`` it follows (with an example), for the message when a value is not that."""
    form = re.compile(pattern)

    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"expected {what}, got {describe(value)}: {rule}")
        if len(value) > max_length:
            raise ValueError(f"{_shown(value)} is longer than {max_length} characters, too long for {what}")
        if not form.fullmatch(value):
            raise ValueError(f"{_shown(value)} is not {what}: {rule}")
        return value

    schema = {"type": "string", "pattern": pattern, "maxLength": max_length}
    return Annotated[str, PlainValidator(check, json_schema_input_type=str), WithJsonSchema(schema)]


_NAME_RULE = "use letters, digits, '_', '.' and '-', starting with a letter or digit"

Name = text_of_form(NAME_PATTERN, "a name", f"{_NAME_RULE} (like gateway-db)", 64)
"""The name of a service, link or job: letters, digits, ``_``, ``.``, ``-``."""

Identifier = text_of_form(NAME_PATTERN, "an id", f"{_NAME_RULE} (like FT-01)", 64)
"""A scenario's id (``FT-01``): the same form as a name."""

Host = text_of_form(
    r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$",
    "a host name or IPv4 address",
    "letters, digits, '.' and '-' (like db.example.internal or 10.0.0.5)",
    253,
)
"""A host name or IPv4 address (``allow_hosts``)."""

ModuleName = text_of_form(
    r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$",
    "a Python module name",
    "dotted names of letters, digits and '_', each starting with a letter or '_' (like tradingstack.plugin)",
    200,
)
"""A Python module's dotted name (``tradingstack.plugin``)."""

UrlPath = text_of_form(r"^/.*$", "a URL path", "start it with '/' (like /health/ready)", 2000)
"""The path part of a URL on a service's port (``/health/ready``)."""

class Localised(StrictModel):
    """A text with its Japanese variant: ``{en: the service opens, ja: サービス開始}``."""

    en: str = Field(min_length=1, description="the English text")
    ja: str | None = Field(None, min_length=1, description="the Japanese text")


_LOCAL_RULE = "write a text, or {en: English text, ja: 日本語の文} (ja may be left out)"


def _local_text(value: Any) -> str | Localised:
    """A plain text or ``{en, ja}``, checked in one place so that a mistake gets one message."""
    if isinstance(value, Localised):
        return value
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("cannot be empty")
        return value
    if isinstance(value, (bool, int, float)):
        shown = str(value).lower() if isinstance(value, bool) else value
        raise ValueError(f"expected text, got {describe(value)} (quote it, '{shown}', to make it text)")
    if not isinstance(value, dict):
        raise ValueError(f"expected text, got {describe(value)}: {_LOCAL_RULE}")
    unknown = [str(key) for key in value if key not in ("en", "ja")]
    if unknown:
        raise ValueError(f"unknown language key(s) {', '.join(map(repr, unknown))}: {_LOCAL_RULE}")
    if "en" not in value:
        raise ValueError(f"the English text `en` is missing: {_LOCAL_RULE}")
    for key in ("en", "ja"):
        if key in value and (not isinstance(value[key], str) or not value[key].strip()):
            raise ValueError(f"`{key}` must be a text that is not empty, got {describe(value[key])}")
    return Localised(en=value["en"], ja=value.get("ja"))


LocalText = Annotated[
    str | Localised,
    PlainValidator(_local_text, json_schema_input_type=str | Localised),
    PlainSerializer(lambda value: text_json(value)),
    WithJsonSchema({
        "anyOf": [
            {"type": "string", "minLength": 1},
            {
                "type": "object",
                "properties": {"en": {"type": "string", "minLength": 1}, "ja": {"type": "string", "minLength": 1}},
                "required": ["en"],
                "additionalProperties": False,
            },
        ],
        "description": "a text, or {en: ..., ja: ...} so that the Japanese report has it in Japanese",
    }),
]
"""A text for the reports: plain, or ``{en: ..., ja: ...}`` (one variant per report language)."""


def text_of(value: Any, lang: str) -> str | None:
    """``value`` in ``lang``, English when there is no such variant; None stays None.

    ``value`` is a plain text, a :class:`Localised`, or its JSON form ``{"en", "ja"}`` (as
    the journal records it).
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Localised):
        return value.ja if lang == "ja" and value.ja else value.en
    if isinstance(value, dict):
        variant = value.get(lang) or value.get("en")
        return str(variant) if variant is not None else None
    return str(value)


def text_json(value: Any) -> Any:
    """A localisable text as written, for JSON: the plain text, or ``{"en", "ja"}``."""
    if isinstance(value, Localised):
        return value.model_dump(exclude_none=True)
    return value
