"""The contract every fault kind meets, built-in or from a plugin.

A fault kind is a class registered under its YAML name in the ``faultlab.faults``
entry-point group. The scenario loader needs only its class attributes (``name``,
``summary``, ``Params``, ``target_types``, ``needs_for``); the drill engine calls
``inject`` and ``revert``.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable
from typing import Any, ClassVar, Literal

from pydantic import Field

from faultlab.model.types import Fraction, StrictModel

__all__ = ["FaultKind", "FaultParams", "NoParams", "ToxicParams", "TargetType", "TARGET_TYPES", "Stream",
           "start_background", "stop_background"]

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


class FaultKind(abc.ABC):
    """A kind of fault, such as ``db_stall`` or ``partition``.

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

    The engine's contract for ``inject`` and ``revert``:

    - The engine journals the planned fault and its revert plan *before* calling ``inject``.
    - ``inject`` returns once the fault has taken effect (the engine journals that moment
      as ``active``) or raises :class:`faultlab.errors.FaultError` with evidence.
    - ``revert`` is idempotent: calling it when the fault was never injected, was partly
      injected, or was already reverted is harmless. It is called in ``finally`` whatever
      happened, and by ``faultlab cleanup`` for a killed run. Instantaneous faults revert
      to a no-op (what follows a kill is the supervisor's business).
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    Params: ClassVar[type[FaultParams]] = NoParams
    target_types: ClassVar[frozenset[str]]
    needs_for: ClassVar[bool] = True

    @abc.abstractmethod
    def inject(self, ctx: Any, target: str, params: FaultParams) -> None:
        """Make the fault take effect on ``target``; return when it is in effect."""

    @abc.abstractmethod
    def revert(self, ctx: Any, target: str, params: FaultParams) -> None:
        """Undo the fault on ``target``; harmless to call twice or without an inject."""

    @classmethod
    def validate_params(cls, params: dict[str, Any]) -> FaultParams:
        """The parameters as a validated ``Params`` model (raises pydantic's ValidationError)."""
        return cls.Params.model_validate(params)


def start_background(ctx: Any, name: str, work: Callable[[threading.Event], None]) -> None:
    """Run ``work(stop)`` in a daemon thread for as long as the fault is active.

    ``work`` should return soon after ``stop`` is set; :func:`stop_background` (from
    ``revert``) sets it and waits for the thread.
    """
    stop = threading.Event()
    thread = threading.Thread(target=work, args=(stop,), name=name, daemon=True)
    ctx.state.update(background_stop=stop, background_thread=thread)
    thread.start()


def stop_background(ctx: Any, timeout: float = 10.0) -> None:
    """Stop the thread :func:`start_background` started, if any; safe to call twice."""
    stop = ctx.state.pop("background_stop", None)
    if stop is not None:
        stop.set()
        ctx.state.pop("background_thread").join(timeout=timeout)
