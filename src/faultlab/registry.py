"""Registries keyed by the names written in YAML, filled from entry points.

Every built-in fault kind, probe, runtime and ledger cleaner is registered in pyproject.toml
exactly as a third-party plugin registers its own::

    [project.entry-points."faultlab.faults"]
    db_stall = "faultlab.faults.database:DbStall"

    [project.entry-points."faultlab.runtimes"]
    local = "faultlab.runtime.local:LocalRuntime"

    [project.entry-points."faultlab.cleaners"]
    pg_session = "faultlab.runtime.ledger:_terminate_pg_session"

    [project.entry-points."faultlab.actions"]
    restart_service = "faultlab.programme.actions:RestartService"

    [project.entry-points."faultlab.conditions"]
    alert = "faultlab.programme.conditions:Alert"

    [project.entry-points."faultlab.projects"]
    payments = "payments.project"

Entry points are read on first use, never at import. An unknown name is an
:class:`~faultlab.errors.InputError` naming the known ones and the nearest match.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from faultlab.errors import InfrastructureError, InputError

if TYPE_CHECKING:
    from faultlab.runtime.base import Runtime
    from faultlab.runtime.ledger import Cleaner

__all__ = ["Registry", "actions", "cleaners", "conditions", "fault_kinds", "probes", "projects", "runtimes",
           "unknown_name_message"]

T = TypeVar("T")


def unknown_name_message(what: str, name: object, known: Iterable[str]) -> str:
    """``unknown fault kind 'db_stal'; did you mean 'db_stall'? known: ...``."""
    known = sorted(known)
    message = f"unknown {what} {name!r}"
    if isinstance(name, str):
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        if close:
            message += f"; did you mean {close[0]!r}?"
    if known:
        message += ("" if message.endswith("?") else ";") + " known: " + ", ".join(known)
    else:
        message += f"; there are no {what}s at all"
    return message


class Registry(Generic[T]):
    """Things of one sort (fault kinds, probes, runtimes) by their YAML name.

    Read lazily from the entry-point group ``group``; :meth:`register` adds one by hand
    (tests, embedding). A plugin that fails to import is remembered and reported when its
    name is asked for, so one broken plugin does not hide the others.
    """

    def __init__(self, group: str, what: str):
        self.group = group
        self.what = what
        self._entries: dict[str, T] | None = None
        self._broken: dict[str, str] = {}
        self._sources: dict[str, str] = {}

    def _load(self) -> dict[str, T]:
        if self._entries is None:
            entries: dict[str, T] = {}
            for ep in entry_points(group=self.group):
                try:
                    obj = ep.load()
                except Exception as exc:  # noqa: BLE001 - a plugin may fail in any way
                    self._broken[ep.name] = f"{ep.value}: {type(exc).__name__}: {exc}"
                    continue
                declared = getattr(obj, "name", ep.name)
                if declared != ep.name:
                    self._broken[ep.name] = (
                        f"{ep.value} calls itself {declared!r}, not {ep.name!r} as registered"
                    )
                    continue
                entries[ep.name] = obj
                self._sources[ep.name] = ep.value
            self._entries = entries
        return self._entries

    def register(self, name: str, obj: T, *, source: str = "") -> None:
        """Add ``obj`` under ``name`` (replacing any entry of that name)."""
        self._load()[name] = obj
        where = f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', '?')}"
        self._sources[name] = source or where
        self._broken.pop(name, None)

    def get(self, name: str) -> T:
        """The entry called ``name``; an unknown name raises InputError with the known names."""
        entries = self._load()
        if name in entries:
            return entries[name]
        if name in self._broken:
            raise InfrastructureError(
                f"the {self.what} {name!r} could not be loaded", evidence=self._broken[name]
            )
        raise InputError(unknown_name_message(self.what, name, entries))

    def unknown_message(self, name: object) -> str:
        """The message for a name that is not registered (for located problems)."""
        return unknown_name_message(self.what, name, self._load())

    def source(self, name: str) -> str:
        """Where an entry came from (``module:Class``)."""
        self._load()
        return self._sources.get(name, "")

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        return sorted(self._load())

    def items(self) -> list[tuple[str, T]]:
        """``(name, entry)`` pairs, sorted by name."""
        entries = self._load()
        return [(name, entries[name]) for name in sorted(entries)]

    @property
    def broken(self) -> dict[str, str]:
        """Entry points that failed to load: name -> reason."""
        self._load()
        return dict(self._broken)

    def __contains__(self, name: object) -> bool:
        return name in self._load()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._load())

    def __repr__(self) -> str:
        state = "not loaded" if self._entries is None else f"{len(self._entries)} entries"
        return f"Registry({self.group!r}, {state})"


fault_kinds: Registry[Any] = Registry("faultlab.faults", "fault kind")
"""Fault kinds (:class:`faultlab.faults.FaultKind` subclasses) by their ``fault:`` name."""

probes: Registry[Any] = Registry("faultlab.probes", "probe")
"""Probes by name."""

runtimes: Registry[type[Runtime]] = Registry("faultlab.runtimes", "runtime")
"""Runtimes (:class:`faultlab.runtime.base.Runtime` subclasses: ``local``, ``docker``) by the
name a stack file's ``runtime:`` gives."""

cleaners: Registry[Cleaner] = Registry("faultlab.cleaners", "cleaner")
"""Ledger cleaners (:class:`faultlab.runtime.ledger.Cleaner`) by the kind of entry they clean."""

actions: Registry[Any] = Registry("faultlab.actions", "action")
"""Runbook and decision actions (:class:`faultlab.programme.actions.Action` subclasses) by the
name a step's ``action:`` gives; a system's plugin package registers its own (halting and
resuming its intake, say)."""

conditions: Registry[Any] = Registry("faultlab.conditions", "condition")
"""Conditions of check steps, decision rules and runbook starts
(:class:`faultlab.programme.conditions.Condition` subclasses) by their YAML name."""
projects: Registry[Any] = Registry("faultlab.projects", "project")
"""Drill projects a package ships (a module with ``name``, ``summary`` and ``FILES``, glob
patterns of the files beside it), by the name ``faultlab init --project`` takes."""
