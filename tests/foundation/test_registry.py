"""Fault kinds come in through entry points, like any plugin; unknown names list the known ones."""

from __future__ import annotations

import tomllib
from importlib.metadata import EntryPoint
from typing import ClassVar

import pytest
from foundation_paths import ROOT
from pydantic import BaseModel

from faultlab import registry
from faultlab.errors import InfrastructureError, InputError
from faultlab.faults import TARGET_TYPES, FaultKind, FaultParams
from faultlab.registry import Registry, fault_kinds


def test_builtins_are_exactly_the_pyproject_entry_points() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["faultlab.faults"]
    builtin = {name for name in fault_kinds.names() if fault_kinds.source(name).startswith("faultlab.")}
    assert builtin == {name for name, where in declared.items() if where.startswith("faultlab.")}
    # the trading stack registers its own kinds through the same entry-point group, like any plugin
    assert {name for name, where in declared.items() if where.startswith("tradingstack.")} == {"load_shape",
                                                                                                "exchange_silent"}
    assert fault_kinds.source("load_shape") == "tradingstack.faults:LoadShape"
    assert fault_kinds.source("exchange_silent") == "tradingstack.faults:ExchangeSilent"
    assert fault_kinds.broken == {}


DECLARED = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["faultlab.faults"]


@pytest.mark.parametrize("name", sorted(DECLARED))
def test_every_kind_meets_the_contract(name: str) -> None:
    kind = fault_kinds.get(name)
    assert issubclass(kind, FaultKind)
    assert kind.name == name
    assert kind.summary and "\n" not in kind.summary and len(kind.summary) < 100
    assert issubclass(kind.Params, FaultParams)
    assert kind.Params.model_config.get("extra") == "forbid"
    assert kind.target_types and set(kind.target_types) <= set(TARGET_TYPES)
    assert isinstance(kind.needs_for, bool)
    for field in kind.Params.model_fields.values():
        assert field.description, f"{name}: every parameter says what it is"


def test_engine_contract_is_abstract_on_the_base() -> None:
    assert {"inject", "revert"} <= FaultKind.__abstractmethods__
    assert "idempotent" in FaultKind.__doc__ and "journal" in FaultKind.__doc__


def test_unknown_name_lists_known_ones_with_a_guess() -> None:
    with pytest.raises(InputError) as info:
        fault_kinds.get("db_stal")
    message = str(info.value)
    assert "unknown fault kind 'db_stal'; did you mean 'db_stall'?" in message
    assert "known: bandwidth, db_connection_exhaustion" in message
    assert "did you mean" not in fault_kinds.unknown_message("zzzzzz")


class Flood(FaultKind):
    """A third-party kind, as a plugin would ship it."""

    name: ClassVar[str] = "flood"
    summary: ClassVar[str] = "flood a link"
    target_types = frozenset({"link"})


def test_plugins_load_like_builtins_and_a_broken_one_does_not_hide_others(monkeypatch: pytest.MonkeyPatch) -> None:
    points = [
        EntryPoint("flood", f"{__name__}:Flood", "faultlab.test"),
        EntryPoint("broken", "faultlab_no_such_module:Kind", "faultlab.test"),
        EntryPoint("liar", f"{__name__}:Flood", "faultlab.test"),
    ]
    monkeypatch.setattr(registry, "entry_points", lambda group: [p for p in points if p.group == group])
    kinds: Registry[type[FaultKind]] = Registry("faultlab.test", "fault kind")
    assert repr(kinds) == "Registry('faultlab.test', not loaded)"
    assert kinds.names() == ["flood"]
    assert kinds.get("flood") is Flood
    assert set(kinds.broken) == {"broken", "liar"}
    with pytest.raises(InfrastructureError, match="could not be loaded"):
        kinds.get("broken")
    kinds.register("manual", Flood)
    assert "manual" in kinds and len(kinds) == 2


def test_params_parse_units_and_fill_defaults() -> None:
    latency = fault_kinds.get("latency").validate_params({"latency": "200ms"})
    assert (latency.latency, latency.jitter, latency.stream, latency.toxicity) == (0.2, 0.0, "downstream", 1.0)
    stall = fault_kinds.get("stall").validate_params({})
    assert stall.stream == "both"
    bandwidth = fault_kinds.get("bandwidth").validate_params({"rate": "100KB/s"})
    assert bandwidth.rate == 100_000
    crash = fault_kinds.get("job_crash").validate_params({"at_progress": "50%"})
    assert crash.at_progress == 0.5 and crash.rerun is True
    assert isinstance(fault_kinds.get("partition").validate_params({}), BaseModel)
