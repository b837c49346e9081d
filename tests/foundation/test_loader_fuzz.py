"""Whatever the input, the loader returns a model or raises InputError, nothing else."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from foundation_paths import ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from faultlab.errors import InputError
from faultlab.loader import load_any, load_scenario, parse_yaml

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

VALID = yaml.safe_load((ROOT / "scenarios" / "ft-20-db-stall-during-batch.yaml").read_text())
VALID["stack"] = str(ROOT / "stacks" / "trading.yaml")
VALID_STACK = yaml.safe_load((ROOT / "stacks" / "trading.yaml").read_text())
VALID_PLAN = yaml.safe_load((ROOT / "drills" / "smoke.yaml").read_text())
VALID_PLAN["scenarios"] = [str(ROOT / "scenarios" / "ft-0*.yaml")]

yaml_chars = st.sampled_from(list("abc:-[]{},&*!|>'\"#%@`\t\n ?0123456789.<=~") + ["\x00", "\x85", "\ufeff", "é"])
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["20s", "250ms", "-1s", "1e9h", "20/s", "64KB", "50%", "db", "db_stall", "auto", "${link.x}"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)


def _check(path: Path) -> None:
    try:
        load_any(path)
    except InputError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert isinstance(problem.line, int) and problem.message


@SETTINGS
@given(st.text(alphabet=yaml_chars, max_size=200))
def test_arbitrary_yaml_text(tmp_path: Path, text: str) -> None:
    path = tmp_path / "doc.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    _check(path)


@SETTINGS
@given(st.binary(max_size=200))
def test_arbitrary_bytes(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "doc.yaml"
    path.write_bytes(data)
    _check(path)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


def _mutate(data: st.DataObject, document: Any) -> Any:
    document = copy.deepcopy(document)
    for _ in range(data.draw(st.integers(1, 3))):
        paths = _paths(document)
        path = data.draw(st.sampled_from(paths))
        action = data.draw(st.sampled_from(["replace", "delete", "add-key"]))
        if not path:
            if action == "replace":
                document = data.draw(values)
            continue
        parent = document
        for part in path[:-1]:
            parent = parent[part]
        if action == "replace":
            parent[path[-1]] = data.draw(values)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[data.draw(st.text(max_size=8))] = data.draw(values)
    return document


@SETTINGS
@given(st.data())
def test_mutated_valid_scenario(tmp_path: Path, data: st.DataObject) -> None:
    target = tmp_path / "scenario.yaml"
    target.write_text(yaml.safe_dump(_mutate(data, VALID), allow_unicode=True))
    try:
        scenario = load_scenario(target)
    except InputError as exc:
        assert exc.problems
    else:
        assert scenario.resolved_stack.name == "trading"


@SETTINGS
@given(st.data(), st.sampled_from(["stack", "plan"]))
def test_mutated_valid_stack_and_plan(tmp_path: Path, data: st.DataObject, kind: str) -> None:
    target = tmp_path / f"{kind}.yaml"
    original = VALID_STACK if kind == "stack" else VALID_PLAN
    target.write_text(yaml.safe_dump(_mutate(data, original), allow_unicode=True))
    _check(target)


@SETTINGS
@given(values)
def test_parse_yaml_of_any_dumped_value(value: Any) -> None:
    parsed = parse_yaml(yaml.safe_dump(value))
    assert isinstance(parsed.problems, list)
