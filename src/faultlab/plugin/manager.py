"""Loading a stack's drill plugin and calling its hooks.

:func:`load_plugin` imports the module a stack file names, registers it with a pluggy
``PluginManager`` against :mod:`faultlab.plugin.hookspecs` and checks it: a module that does
not import, a ``faultlab_*`` function that is no hook, a hook asking for an argument its spec
does not offer, a function still named like a hook of the old protocol (``canary``,
``integrity``...) or a declaration that is not a :class:`Declaration` are all
:class:`PluginProblem` s, which the loader reports at the stack file's ``plugin:`` line.
:class:`DrillPlugin` is what the engine calls.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy

from faultlab.errors import InputError
from faultlab.plugin import hookspecs
from faultlab.plugin.declaration import Declaration
from faultlab.plugin.results import CanaryOutcome, IntegrityReport, canary_outcome, integrity_report
from faultlab.registry import unknown_name_message

if TYPE_CHECKING:
    from faultlab.runtime.base import StackHandle

__all__ = ["DrillPlugin", "PluginProblem", "load_plugin", "HOOKS"]

HOOKS: tuple[str, ...] = tuple(
    name for name, _ in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith(hookspecs.PREFIX)
)
"""Every hook a drill plugin may offer."""


class PluginProblem(InputError):
    """The stack's plugin cannot be used as it is; ``messages`` say why, one per problem."""

    def __init__(self, module: str, messages: list[str]):
        self.module = module
        self.messages = messages
        super().__init__("; ".join(f"plugin {module}: {m}" for m in messages))


class _Manager(pluggy.PluginManager):
    """Takes every function named ``faultlab_*`` as a hook implementation, decorated or not
    (as pytest does with ``pytest_*``), so a misspelt one is found, not ignored."""

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and name.startswith(hookspecs.PREFIX) and inspect.isroutine(getattr(plugin, name, None)):
            return {}
        return opts


def _old_style_names(module: ModuleType) -> list[str]:
    """Functions named like a hook without its prefix (the protocol before hooks had one)."""
    found = []
    for hook in HOOKS:
        bare = hook.removeprefix(hookspecs.PREFIX)
        fn = getattr(module, bare, None)
        if inspect.isfunction(fn) and fn.__module__ == module.__name__ and not hasattr(module, hook):
            found.append(f"`{bare}` looks like the hook `{hook}`: rename it (faultlab calls only faultlab_* functions)")
    return found


@dataclass
class DrillPlugin:
    """A stack's checked drill plugin (or none: ``module`` None offers nothing)."""

    name: str
    module: ModuleType | None
    manager: pluggy.PluginManager
    declaration: Declaration = field(default_factory=Declaration)

    @property
    def hook(self) -> Any:
        """pluggy's hook relay (``plugin.hook.faultlab_canary(stack=...)``)."""
        return self.manager.hook

    def offers(self, hook: str) -> bool:
        """True when the plugin implements ``hook``."""
        return bool(getattr(self.manager.hook, hook).get_hookimpls())

    def _need(self, hook: str, why: str) -> Any:
        if not self.offers(hook):
            raise InputError(
                f"the stack's plugin {self.name or '(none)'} has no `{hook}` hook, needed {why}; "
                "see faultlab.plugin.hookspecs for the hooks a plugin offers"
            )
        return getattr(self.manager.hook, hook)

    def canary(self, stack: StackHandle) -> Callable[[float], CanaryOutcome]:
        """The canary's ``place(timeout_s)`` for this stack, returning typed outcomes."""
        place = self._need("faultlab_canary", "for the canary probe")(stack=stack)

        def typed(timeout_s: float) -> CanaryOutcome:
            return canary_outcome(place(timeout_s))

        return typed

    def integrity(self, stack: StackHandle, acknowledged: Iterable[str], *, settle_s: float) -> IntegrityReport | None:
        """The integrity check's report, or None when the plugin has none."""
        if not self.offers("faultlab_integrity"):
            return None
        found = self.hook.faultlab_integrity(stack=stack, acknowledged=frozenset(acknowledged), settle_s=settle_s)
        return integrity_report(found, self.declaration)

    @property
    def re_performable(self) -> bool:
        """True when the plugin exports its end state and checks it offline."""
        return self.offers("faultlab_export_state") and self.offers("faultlab_check_state")

    def export_state(self, stack: StackHandle, directory: Path) -> None:
        """Write the system's end state into ``directory`` (nothing without the hook)."""
        if self.offers("faultlab_export_state"):
            directory.mkdir(parents=True, exist_ok=True)
            self.hook.faultlab_export_state(stack=stack, directory=directory)

    def check_state(self, directory: Path, acknowledged: Iterable[str], attempted: Iterable[str], *,
                    settle_s: float) -> IntegrityReport | None:
        """The integrity check re-performed on an exported end state, or None without the hook."""
        if not self.offers("faultlab_check_state"):
            return None
        found = self.hook.faultlab_check_state(directory=directory, acknowledged=frozenset(acknowledged),
                                               attempted=frozenset(attempted), settle_s=settle_s)
        return integrity_report(found, self.declaration)

    def completion_delays(self, stack: StackHandle, acknowledged: Iterable[str]) -> dict[str, float]:
        """Seconds from acknowledgement to completion per completed ack; {} without the hook."""
        if not self.offers("faultlab_completion_delays"):
            return {}
        found = self.hook.faultlab_completion_delays(stack=stack, acknowledged=frozenset(acknowledged)) or {}
        return {str(ack): float(delay) for ack, delay in dict(found).items() if delay is not None}

    def locustfile(self) -> str:
        """The locustfile of the load generator."""
        return str(self._need("faultlab_locustfile", "for the scenario's `load:`")())

    def load_host(self, stack: StackHandle) -> str:
        """The URL the load generator targets."""
        return str(self._need("faultlab_load_host", "for the scenario's `load:`")(stack=stack))

    def load_env(self, stack: StackHandle, shape: str | None) -> dict[str, str]:
        """Extra environment for the load generator; {} without the hook."""
        if not self.offers("faultlab_load_env"):
            return {}
        return {str(k): str(v) for k, v in dict(self.hook.faultlab_load_env(stack=stack, shape=shape) or {}).items()}

    def job_progress(self, stack: StackHandle, job: str) -> float | None:
        """How far ``job`` is (0..1), or None when unknown."""
        if not self.offers("faultlab_job_progress"):
            return None
        value = self.hook.faultlab_job_progress(stack=stack, job=job)
        return None if value is None else float(value)


