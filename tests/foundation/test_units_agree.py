"""The JSON Schema and the one parser per unit agree on every unit string.

An editor checks a file with the committed JSON Schema; the loader with the parsers in
``faultlab.units``. Whatever one accepts, the other must accept, and whatever one refuses,
the other must refuse, except an amount out of range (a duration over a year, a zero rate,
more than 100 %): a pattern checks the form only, so those are the loader's alone
(``units.OutOfRange``).
"""

from __future__ import annotations

import itertools
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from faultlab import units
from faultlab.model import Bandwidth, Duration, Fraction, Percentage, Rate, Size
from faultlab.model.plan import Tolerance

TYPES: dict[str, Any] = {
    "duration": Duration,
    "rate": Rate,
    "size": Size,
    "bandwidth": Bandwidth,
    "percentage": Percentage,
    "fraction": Fraction,
    "tolerance": Tolerance,
}

NUMBERS = ["0", "1", "20", "250", "1.5", ".5", "0.0", "007", "1.", "-1", "+1", "1e3", "1_000", "２０", "٣", ""]
GAPS = ["", " ", "  ", "\t", "\u00a0", "\u3000", "\n"]
UNITS = [
    "us", "µs", "μs", "ms", "s", "m", "h", "sec", "S", "M", "d",
    "/s", "/m", "/h", "/d", "/ s", "per s",
    "B", "KB", "MB", "GB", "KiB", "MiB", "GiB", "kb", "K", "KB/s", "MiB/s", "KB / s", "KB/m", "B/s",
    "%", "%%", "",
]
EDGES = ["", " ", "\n", "\t", "\r\n", "\u00a0", "x"]


ADAPTERS = {kind: TypeAdapter(tp) for kind, tp in TYPES.items()}
SCHEMAS = {kind: jsonschema.Draft202012Validator(adapter.json_schema()) for kind, adapter in ADAPTERS.items()}


def _verdicts(kind: str, value: Any) -> tuple[bool, str]:
    """(schema accepts, the parser's verdict: 'ok', 'range' or 'form')."""
    adapter = ADAPTERS[kind]
    schema_ok = SCHEMAS[kind].is_valid(value)
    try:
        adapter.validate_python(value)
    except ValidationError as exc:
        (error,) = exc.errors()
        cause = error.get("ctx", {}).get("error")
        return schema_ok, "range" if isinstance(cause, units.OutOfRange) else "form"
    return schema_ok, "ok"


def _agree(kind: str, value: Any) -> str | None:
    schema_ok, parsed = _verdicts(kind, value)
    if schema_ok == (parsed != "form"):
        return None
    return f"{kind} {value!r}: schema {'accepts' if schema_ok else 'refuses'}, parser says {parsed}"


CORPUS = sorted(
    {edge + number + gap + unit + edge for number, gap, unit in itertools.product(NUMBERS, GAPS, UNITS) for edge in
     ("", " ")} | {number + unit + edge for number, unit, edge in itertools.product(NUMBERS, UNITS, EDGES)}
)


@pytest.mark.parametrize("kind", sorted(TYPES))
def test_no_unit_string_is_judged_differently(kind: str) -> None:
    disagreements = [found for value in CORPUS if (found := _agree(kind, value))]
    assert disagreements == [], f"{len(disagreements)} disagreements, like:\n" + "\n".join(disagreements[:20])


@pytest.mark.parametrize("kind", sorted(TYPES))
def test_values_that_are_not_text(kind: str) -> None:
    values: list[Any] = [0, 1, 20, -1, 4096, 2**60, 0.5, 1.0, 1.5, -0.5, True, False, None, [], {}, ["20s"]]
    disagreements = [found for value in values if (found := _agree(kind, value))]
    assert disagreements == []


def test_the_corpus_holds_both_verdicts() -> None:
    for kind in TYPES:
        verdicts = {_verdicts(kind, value)[1] for value in CORPUS}
        assert {"ok", "form"} <= verdicts, kind
    assert _verdicts("duration", "100 ms") == (True, "ok")
    assert _verdicts("duration", "9999h") == (True, "range")
    assert _verdicts("rate", "0/s") == (True, "range")


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(TYPES)), st.text(alphabet="0123456789.+-_eE %/usmhµKMGiBb\t\n", max_size=9))
def test_random_unit_strings(kind: str, value: str) -> None:
    assert _agree(kind, value) is None
