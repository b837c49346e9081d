"""Field types shared by the documents and the fault parameters: values with units, names.

Each type parses with the one parser in :mod:`faultlab.units` and carries its JSON Schema,
so editors check the unit as the loader does.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainValidator, StringConstraints, WithJsonSchema

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
    "NAME_PATTERN",
    "as_written",
]

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class StrictModel(BaseModel):
    """Base of every document model: unknown keys are errors, values are not coerced silently."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_default=True)


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

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=64)]
"""The name of a service, link or job: letters, digits, ``_``, ``.``, ``-``."""
