"""Every message a model can produce says what is wrong and what would be right, in words.

No raw regular expression (``String should match pattern '^[A-Za-z0-9]...'``), no pydantic
internals (``Input should be a valid dictionary or instance of Participant``). The sweep
feeds wrong values to every field of every document model, every model nested in them and
every built-in fault kind's parameters, through the loader's own wording.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import pytest
from foundation_paths import ROOT
from pydantic import BaseModel, ValidationError

from faultlab.errors import InputError
from faultlab.loader import load_any
from faultlab.loader.located import located
from faultlab.loader.positions import Parsed
from faultlab.model import DrillPlan, Scenario, Stack
from faultlab.registry import fault_kinds

INTERNALS = (
    "Input should", "Input is not", "instance of", "valid dictionary", "String should", "should match pattern",
    "after validation", "<class", "Value error", "Dictionary should", "List should", "Value should", "unable to",
    "Datetimes provided", "[A-Za-z", "^/", "]*$", "function-", "pathlib", "literal_error", "model_type",
)

BAD: list[Any] = [
    "x", "", "bad name!", "a" * 300, "/ok", "db\n", "FT 01", 5, -1, 0, 1.5, True, False, None, 10**20,
    [], ["x"], [5], [{}], {}, {"x": 1}, {"bad name!": "x"}, {"bad name!": {}}, {"ok": "x"}, {"ok": 5}, {"ok": None},
]


def _types(tp: Any) -> typing.Iterator[Any]:
    yield tp
    for arg in typing.get_args(tp):
        yield from _types(arg)


def models() -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    todo: list[type[BaseModel]] = [Stack, Scenario, DrillPlan]
    todo += [kind.Params for name, kind in fault_kinds.items() if fault_kinds.source(name).startswith("faultlab.")]
    while todo:
        model = todo.pop()
        if model in found:
            continue
        found.append(model)
        for info in model.model_fields.values():
            todo += [t for t in _types(info.annotation) if isinstance(t, type) and issubclass(t, BaseModel)]
    return found


def messages(model: type[BaseModel], key: str, value: Any) -> list[str]:
    data = {key: value}
    try:
        model.model_validate(data)
    except ValidationError as exc:
        doc = Parsed("f.yaml", data=data)
        return [p.message for p in located(doc, exc, model) if p.path.split(".")[0].split("[")[0] == key]
    return []


SWEEP = [(model, info.alias or name) for model in models() for name, info in model.model_fields.items()]


def test_the_sweep_reaches_every_model() -> None:
    names = {model.__name__ for model, _ in SWEEP}
    assert {"Stack", "Service", "Readiness", "Participant", "Approval", "LatencyAbort", "DbStallParams"} <= names
    assert len(SWEEP) > 100


@pytest.mark.parametrize(("model", "key"), SWEEP, ids=[f"{m.__name__}.{k}" for m, k in SWEEP])
def test_no_message_quotes_a_pattern_or_pydantic_internals(model: type[BaseModel], key: str) -> None:
    wrong = []
    for value in BAD:
        for message in messages(model, key, value):
            if any(fragment in message for fragment in INTERNALS) or message.count("got ") > 1:
                wrong.append(f"{key}={value!r:.30}: {message}")
    assert wrong == []


STACK = ROOT / "stacks" / "trading.yaml"


@pytest.mark.parametrize(
    ("kind", "change", "expected"),
    [
        ("plan", "participants: [Alice]",
         "participants[0]: expected a mapping like {name: ..., role: ...}, got a text value 'Alice'"),
        ("plan", "trials: 0", "trials: must be at least 1, got 0"),
        ("plan", "trials: many", "trials: expected a whole number, got a text value 'many'"),
        ("plan", "trials: 1.5", "trials: expected a whole number, got a number 1.5"),
        ("plan", "approvals: [{name: A, role: B, date: tomorrow}]",
         "approvals[0].date: expected a date like 2026-11-20, got a text value 'tomorrow'"),
        ("plan", "approvals: {name: A, role: B}",
         "approvals: expected a list (one `- item` per line, or [a, b]), got a mapping"),
        ("plan", "participants: [{name: '', role: x}]", "participants[0].name: cannot be empty"),
        ("plan", "participants: [{name: 5, role: x}]",
         "participants[0].name: expected text, got a number 5 (quote it, '5', to make it text)"),
        ("scenario", "steady_state: fast",
         "steady_state: expected a mapping with any of success_rate, p99_latency, completion_delay, promql, "
         "got a text value 'fast'"),
        ("scenario", "id: FT 01",
         "id: 'FT 01' is not an id: use letters, digits, '_', '.' and '-', starting with a letter or digit "
         "(like FT-01)"),
        ("scenario", "timeline: []", "timeline: needs at least one entry"),
        ("scenario", "timeline: [{at: 1s, fault: db_stall, target: db!, for: 5s}]",
         "timeline[0].target: 'db!' is not a name: use letters, digits, '_', '.' and '-', starting with a "
         "letter or digit (like gateway-db)"),
        ("scenario", "stack: 5", "stack: expected a file path, got a number 5"),
        ("stack", "plugin: my plugin",
         "plugin: 'my plugin' is not a Python module name: dotted names of letters, digits and '_', each "
         "starting with a letter or '_' (like tradingstack.plugin)"),
        ("stack", "allow_hosts: [bad host!]",
         "allow_hosts[0]: 'bad host!' is not a host name or IPv4 address: letters, digits, '.' and '-' "
         "(like db.example.internal or 10.0.0.5)"),
        ("stack", "monitor: {service: gateway, ready: health}",
         "monitor.ready: 'health' is not a URL path: start it with '/' (like /health/ready)"),
        ("stack", "monitor: gateway",
         "monitor: expected a mapping like {service: ...}, got a text value 'gateway'"),
        ("stack", "services: {}", "services: needs at least one entry"),
        ("stack", "services: {db: {postgres: {database: d, user: u, max_connections: 2}}}",
         "services.db.postgres.max_connections: must be at least 5, got 2"),
        ("stack", "services: {db: {postgres: {}, ready: {tcp: false}}}",
         "services.db.ready.tcp: expected true, got false (leave `tcp` out rather than set it to false)"),
        ("stack", "services: {'bad name!': {postgres: {}}}",
         "services['bad name!']: 'bad name!' is not a name: use letters, digits, '_', '.' and '-', starting "
         "with a letter or digit (like gateway-db)"),
    ],
)
def test_messages_in_words(tmp_path: Path, kind: str, change: str, expected: str) -> None:
    if kind == "plan":
        text = f"title: t\nenvironment: e\nscenarios: [{ROOT / 'scenarios' / 'ft-01-db-freeze.yaml'}]\n"
    elif kind == "scenario":
        text = (f"id: X\ntitle: t\nstack: {STACK}\nsteady_state: {{success_rate: {{min: 0.9}}}}\n"
                "timeline: [{at: 1s, fault: process_kill, target: gateway}]\nduration: 10s\n")
    else:
        text = STACK.read_text()
    key = change.split(":")[0]
    lines = _without_section(text.splitlines(), key)
    path = tmp_path / f"{kind}.yaml"
    path.write_text("\n".join([*lines, change]) + "\n")
    with pytest.raises(InputError) as info:
        load_any(path)
    found = [f"{p.path}: {p.message}" for p in info.value.problems]
    assert expected in found, "\n".join(found)


def _without_section(lines: list[str], key: str) -> list[str]:
    kept, skipping = [], False
    for line in lines:
        if line.startswith(f"{key}:"):
            skipping = True
            continue
        if skipping and (line.startswith(" ") or not line.strip()):
            continue
        skipping = False
        kept.append(line)
    return kept


def test_a_length_message_counts_the_entries_when_pydantic_gives_no_count() -> None:
    """pydantic 2.14 may leave ``actual_length`` as None in a too-long error: the message
    still says how many entries there are ("has None entries" before)."""
    from faultlab.loader.located import _WORDS as words

    assert words["too_long"]({"a": 1, "b": 2}, {"max_length": 1, "actual_length": None}) == \
        "has 2 entries; at most 1"
    assert words["too_short"]([1], {"min_length": 3, "actual_length": None}) == "needs at least 3 entries, not 1"
    assert words["too_long"]([1, 2, 3], {"max_length": 2, "actual_length": 3}) == "has 3 entries; at most 2"
