"""Malformed documents: each names its expected problem (line and message) in a sidecar .expect."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from foundation_paths import CORPUS

from faultlab.errors import InputError
from faultlab.loader import load_any

CASES = sorted(CORPUS.glob("*.yaml"))


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 30
    assert all(case.with_suffix(".expect").is_file() for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_malformed_document_is_reported(case: Path) -> None:
    expect = json.loads(case.with_suffix(".expect").read_text())
    with pytest.raises(InputError) as info:
        load_any(case)
    problems = info.value.problems
    assert problems, "InputError without problems"
    matching = [p for p in problems if p.line == expect["line"] and expect["message"] in p.message]
    assert matching, f"expected line {expect['line']}: {expect['message']!r}; got:\n" + "\n".join(map(str, problems))
    for problem in problems:
        assert problem.file.endswith(".yaml"), problem
        assert str(problem).startswith(problem.file)
