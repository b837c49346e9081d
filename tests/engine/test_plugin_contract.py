"""The drill plugin contract: hooks checked before anything starts, typed results."""

from __future__ import annotations

import sys
import types

import pytest

from faultlab.plugin import (
    CanaryOutcome,
    Declaration,
    IntegrityCheck,
    PluginProblem,
    Text,
    canary_outcome,
    integrity_report,
    load_plugin,
)


def _module(name: str, **attrs):
    module = types.ModuleType(name)
    for key, value in attrs.items():
        setattr(module, key, value)
    return module


def test_a_misspelt_hook_is_named_with_the_hook_it_resembles():
    def faultlab_integrty(stack):
        return None

    with pytest.raises(PluginProblem) as caught:
        load_plugin(_module("typo_plugin", faultlab_integrty=faultlab_integrty))
    assert "faultlab_integrty" in str(caught.value) and "did you mean 'faultlab_integrity'" in str(caught.value)


def test_a_hook_asking_for_an_argument_its_spec_does_not_offer_is_refused():
    def faultlab_canary(stack, region):
        return None

    with pytest.raises(PluginProblem) as caught:
        load_plugin(_module("arg_plugin", faultlab_canary=faultlab_canary))
    assert "region" in str(caught.value)


def test_a_function_of_the_old_protocol_is_named():
    def integrity(stack, acknowledged, *, settle_s):
        return None

    integrity.__module__ = "old_plugin"
    with pytest.raises(PluginProblem) as caught:
        load_plugin(_module("old_plugin", integrity=integrity))
    assert "`integrity` looks like the hook `faultlab_integrity`" in str(caught.value)


def test_a_declaration_of_the_wrong_type_is_a_problem():
    with pytest.raises(PluginProblem) as caught:
        load_plugin(_module("bad_declare", faultlab_declare=lambda: {"integrity_checks": []}))
    assert "not a faultlab.plugin.Declaration" in str(caught.value)


def test_a_module_that_does_not_import_is_a_problem():
    with pytest.raises(PluginProblem) as caught:
        load_plugin("no_such_plugin_anywhere")
    assert "cannot be imported" in str(caught.value)


def test_a_plugin_beside_its_stack_file_is_found(tmp_path):
    (tmp_path / "beside_plugin.py").write_text(
        "from faultlab.plugin import Declaration, IntegrityCheck, Text\n"
        "def faultlab_declare():\n"
        "    return Declaration(integrity_checks=(IntegrityCheck('lost_payments', Text('Lost payments')),))\n"
    )
    try:
        plugin = load_plugin("beside_plugin", folder=tmp_path)
    finally:
        sys.modules.pop("beside_plugin", None)
    assert plugin.declaration.check_names == ["lost_payments"]


def test_integrity_reports_are_checked_against_the_declaration():
    lost = IntegrityCheck("lost_payments", Text("Lost payments", "消失した支払"))
    declaration = Declaration(integrity_checks=(lost,))
    report = integrity_report({"acknowledged": 3, "checked": {"lost_payments": 1},
                               "violations": [{"check": "lost_payments", "ids": ["p-1"], "detail": "gone"}]},
                              declaration)
    assert report.violations[0].ids == ("p-1",)
    with pytest.raises(ValueError, match="undeclared check"):
        integrity_report({"acknowledged": 3, "checked": {"lost_orders": 0}}, declaration)


def test_canary_outcomes_from_mappings_keep_their_detail():
    assert canary_outcome({"ok": False, "status": 503, "error": "down", "region": "eu"}) == CanaryOutcome(
        ok=False, status=503, error="down", detail={"region": "eu"})
    with pytest.raises(TypeError):
        canary_outcome(True)


def test_the_declaration_survives_the_journal_and_a_damaged_one_falls_back():
    declaration = load_plugin("tradingstack.plugin").declaration
    assert Declaration.from_json(declaration.to_json()) == declaration
    assert Declaration.from_json({"integrity_checks": [{"name": "Bad Name"}], "request": 7}) == Declaration()
