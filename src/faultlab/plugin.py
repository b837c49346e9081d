"""The drill plugin: what a system under drill tells the engine about itself.

faultlab knows nothing of orders or accounts. A stack file names a python module with
``plugin: package.module``; the engine looks these functions up in it (all optional but
``canary``, for a scenario that uses the canary):

``canary(stack) -> place(timeout_s) -> {"ok", "status", "ack", "error"}``
    A function placing one business request (the trading stack: one order) within
    ``timeout_s``. ``ack`` is what the system acknowledged (a client order id) or None.
``integrity(stack, acknowledged, *, settle_s) -> {"checked": {...}, "violations": [...]}``
    Reconcile the system's data with every acknowledgement (journal ``integrity`` record).
``execution_delays(stack, acknowledged) -> {ack: seconds}``
    After the run, before the integrity check: for each acknowledged request that was
    executed, how long it waited from acknowledgement to execution (the trading stack:
    order accepted to first fill). Acknowledgements not executed are left out. The engine
    writes them to ``executions.jsonl``; analysis reports the delay before, during and after
    the faults and judges ``execution_delay_p99``.
``locustfile() -> path``, ``load_host(stack) -> url``, ``load_env(stack, shape) -> dict``
    The load generator's locustfile, the URL it loads, extra environment (a load shape).
``job_progress(stack, job) -> float | None``
    How far a running job is (0..1), for faults that strike mid-job.
``market_event(stack, name)``
    Set off an event in the system (the trading stack: a price drop for ``stop_cascade``).

``stack`` is the runtime's handle (:class:`faultlab.runtime.local.LocalStack`): ``url()``,
``address()``, ``dsn()`` of its services.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from faultlab.errors import InputError

__all__ = ["DrillPlugin", "load_plugin"]


@dataclass(frozen=True)
class DrillPlugin:
    """A stack's drill plugin, with a clear error for what it does not offer."""

    name: str
    module: ModuleType | None

    def _get(self, attr: str) -> Callable[..., Any] | None:
        return getattr(self.module, attr, None) if self.module is not None else None

    def _need(self, attr: str, why: str) -> Callable[..., Any]:
        fn = self._get(attr)
        if fn is None:
            raise InputError(
                f"the stack's plugin {self.name or '(none)'} has no `{attr}` function, needed {why}; "
                "see faultlab.plugin for what a plugin offers"
            )
        return fn

    def canary(self, stack: Any) -> Callable[[float], Mapping[str, Any]]:
        """The canary's ``place(timeout_s)`` for this stack."""
        return self._need("canary", "for the canary probe")(stack)

    def integrity(self, stack: Any, acknowledged: Iterable[str], *, settle_s: float) -> Mapping[str, Any] | None:
        """The integrity check, or None when the plugin has none."""
        fn = self._get("integrity")
        return None if fn is None else fn(stack, set(acknowledged), settle_s=settle_s)

    def execution_delays(self, stack: Any, acknowledged: Iterable[str]) -> dict[str, float]:
        """Seconds from acknowledgement to execution per executed ack; {} when the plugin has none."""
        fn = self._get("execution_delays")
        if fn is None:
            return {}
        return {str(ack): float(delay) for ack, delay in dict(fn(stack, set(acknowledged))).items()
                if delay is not None}

    def locustfile(self) -> str:
        """The locustfile of the load generator."""
        return self._need("locustfile", "for the scenario's `load:`")()

    def load_host(self, stack: Any) -> str:
        """The URL the load generator targets."""
        return self._need("load_host", "for the scenario's `load:`")(stack)

    def load_env(self, stack: Any, shape: str | None) -> dict[str, str]:
        """Extra environment for the load generator (a shape's name, say)."""
        fn = self._get("load_env")
        return dict(fn(stack, shape)) if fn is not None else {}

    def market_event(self, stack: Any, name: str) -> None:
        """Set off the system's event ``name`` (a price drop, say)."""
        self._need("market_event", f"for the {name} load shape")(stack, name)

    def job_progress(self, stack: Any, job: str) -> float | None:
        """How far ``job`` is (0..1), or None when unknown."""
        fn = self._get("job_progress")
        return None if fn is None else fn(stack, job)


def load_plugin(name: str | None) -> DrillPlugin:
    """Import the plugin module ``name`` (None: a plugin that offers nothing)."""
    if not name:
        return DrillPlugin("", None)
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        raise InputError(f"cannot import the stack's plugin module {name!r}: {exc}") from exc
    return DrillPlugin(name, module)
