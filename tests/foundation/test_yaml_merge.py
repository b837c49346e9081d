"""YAML anchors, aliases and merge keys (``<<``): explicit keys override merged ones.

Only two explicit keys of one mapping are duplicates; a key merged in from ``<<: *defaults``
is a default that the mapping's own keys replace (YAML's merge key type). A list of merged
mappings gives precedence to the earlier ones.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from foundation_paths import VALID

from faultlab.errors import InputError
from faultlab.loader import load_any, load_plan, load_scenario, load_stack, parse_yaml
from faultlab.model import DrillPlan, FaultStep, Scenario, Stack

STACK = VALID / "stack-anchors-ja-crlf.yaml"
SCENARIO = VALID / "scenario-anchors-ja-crlf.yaml"
PLAN = VALID / "plan-anchors-ja-crlf.yaml"


@pytest.mark.parametrize("path", [STACK, SCENARIO, PLAN], ids=lambda p: p.stem)
def test_the_valid_documents_are_what_they_claim(path: Path) -> None:
    raw = path.read_bytes()
    assert raw.count(b"\r\n") == raw.count(b"\n") > 5, "CRLF line endings (see .gitattributes there)"
    assert b"<<: *" in raw and b"&" in raw
    assert any("\u3040" <= char <= "\u30ff" for char in raw.decode()), "Japanese text"


def test_stack_with_merged_service_and_overrides() -> None:
    stack = load_stack(STACK)
    assert isinstance(load_any(STACK), Stack)
    gateway, router = stack.services["gateway"], stack.services["router"]
    assert router.command == ["python", "-m", "tradingstack.router"]  # overrides the merged command
    assert router.port == "auto"  # merged from the gateway
    assert router.restart == "on-failure" and gateway.restart == "always"
    assert router.env == {
        "GATEWAY_PORT": "${port}",
        "DATABASE_URL": "postgresql://trading@${link.router-db}/trading",
        "GREETING": "いらっしゃいませ",
        "ROUTER_PORT": "${port}",
    }
    assert gateway.env["DATABASE_URL"].endswith("${link.gateway-db}/trading")
    assert router.ready is not None and (router.ready.http, router.ready.timeout) == ("/health/ready", 30.0)
    assert gateway.ready is not None and gateway.ready.timeout == 20.0


def test_scenario_with_merged_timeline_entries() -> None:
    scenario = load_scenario(SCENARIO)
    assert isinstance(load_any(SCENARIO), Scenario)
    assert scenario.title == "データベースの凍結（二回）とリンクの遅延"
    assert scenario.description == "日本語の説明文です。\n二行目。\n"
    steps = [step for _, step in scenario.steps()]
    assert all(isinstance(step, FaultStep) for step in steps)
    first, second, third, fourth = steps
    assert isinstance(first, FaultStep) and isinstance(second, FaultStep)
    assert (second.fault, second.target, second.at, second.for_) == ("db_stall", "db", 20.0, 5.0)
    assert first.at == 10.0 and second.params == {"mode": "freeze"}
    assert isinstance(third, FaultStep) and isinstance(fourth, FaultStep)
    assert (fourth.at, fourth.target, fourth.params) == (40.0, "gateway-db", {"latency": "300ms"})
    assert fourth.kind_params.latency == 0.3 and third.kind_params.latency == 0.2


def test_plan_with_merged_participants() -> None:
    plan = load_plan(PLAN)
    assert isinstance(load_any(PLAN), DrillPlan)
    assert plan.title == "四半期の障害訓練（マージキー）" and plan.languages == ["ja", "en"]
    assert [(p.name, p.role) for p in plan.participants] == [
        ("山田 太郎", "インシデント指揮者"),
        ("佐藤 花子", "インシデント指揮者"),
        ("山田 太郎", "記録係"),
        ("鈴木 一郎", "責任者"),
        ("高橋 次郎", "インシデント指揮者"),  # of two merged mappings, the first one wins
    ]
    assert [s.id for s in plan.resolved_scenarios] == ["FT-ja-merge"]


def test_two_explicit_keys_are_still_duplicates_after_a_merge() -> None:
    text = "a: &base {x: 1, y: 2}\nb:\n  <<: *base\n  x: 3\n  x: 4\n"
    parsed = parse_yaml(text)
    assert [(p.line, p.path, p.message) for p in parsed.problems] == [
        (5, "b.x", "duplicate key 'x' (first at line 4)")
    ]
    assert parsed.data["b"] == {"x": 3, "y": 2}


def test_merge_precedence_explicit_then_earlier_then_later() -> None:
    text = (
        "one: &one {a: 1, b: 1}\n"
        "two: &two {b: 2, c: 2, <<: *one}\n"  # nested merge: two's own b wins over one's
        "three: {<<: [*two, *one], c: 3}\n"
    )
    parsed = parse_yaml(text)
    assert parsed.problems == []
    assert parsed.data["two"] == {"a": 1, "b": 2, "c": 2}
    assert parsed.data["three"] == {"a": 1, "b": 2, "c": 3}
    assert parsed.keys[("three", "c")] == (3, 27)  # the explicit key, not the merged one
    assert parsed.values[("three", "b")] == (2, 15)  # a merged value sits where it is written


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("a: 5\nb: {<<: 5, c: 1}\n", 2, "<< merges a mapping"),
        ("a: &a [1]\nb: {<<: *a}\n", 2, "<< merges a mapping"),
        ("a: &a {x: 1}\nb: {<<: [*a, 3]}\n", 2, "<< merges a mapping"),
        ("a: &a {x: 1}\nb: {<<: *a, <<: *a}\n", 2, "duplicate key '<<'"),
    ],
)
def test_a_wrong_merge_is_a_located_problem(text: str, line: int, fragment: str) -> None:
    problems = parse_yaml(text).problems
    assert any(p.line == line and fragment in p.message for p in problems), problems


def test_a_recursive_merge_is_a_problem_not_a_crash() -> None:
    problems = parse_yaml("a: &a {x: 1, <<: *a}\n").problems
    assert any("recursive" in p.message for p in problems), problems


def test_a_problem_in_a_merged_value_points_where_it_is_written(tmp_path: Path) -> None:
    (tmp_path / "stack.yaml").write_text(
        "name: s\nservices:\n"
        "  a: &svc\n    command: [x]\n    port: auto\n    ready: {http: health}\n"
        "  b:\n    <<: *svc\n    command: [y]\n"
    )
    with pytest.raises(InputError) as info:
        load_stack(tmp_path / "stack.yaml")
    lines = {(p.path, p.line) for p in info.value.problems}
    assert ("services.b.ready.http", 6) in lines and ("services.a.ready.http", 6) in lines
    assert all("duplicate" not in p.message for p in info.value.problems)
