"""Progress while a drill runs: a rich live view on a terminal, plain lines elsewhere (CI).

Both are observers of the run's hub (:mod:`faultlab.hub`: called with keyword arguments;
the events they do not show are ignored).
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from faultlab.model.types import text_of

__all__ = ["progress_observer"]


def _last_second(health: Any) -> tuple[float | None, float | None]:
    """Success rate and p99 of the second before the newest sample."""
    newest = health.newest()
    if newest is None:
        return None, None
    _, rate, p99 = health.since(newest - 1.0)
    return rate, p99


class PlainProgress:
    """One line per event, and a status line every few seconds (for logs and CI)."""

    def __init__(self, out: TextIO = sys.stderr, every_s: float = 5.0):
        self.out = out
        self.every_s = every_s
        from faultlab.engine.run import RollingHealth

        self.stats = RollingHealth(horizon_s=5.0)
        self._last = 0.0
        self.t_load: float | None = None
        self.duration: float | None = None

    def _line(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def __call__(self, event: str = "", **kw: Any) -> None:
        if event == "trial":
            scenario = kw["scenario"]
            self._line(f"[{kw['index']}/{kw['total']}] {scenario.id} trial {kw['trial']}/{kw['trials']}: "
                       f"{text_of(scenario.title, 'en')}")
        elif event == "run" and kw.get("state") == "begin":
            # a plan's runs share this observer; each run's clock starts at 0 again
            self.stats = type(self.stats)(horizon_s=5.0)
            self.t_load = None
            self._line(f"run {kw['run_id']}: {kw['scenario'].id} {text_of(kw['scenario'].title, 'en')}")
        elif event == "run":
            self._line(_run_ended(kw.get("status"), kw.get("reason")))
        elif event == "phase":
            if kw.get("name") == "load":
                self.t_load, self.duration = kw.get("t"), kw.get("duration")
            self._line(f"  {kw.get('name')} {kw.get('state')}")
        elif event == "fault":
            target = kw.get("target") or "stack"
            self._line(f"  fault {kw.get('fault_id')} {kw.get('kind')} on {target}: {kw.get('state')}")
        elif event == "decision":
            self._line(f"  decision: {kw.get('what')} ({kw.get('why')})")
        elif event == "service" and kw.get("kind") in _SERVICE_TROUBLE:
            self._line(f"  service {kw.get('service')} {_SERVICE_TROUBLE[kw['kind']]}" + _service_detail(kw))
        elif event == "sample":
            self.stats.add(kw["sample"])
            now = time.monotonic()
            if now - self._last >= self.every_s:
                self._last = now
                rate, p99 = _last_second(self.stats)
                t = kw["sample"].t_send - (self.t_load or 0.0)
                total = f"/{self.duration:g}" if self.duration else ""
                self._line(f"  t={t:5.1f}{total} s  success {_pct(rate)}  p99 {_ms(p99)}")


_SERVICE_TROUBLE = {"restarted": "restarted by its policy", "gave_up": "given up on", "failed": "failed to start"}
"""The supervisor's ``service`` events worth a line: a restart a fault caused, a service lost."""


def _service_detail(event: dict[str, Any]) -> str:
    if event.get("kind") == "restarted":
        return f" (restart {event.get('restart_count')}, pid {event.get('pid')})"
    detail = event.get("reason") or event.get("error") or (
        f"exit code {event['exit_code']}" if event.get("exit_code") is not None else "")
    return f" ({detail})" if detail else ""


def _run_ended(status: str | None, reason: str | None) -> str:
    """A failed or interrupted run raised its error, and the command prints that once: the
    line names the status only. An abort is a result, so its reason is shown here."""
    if status in ("failed", "interrupted") or not reason:
        return f"run ended: {status}"
    return f"run ended: {status}: {reason}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f} ms"


class RichProgress(PlainProgress):
    """A live panel: elapsed time against the duration, the timeline, active faults,
    success rate and p99 of the last second."""

    def __init__(self) -> None:
        super().__init__()
        from rich.console import Console
        from rich.live import Live

        self.console = Console(stderr=True)
        self.live = Live(console=self.console, refresh_per_second=4, transient=True)
        self.active: dict[str, str] = {}
        self.scenario: Any = None
        self.t_now = 0.0

    def _line(self, text: str) -> None:
        self.console.print(text, highlight=False)

    def __call__(self, event: str = "", **kw: Any) -> None:
        if event == "run" and kw.get("state") == "begin":
            self.scenario = kw["scenario"]
            self.live.start()
        if event == "fault":
            if kw.get("state") == "active":
                self.active[kw["fault_id"]] = f"{kw.get('kind')} on {kw.get('target') or 'stack'}"
            else:
                self.active.pop(str(kw.get("fault_id")), None)
        if event == "sample":
            self.stats.add(kw["sample"])
            self.t_now = kw["sample"].t_send
            self.live.update(self._panel())
            return
        super().__call__(event=event, **kw)
        if event == "run" and kw.get("state") == "end":
            self.live.stop()

    def _panel(self) -> Any:
        from rich.table import Table

        rate, p99 = _last_second(self.stats)
        t = self.t_now - (self.t_load or self.t_now)
        table = Table.grid(padding=(0, 2))
        table.add_row("scenario", f"{self.scenario.id} {text_of(self.scenario.title, 'en')}" if self.scenario else "")
        table.add_row("elapsed", f"{t:.1f} s of {self.duration:g} s" if self.duration else f"{t:.1f} s")
        steps = []
        for step in (self.scenario.timeline if self.scenario else []):
            what = getattr(step, "fault", None) or f"job {getattr(step, 'job', '')}"
            mark = "x" if t >= step.at else " "
            steps.append(f"[{mark}] {step.at:g}s {what}")
        table.add_row("timeline", "\n".join(steps))
        table.add_row("active faults", ", ".join(self.active.values()) or "none")
        table.add_row("success (1 s)", _pct(rate))
        table.add_row("p99 (1 s)", _ms(p99))
        return table


def progress_observer() -> PlainProgress:
    """A rich live view when standard error is a terminal, plain progress lines otherwise."""
    if sys.stderr.isatty():
        return RichProgress()
    return PlainProgress()
