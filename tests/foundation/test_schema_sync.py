"""The committed JSON Schemas: in step with the models, accepting the examples, rejecting the corpus."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from foundation_paths import CORPUS, DOCUMENTS, ROOT, VALID

from faultlab import schema
from faultlab.loader import document_kind, parse_yaml
from faultlab.registry import fault_kinds

SCHEMAS = ROOT / "schemas"


def builtin_kinds() -> list[tuple[str, object]]:
    """The kinds this project ships (faultlab's and the trading stack's): an installed third-party
    plugin must not break the sync test."""
    return [(name, kind) for name, kind in fault_kinds.items()
            if fault_kinds.source(name).startswith(("faultlab.", "tradingstack."))]


def committed(kind: str) -> dict:
    return json.loads((SCHEMAS / schema.FILE_NAMES[kind]).read_text())


@pytest.mark.parametrize("kind", schema.KINDS)
def test_committed_schema_is_current(kind: str) -> None:
    generated = schema.render(schema.document_schema(kind, builtin_kinds()))
    assert (SCHEMAS / schema.FILE_NAMES[kind]).read_text() == generated, (
        "schemas/ is out of date: run `faultlab schema --out schemas`"
    )


@pytest.mark.parametrize("kind", schema.KINDS)
def test_schema_is_draft_2020_12(kind: str) -> None:
    document = committed(kind)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(document)


def _validator(kind: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(committed(kind))


@pytest.mark.parametrize("path", [*DOCUMENTS, *VALID.glob("*.yaml")], ids=lambda p: p.name)
def test_schema_accepts_every_example(path: Path) -> None:
    parsed = parse_yaml(path.read_bytes(), str(path))
    assert not parsed.problems
    kind = document_kind(parsed.data, path)
    errors = [error.message for error in _validator(kind).iter_errors(parsed.data)]
    assert errors == []


CASES = sorted(CORPUS.glob("*.yaml"))


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_schema_judges_the_corpus(case: Path) -> None:
    expect = json.loads(case.with_suffix(".expect").read_text())
    if expect["schema"] == "skip":
        pytest.skip("not a document the schema can judge (syntax, encoding, recursion)")
    parsed = parse_yaml(case.read_bytes(), str(case))
    kind = document_kind(parsed.data, case) or "scenario"
    errors = list(_validator(kind).iter_errors(parsed.data))
    if expect["schema"] == "reject":
        assert errors, "the schema accepted a document it can tell is wrong"
    else:
        assert not errors, f"only the loader can tell this one; the schema said {errors[0].message}"


def test_timeline_entry_shape_is_per_kind() -> None:
    validator = _validator("scenario")
    step = committed("scenario")["$defs"]["FaultStep"]
    assert set(step["properties"]["fault"]["enum"]) == {name for name, _ in builtin_kinds()}
    base = {
        "id": "FT-1", "title": "t", "stack": "s.yaml", "duration": "60s",
        "steady_state": {"success_rate": {"min": 0.99}},
    }
    good = {**base, "timeline": [{"at": "1s", "fault": "latency", "target": "l", "for": "5s", "latency": "200ms"}]}
    assert not list(validator.iter_errors(good))
    for wrong in (
        {"at": "1s", "fault": "latency", "target": "l", "for": "5s"},  # latency missing
        {"at": "1s", "fault": "latency", "target": "l", "for": "5s", "latency": "200ms", "mode": "freeze"},
        {"at": "1s", "fault": "process_kill", "target": "gw", "for": "5s"},  # instantaneous
        {"at": "1s", "job": "batch", "fault": "partition"},
    ):
        assert list(validator.iter_errors({**base, "timeline": [wrong]})), wrong