def _new_manager() -> pluggy.PluginManager:
    manager = _Manager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    return manager


def _declaration(manager: pluggy.PluginManager, problems: list[str]) -> Declaration:
    if not manager.hook.faultlab_declare.get_hookimpls():
        return Declaration()
    try:
        found = manager.hook.faultlab_declare()
    except Exception as exc:  # noqa: BLE001 - any failure of plugin code is the plugin's problem
        problems.append(f"faultlab_declare failed: {type(exc).__name__}: {exc}")
        return Declaration()
    if not isinstance(found, Declaration):
        problems.append(f"faultlab_declare returned {type(found).__name__}, not a faultlab.plugin.Declaration")
        return Declaration()
    return found


def _importable_from(folder: str | os.PathLike[str] | None, name: str) -> None:
    """Let ``name`` be found in ``folder`` (a stack file's folder) when it is not installed."""
    if folder is None or importlib.util.find_spec(name.partition(".")[0]) is not None:
        return
    path = os.fspath(Path(folder).resolve())
    if path not in sys.path:
        sys.path.append(path)


def load_plugin(name: str | ModuleType | None, *, folder: str | os.PathLike[str] | None = None) -> DrillPlugin:
    """Import, register and check the plugin module ``name`` (a module object is taken as it
    is; None: a plugin offering nothing). A module that is not installed is looked for in
    ``folder`` (the stack file's folder), so a system need not be a package to be drilled.

    Raises :class:`PluginProblem` listing everything wrong with it.
    """
    manager = _new_manager()
    if not name:
        return DrillPlugin("", None, manager)
    if isinstance(name, ModuleType):
        module, name = name, name.__name__
    else:
        try:
            _importable_from(folder, name)
            module = importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - an import can fail in any way; all are the plugin's
            raise PluginProblem(name, [f"cannot be imported: {type(exc).__name__}: {exc}"]) from exc
    problems = _old_style_names(module)
    try:
        manager.register(module, name=name)
    except pluggy.PluginValidationError as exc:
        problems.append(str(exc).replace(f"Plugin {name!r}\n", "").strip())
    else:
        try:
            manager.check_pending()
        except pluggy.PluginValidationError as exc:
            hook = str(exc).split("hook ")[-1].split()[0].strip("'\"") if "hook " in str(exc) else str(exc)
            problems.append(unknown_name_message("hook", hook, HOOKS))
    declaration = _declaration(manager, problems)
    if problems:
        raise PluginProblem(name, problems)
    return DrillPlugin(name, module, manager, declaration)
