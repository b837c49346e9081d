"""The contract every fault kind meets, built-in or from a plugin.

A fault kind is a class registered under its YAML name in the ``faultlab.faults``
entry-point group. The scenario loader needs only its class attributes (``name``,
``summary``, ``Params``, ``target_types``, ``needs_for``, ``requires``); the drill engine
calls ``inject`` and ``revert``.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import Field

from faultlab.model.types import Fraction, StrictModel

if TYPE_CHECKING:
    from faultlab.engine.context import FaultContext

__all__ = ["FaultKind", "FaultParams", "NoParams", "ToxicParams", "TargetType", "TARGET_TYPES", "Stream",
           "Background", "start_background", "stop_background"]

TargetType = Literal["link", "service", "postgres", "job", "stack"]
TARGET_TYPES: tuple[str, ...] = ("link", "service", "postgres", "job", "stack")

Stream = Literal["upstream", "downstream", "both"]


class FaultParams(StrictModel):
    """Base of a fault kind's parameters, written inline in a timeline entry."""


class NoParams(FaultParams):
    """The fault takes no parameters."""


class ToxicParams(FaultParams):
    """Parameters every proxy toxic shares."""

    stream: Stream = Field(
        "downstream",
        description="direction the toxic acts on: upstream (client to server), downstream, or both",
    )
    toxicity: Fraction = Field(
        1.0, description="probability that a connection is affected (0..1 or a percentage)"
    )


P = TypeVar("P", bound=FaultParams)
Injected = TypeVar("Injected")


class FaultKind(abc.ABC, Generic[P, Injected]):
    """A kind of fault, such as ``db_stall`` or ``partition``; ``FaultKind[Params, Injected]``.

    Class attributes (read by the loader, the schema and ``faultlab kinds``):

    - ``name``: the YAML string in ``fault:``.
    - ``summary``: one line of help.
    - ``Params``: a strict pydantic model of the parameters written inline in the
      timeline entry (``{at: 15s, fault: db_stall, target: db, for: 20s, mode: freeze}``).
    - ``target_types``: which targets it accepts: ``link``, ``service`` (a command or image
      service), ``postgres`` (a built-in PostgreSQL service), ``job`` or ``stack`` (the whole
      stack; the target may then be left out).
    - ``needs_for``: True when the fault lasts and is reverted at ``at + for``; False when it
      is instantaneous (a kill), in which case ``for`` is refused.
    - ``requires``: the runtime capabilities it may use
      (:data:`faultlab.runtime.base.CAPABILITIES`); :meth:`needs` narrows them for given
      parameters. The loader refuses the kind on a runtime that lacks them.

    The engine's contract for ``inject`` and ``revert``:

    - The engine journals the planned fault and its revert plan *before* calling ``inject``.
    - ``inject(ctx, target, params)`` returns once the fault has taken effect (the engine
      journals that moment as ``active``, or the moment the fault calls
      ``ctx.mark_active()``) or raises :class:`faultlab.errors.FaultError` with evidence. It
      returns what ``revert`` needs to undo it: the kind's own small object (``Injected``),
      or None when there is nothing to undo.
    - A fault that can fail half way hands its result object to the engine *before* its
      risky steps, with ``ctx.keep(obj)``, and records its progress in it as it goes: when
      ``inject`` raises, the engine reverts with what was kept.
    - ``revert(ctx, target, params, injected)`` is idempotent: it undoes what ``injected``
      says was done, is harmless with None (nothing was done), and is harmless when called
      again with the same object (it marks it undone). It is called in ``finally`` whatever
      happened; ``faultlab cleanup`` reverts a killed run's leftovers from the ledger
      entries the fault wrote before acting. Instantaneous faults mostly revert to a
      no-op (what follows a kill is the supervisor's business).
    - Faults reach the running stack only through ``ctx.stack``, a
      :class:`faultlab.runtime.base.StackHandle`, never a runtime's own classes.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    Params: ClassVar[type[FaultParams]] = NoParams
    target_types: ClassVar[frozenset[str]]
    needs_for: ClassVar[bool] = True
    requires: ClassVar[frozenset[str]] = frozenset()

    @abc.abstractmethod
    def inject(self, ctx: FaultContext, target: str, params: P) -> Injected | None:
        """Make the fault take effect on ``target``; return when it is in effect, with what
        :meth:`revert` needs (or None)."""

    @abc.abstractmethod
    def revert(self, ctx: FaultContext, target: str, params: P, injected: Injected | None) -> None:
        """Undo what ``injected`` says was done; harmless to call twice or with None."""

    @classmethod
    def validate_params(cls, params: dict[str, Any]) -> FaultParams:
        """The parameters as a validated ``Params`` model (raises pydantic's ValidationError)."""
        return cls.Params.model_validate(params)

    @classmethod
    def needs(cls, params: Any) -> frozenset[str]:
        """The runtime capabilities this fault needs with ``params`` (all of ``requires`` unless
        a kind narrows it: ``db_stall`` in mode ``lock`` needs no freezing)."""
        return cls.requires


@dataclass
class Background:
    """A helper thread a fault runs while it is active (see :func:`start_background`)."""

    name: str
    stop_event: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to stop and wait for it; safe to call twice."""
        self.stop_event.set()
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(timeout=timeout)


def start_background(name: str, work: Callable[[threading.Event], None]) -> Background:
    """Run ``work(stop)`` in a daemon thread for as long as the fault is active.

    Keep the returned :class:`Background` in the fault's inject result; ``revert`` stops it
    with :func:`stop_background`. ``work`` should return soon after ``stop`` is set.
    """
    background = Background(name)
    background.thread = threading.Thread(target=work, args=(background.stop_event,), name=name, daemon=True)
    background.thread.start()
    return background


def stop_background(background: Background | None, timeout: float = 10.0) -> None:
    """Stop a thread :func:`start_background` started, if any; safe to call twice."""
    if background is not None:
        background.stop(timeout)
