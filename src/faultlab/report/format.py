"""How figures are written in every report format, so md, html, junit and the book agree."""

from __future__ import annotations

import math

from faultlab.analysis import Measure, Verdict
from faultlab.report.messages import Catalogue

__all__ = ["seconds_text", "measure_text", "resolution_text", "target_text", "value_text", "percent_text"]

_SECOND = {"en": "s", "ja": "秒"}
_COUNT = {"en": "", "ja": " 件"}


def seconds_text(value: float | None, cat: Catalogue) -> str:
    """``4.200 s`` (``4.200 秒`` in Japanese); a dash when there is no value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return cat("none")
    return f"{value:.3f} {_SECOND.get(cat.lang, 's')}"


def percent_text(ratio: float | None, cat: Catalogue) -> str:
    """A ratio as a percentage with two decimals."""
    if ratio is None:
        return cat("none")
    return f"{ratio * 100:.2f} %"


def value_text(value: float | None, unit: str, cat: Catalogue) -> str:
    """A bare value in ``unit`` (``s``, ``ratio``, ``count``)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return cat("none")
    if unit == "s":
        return seconds_text(value, cat)
    if unit == "ratio":
        return percent_text(value, cat)
    if unit == "count":
        return f"{int(value)}{_COUNT.get(cat.lang, '')}"
    return f"{value:g}"


def measure_text(measure: Measure, cat: Catalogue) -> str:
    """The measured value, or why there is none (``not recovered within the run``). A time
    finer than its resolution is shown at the resolution: ``≤ 0.100 s``, not ``0.087 s``."""
    if not measure.measured:
        return cat(f"mstatus.{measure.status}")
    value, resolution = measure.value, measure.resolution
    if measure.unit == "s" and value is not None and resolution is not None and 0 <= value < resolution:
        return f"≤ {value_text(resolution, measure.unit, cat)}"
    return value_text(value, measure.unit, cat)


def resolution_text(measure: Measure, cat: Catalogue) -> str:
    """The resolution and where it comes from, e.g. ``0.050 s (window step)``."""
    basis = cat(f"basis.{measure.basis}")
    if measure.resolution is None:
        return basis
    return cat("paren", a=value_text(measure.resolution, measure.unit, cat), b=basis)


def target_text(verdict: Verdict, cat: Catalogue) -> str:
    """The target with its direction: ``≤ 5.000 s``, ``≥ 600.000 s``; a count that must be
    zero is ``0`` (``0 件``), not ``≤ 0``."""
    if verdict.unit == "count" and verdict.comparison == "le" and verdict.target_value == 0:
        return value_text(0, "count", cat)
    sign = "≤" if verdict.comparison == "le" else "≥"
    return f"{sign} {value_text(verdict.target_value, verdict.unit, cat)}"
