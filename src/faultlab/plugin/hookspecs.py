"""The drill plugin's hooks (pluggy hook specifications, the way pytest declares its own).

A stack file names its plugin with ``plugin: package.module``. That module defines the hooks
it offers as plain functions named ``faultlab_*`` (no decorator needed); every one is optional
but ``faultlab_canary``, which a scenario's canary uses. Hooks may return plain mappings for
their results; ``faultlab_declare`` returns a :class:`faultlab.plugin.Declaration`, so a plugin
that declares its words imports ``faultlab.plugin``.
``faultlab validate`` checks the module before anything starts: a function named
``faultlab_*`` that is no hook below, or a hook with an argument the spec does not offer, is an
input error (exit 2), like a misspelled key in a YAML file.

``stack`` is the runtime's :class:`faultlab.runtime.base.StackHandle`: ``url(service, path)``,
``address(service)``, ``dsn(service)`` of the running stack, whichever runtime runs it.
A hook may take fewer arguments than its spec (pluggy passes only those it names). A hook
no plugin implements returns None (hence the ``| None`` below).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from faultlab.runtime.base import StackHandle

__all__ = ["PROJECT", "PREFIX", "hookspec", "hookimpl"]

PROJECT = "faultlab"
PREFIX = "faultlab_"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec(firstresult=True)
def faultlab_declare() -> Any:
    """The system's :class:`~faultlab.plugin.Declaration`: its words for a request, its
    integrity checks, its completion delay, its readiness JSON keys."""


@hookspec(firstresult=True)
def faultlab_canary(stack: StackHandle) -> Callable[[float], Any] | None:
    """A function ``place(timeout_s)`` sending one business request (the payments example:
    one small payment) within ``timeout_s`` and returning a
    :class:`~faultlab.plugin.CanaryOutcome` (or a mapping with its fields)."""


@hookspec(firstresult=True)
def faultlab_integrity(stack: StackHandle, acknowledged: frozenset[str], settle_s: float) -> Any:
    """Reconcile the system's data with every acknowledgement after the run, waiting up to
    ``settle_s`` for work in flight: an :class:`~faultlab.plugin.IntegrityReport` whose
    checks are those the declaration names."""


@hookspec(firstresult=True)
def faultlab_export_state(stack: StackHandle, directory: Path) -> None:
    """After the run, before the integrity check: write the system's end state (its business
    data) into ``directory``, a folder of the run directory, so it is part of the evidence,
    hashed in the manifest, and the integrity check can be re-performed from it offline."""


@hookspec(firstresult=True)
def faultlab_check_state(directory: Path, acknowledged: frozenset[str], attempted: frozenset[str],
                         settle_s: float) -> Any:
    """The integrity check re-performed on an exported end state alone (no running system):
    an :class:`~faultlab.plugin.IntegrityReport` whose ``outcomes`` say where every
    acknowledged and every attempted request (sent, no answer in time) ended up (the
    declared outcome classes, ``absent`` when not there). When offered with
    ``faultlab_export_state``, the run's integrity check is this one, and ``faultlab verify
    --recompute`` runs it again on the package."""


@hookspec(firstresult=True)
def faultlab_completion_delays(stack: StackHandle, acknowledged: frozenset[str]) -> Mapping[str, float] | None:
    """After the run, before the integrity check: seconds from acknowledgement to completion
    for each acknowledged request the system completed (left out: not completed)."""


@hookspec(firstresult=True)
def faultlab_locustfile() -> str | None:
    """The path of the load generator's locustfile."""


@hookspec(firstresult=True)
def faultlab_load_host(stack: StackHandle) -> str | None:
    """The URL the load generator targets."""


@hookspec(firstresult=True)
def faultlab_load_env(stack: StackHandle, shape: str | None) -> Mapping[str, str] | None:
    """Extra environment for the load generator (``shape`` is the scenario's ``load.shape``)."""


@hookspec(firstresult=True)
def faultlab_job_progress(stack: StackHandle, job: str) -> float | None:
    """How far the stack's job ``job`` is (0..1), or None when unknown (for faults that
    strike a job mid-run)."""
