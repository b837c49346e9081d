"""One hub for everything a run tells its observers: named events with keyword arguments.

Components publish to a :class:`Hub` (``hub.publish("fault", state="active", ...)``); each
observer is called as ``observer(event="fault", state="active", ...)`` with keyword
arguments only, so adding an argument never breaks one (pluggy's rule, as pytest uses it).
An observer ignores the events it does not know. Its exception is logged, never fatal: a
broken live view must not end a run that holds faults.

Publishing an event that is not listed below, or an argument its event does not list, is a
``ValueError``: a typo must not silently publish nothing. The events and their arguments
(every argument is optional for an observer: take ``**kwargs``):

``run``
    a run begins (``state="begin"``, ``run_id``, ``run_dir``, ``scenario``) or ends
    (``state="end"``, ``status``, ``reason``, ``run_dir``)
``trial``
    a drill plan starts one run: ``index`` of ``total``, ``scenario``, ``trial`` of ``trials``
``phase``
    a run's phase ``name`` (stack_up, load, settle, ...) changes ``state`` (begin, end); the
    load phase also gives ``t`` (its start on the run clock) and ``duration``
``fault``
    a fault (``fault_id``, ``kind``, ``target``) took effect (``state="active"``) or was
    reverted (``state="reverted"``)
``sample``
    a canary ``sample`` (:class:`faultlab.journal.CanarySample`)
``monitor``
    a readiness poll ``sample`` (:class:`faultlab.journal.MonitorSample`)
``schedule``
    the timeline's ``step`` (``due`` or ``done`` with ``planned`` and ``record``; ``stopped``
    with ``status`` and ``reason``)
``decision``
    the run decided ``what`` (``abort``) and ``why``
``alert``
    the stack's monitoring sent an alert: ``status`` (firing, resolved), ``name``,
    ``labels``, ``t`` (received, on the run clock)
``service``
    a supervised process changed: ``kind`` (started, restarted, exited, restarting, gave_up,
    failed, killed, paused, resumed, stopped) of ``service``, with what is known of ``pid``,
    ``restart_count``, ``start_time``, ``exit_code``, ``ran_s``, ``by_operator``, ``delay_s``,
    ``signal``, ``reason``, ``error``

A component that another may share takes ``observers`` as either a :class:`Hub` or plain
callables (:meth:`Hub.of`), so the public calls (``run_scenario(observers=[...])``) keep
taking plain functions.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from faultlab.registry import unknown_name_message

__all__ = ["EVENTS", "Event", "Hub", "Observer"]

log = logging.getLogger(__name__)

class Observer(Protocol):
    """Anything called as ``observer(event=NAME, **arguments)``: a function taking
    ``**kwargs`` (or the arguments it wants by name, and ``**kwargs`` for the rest)."""

    def __call__(self, *args: Any, **kwargs: Any) -> None: ...


@dataclass(frozen=True)
class Event:
    """A named event and the keyword arguments it may carry."""

    name: str
    arguments: frozenset[str]


def _events(**arguments: str) -> dict[str, Event]:
    return {name: Event(name, frozenset(text.split())) for name, text in arguments.items()}


EVENTS: Mapping[str, Event] = _events(
    run="state run_id run_dir scenario status reason",
    trial="index total scenario trial trials",
    phase="name state t duration",
    fault="state fault_id kind target",
    sample="sample",
    monitor="sample",
    schedule="step planned record status reason",
    decision="what why",
    alert="status name labels t",
    service="kind service pid restart_count start_time exit_code ran_s by_operator delay_s signal reason error",
)
"""Every event a hub publishes, by name (documented in this module's docstring)."""


class Hub:
    """Observers of one run (or one component used alone), called for every published event.

    Thread-safe: probes, the supervisor and the scheduler publish from their own threads.
    """

    def __init__(self, observers: Iterable[Observer] = ()):
        self._lock = threading.Lock()
        self._observers: list[tuple[Observer, frozenset[str] | None]] = [(o, None) for o in observers]

    @classmethod
    def of(cls, observers: Hub | Iterable[Observer] | None) -> Hub:
        """``observers`` itself when it is a hub, else a new hub calling them."""
        if isinstance(observers, Hub):
            return observers
        return cls(observers or ())

    def subscribe(self, observer: Observer, *, events: Iterable[str] | None = None) -> None:
        """Call ``observer`` for every event from now on (only for ``events``, when given)."""
        wanted = None if events is None else frozenset(events)
        for name in wanted or ():
            if name not in EVENTS:
                raise ValueError(unknown_name_message("event", name, EVENTS))
        with self._lock:
            self._observers.append((observer, wanted))

    def publish(self, event: str, **arguments: Any) -> None:
        """Call every observer of ``event`` with ``event=`` and ``arguments``.

        Raises ``ValueError`` for an event or an argument that is not listed in
        :data:`EVENTS`; an observer's exception is logged and the others still run.
        """
        known = EVENTS.get(event)
        if known is None:
            raise ValueError(unknown_name_message("event", event, EVENTS))
        extra = set(arguments) - known.arguments
        if extra:
            raise ValueError(
                f"event {event!r} has no argument {', '.join(sorted(extra))}; "
                f"it takes {', '.join(sorted(known.arguments))}"
            )
        with self._lock:
            observers = list(self._observers)
        for observer, wanted in observers:
            if wanted is not None and event not in wanted:
                continue
            try:
                observer(event=event, **arguments)
            except Exception:
                log.exception("observer %r failed on event %r", observer, event)

    def __repr__(self) -> str:
        with self._lock:
            return f"Hub({len(self._observers)} observers)"
