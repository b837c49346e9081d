"""Who answers for the people: a scripted operator (tests, CI) and the terminal.

Each operator has ``attach(desk, programme)`` (called when the load starts) and ``close()``.
They act only through the :class:`~faultlab.programme.desk.Desk`, like the console's buttons.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import IO, TYPE_CHECKING, Any

from faultlab.model.operators import OperatorScript, Response
from faultlab.programme.desk import Desk, DeskRefusal

if TYPE_CHECKING:
    from faultlab.programme.run import Programme

__all__ = ["ScriptedOperator", "TerminalOperator"]

log = logging.getLogger(__name__)

_PERSON_KINDS = ("manual", "notify")


class ScriptedOperator:
    """Scripted people (an :class:`~faultlab.model.operators.OperatorScript`) doing what the
    desk asks of them, each after its delay: a step's start when it is ready, its done after
    its start (manual and notify steps), its confirmation after its done, a decision's
    confirmation after it triggered. What the script leaves out nobody does."""

    def __init__(self, script: OperatorScript, *, gameday: bool = False):
        self.script = script
        self.gameday = gameday
        self.desk: Desk | None = None
        self._queue: list[tuple[float, int, str, Callable[[], Any]]] = []
        self._counter = itertools.count()
        self._cond = threading.Condition()
        self._closed = False
        self._scheduled: set[tuple[str, str]] = set()
        self._thread: threading.Thread | None = None

    def attach(self, desk: Desk, programme: Programme | None = None) -> None:
        self.desk = desk
        desk.know(p.person() for p in self.script.participants)
        desk.listen(self._on_event)
        self._thread = threading.Thread(target=self._loop, name="faultlab-operator-script", daemon=True)
        self._thread.start()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _schedule(self, key: tuple[str, str], response: Response | None, act: Callable[[str], Any]) -> None:
        if response is None or key in self._scheduled:
            return
        self._scheduled.add(key)
        due = time.monotonic() + response.after
        with self._cond:
            heapq.heappush(self._queue, (due, next(self._counter), f"{key[1]} {key[0]} by {response.by}",
                                         lambda: act(response.by)))
            self._cond.notify_all()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (not self._queue or self._queue[0][0] > time.monotonic()):
                    wait = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._cond.wait(timeout=wait if wait is None else max(0.0, min(wait, 0.5)))
                if self._closed:
                    return
                _, _, what, act = heapq.heappop(self._queue)
            try:
                act()
            except DeskRefusal as exc:
                log.info("scripted %s refused: %s", what, exc)
            except Exception:  # noqa: BLE001 - a script step that fails is logged, the drill goes on
                log.exception("scripted %s failed", what)

    def _on_event(self, event: str, fields: Mapping[str, Any]) -> None:
        desk = self.desk
        assert desk is not None
        if event == "decision" and fields.get("event") == "triggered":
            rule = str(fields["decision"])
            entry = self.script.decisions.get(rule)
            if entry is not None:
                self._schedule((rule, "confirm-decision"), entry.confirm, lambda by: desk.confirm_decision(rule, by))
            return
        if event != "step":
            return
        step_id = str(fields["step"])
        script = self.script.steps.get(step_id)
        state = desk.steps.get(step_id)
        if script is None or state is None:
            return
        kind, what = state.kind, fields.get("event")
        person_starts = kind in _PERSON_KINDS or (kind == "action" and self.gameday)
        if what == "ready":
            self._schedule((step_id, "skip"), script.skip, lambda by: desk.skip(step_id, by, "skipped by script"))
            if person_starts and script.start is not None:
                self._schedule((step_id, "start"), script.start, lambda by: desk.start(step_id, by))
            elif kind in _PERSON_KINDS:
                self._schedule((step_id, "done"), script.done, lambda by: desk.done(step_id, by))
        elif what == "started" and kind in _PERSON_KINDS:
            self._schedule((step_id, "done"), script.done, lambda by: desk.done(step_id, by))
        elif what == "done" and state.four_eyes:
            self._schedule((step_id, "confirm"), script.confirm, lambda by: desk.confirm(step_id, by))


class TerminalOperator:
    """People at the terminal: each prompt says what to type; lines are read from ``stdin``.

    Commands: ``start STEP NAME``, ``done STEP NAME``, ``confirm STEP NAME``,
    ``skip STEP NAME``, ``decide RULE NAME`` (NAME may have spaces).
    """

    def __init__(self, stdin: IO[str] | None = None, stdout: IO[str] | None = None):
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        self.desk: Desk | None = None
        self._thread: threading.Thread | None = None

    def attach(self, desk: Desk, programme: Programme | None = None) -> None:
        self.desk = desk
        desk.listen(self._on_event)
        self._thread = threading.Thread(target=self._read, name="faultlab-operator-terminal", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """The reading thread is a daemon: it ends with the process."""

    def _say(self, text: str) -> None:
        print(text, file=self.stdout, flush=True)

    def _on_event(self, event: str, fields: Mapping[str, Any]) -> None:
        desk = self.desk
        assert desk is not None
        if event == "step" and fields.get("event") == "ready":
            state = desk.steps[str(fields["step"])]
            if state.kind in _PERSON_KINDS:
                self._say(f">>> step {state.id} ({state.kind}) is ready: type `done {state.id} YOUR NAME`")
        elif event == "step" and fields.get("event") == "done":
            state = desk.steps[str(fields["step"])]
            if state.four_eyes:
                self._say(f">>> step {state.id} needs a second person: type `confirm {state.id} YOUR NAME`")
        elif event == "decision" and fields.get("event") == "triggered":
            rule = desk.decisions[str(fields["decision"])]
            if rule.status == "awaiting":
                self._say(f">>> decision {rule.id} ({rule.rule}) awaits the {rule.role}: "
                          f"type `decide {rule.id} YOUR NAME`")

    def _read(self) -> None:
        desk = self.desk
        assert desk is not None
        verbs: dict[str, Callable[[str, str], Any]] = {
            "start": desk.start, "done": desk.done, "confirm": desk.confirm,
            "skip": lambda step, by: desk.skip(step, by, "skipped at the terminal"),
            "decide": desk.confirm_decision,
        }
        for line in self.stdin:
            words = line.split()
            if len(words) < 3 or words[0] not in verbs:
                self._say("??? type: start|done|confirm|skip STEP NAME, or decide RULE NAME")
                continue
            try:
                verbs[words[0]](words[1], " ".join(words[2:]))
            except DeskRefusal as exc:
                self._say(f"!!! refused: {exc}")
