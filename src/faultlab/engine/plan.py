"""Drill plans as library calls: every scenario of a plan, its trials interleaved.

:func:`run_trial` runs one scenario, analyses it once and writes its reports;
:func:`run_trials` does that for every scenario of a plan, trial 1 of each first, then
trial 2..., so a slow drift of the machine spreads over all scenarios alike;
:func:`run_plan` adds the plan's book. ``faultlab drill``, ``faultlab gate`` and the pytest
plugin all run scenarios through these.

Every run is pre-registered before it starts (its ``inputs/``), and with a ``sealer``
(:class:`faultlab.evidence.seal.Sealer`) sealed once its reports are written; a plan's
folder pre-registers the plan, its scenarios and stacks before the first trial, each run's
registration names that record's SHA-256, and the book's manifest is sealed last.

Observers (plain callables or a :class:`~faultlab.hub.Hub`) get ``event="trial"``
(``index``, ``total``, ``scenario``, ``trial``, ``trials``) before each run, then the run's own
events (see :mod:`faultlab.hub`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faultlab.engine.run import run_scenario
from faultlab.hub import Hub, Observer

if TYPE_CHECKING:
    from faultlab.evidence.seal import Seal, Sealer
    from faultlab.programme.run import Crew

__all__ = ["Trial", "PlanResult", "plan_info", "run_trial", "run_trials", "run_plan"]

@dataclass(frozen=True)
class Trial:
    """One run of one scenario: where it was written, its analysis and its seal (None when
    it was not sealed)."""

    scenario: Any
    number: int
    run_dir: Path
    analysis: Any
    seal: Seal | None = None


@dataclass(frozen=True)
class PlanResult:
    """A drill plan's runs, where they went and its book."""

    plan: Any
    plan_dir: Path
    trials: list[Trial]
    book: Any = None
    duration_s: float = 0.0
    seal: Seal | None = None

    @property
    def analyses(self) -> list[Any]:
        """The analyses of every run, in the order they ran."""
        return [t.analysis for t in self.trials]

    @property
    def passed(self) -> bool:
        """True when every run met every target and completed."""
        return all(t.analysis.passed for t in self.trials)


def plan_info(plan: Any) -> dict[str, Any]:
    """What the reports show of a plan (title, environment, participants, approvals, file).

    Localisable texts stay as written (a text or ``{"en", "ja"}``); each report takes the
    variant of its language.
    """
    from faultlab.model.types import text_json

    return {
        "title": text_json(plan.title),
        "environment": text_json(plan.environment),
        "participants": [p.model_dump(mode="json") for p in plan.participants],
        "approvals": [a.model_dump(mode="json") for a in plan.approvals],
        "verified_approvals": list(getattr(plan, "verified_approvals", [])),
        "file": str(plan.source),
    }


def run_trial(
    scenario: Any,
    *,
    reports_dir: str | Path,
    group: str | None = None,
    number: int = 1,
    langs: Sequence[str] = ("en",),
    info: dict[str, Any] | None = None,
    observers: Hub | Iterable[Observer] = (),
    state_dir: str | Path | None = None,
    sealer: Sealer | None = None,
    inputs: Sequence[tuple[str, str | Path]] = (),
    crew: Crew | None = None,
) -> Trial:
    """Run ``scenario`` once, analyse it once, and write its reports in ``langs`` (none when
    empty), sealed with ``sealer`` when given. ``inputs`` are pre-registered with the
    scenario and its stack (the plan: ``("plan", path)``; the drill plan's file named in
    ``info`` is registered by default). Raises what :func:`run_scenario` raises."""
    from faultlab.analysis import analyse
    from faultlab.report import write_reports

    extra = list(inputs) or ([("plan", info["file"])] if info and info.get("file") else [])
    result = run_scenario(scenario, reports_dir=reports_dir, group=group, observers=observers, state_dir=state_dir,
                          inputs=extra, crew=crew)
    analysis = analyse(result.run_dir)
    sealed = None
    if langs:
        files = write_reports(result.run_dir, langs=list(langs), plan_info=info, analysis=analysis, sealer=sealer)
        sealed = files.seal
    return Trial(scenario, number, result.run_dir, analysis, sealed)


def run_trials(
    plan: Any,
    trials: int,
    out_dir: str | Path,
    *,
    langs: Sequence[str] = (),
    info: dict[str, Any] | None = None,
    observers: Hub | Iterable[Observer] = (),
    state_dir: str | Path | None = None,
    sealer: Sealer | None = None,
    crew: Callable[[Any], Crew | None] | None = None,
) -> list[Trial]:
    """Every scenario of ``plan`` ``trials`` times, interleaved, under ``out_dir/runs``.
    When ``out_dir`` holds the plan's pre-registration (``inputs/``), each run registers a
    copy of it (``inputs/plan-registration/``), naming its SHA-256."""
    from faultlab.journal.chain import REGISTRATION_FILE

    scenarios = plan.resolved_scenarios
    total = len(scenarios) * trials
    hub = Hub.of(observers)
    done: list[Trial] = []
    inputs: list[tuple[str, str | Path]] = [("plan", plan.source)] if plan.source else []
    registered = Path(out_dir) / REGISTRATION_FILE
    if registered.is_file():
        inputs.append(("plan-registration", registered))
    for number in range(1, trials + 1):
        for scenario in scenarios:
            hub.publish("trial", index=len(done) + 1, total=total, scenario=scenario, trial=number, trials=trials)
            done.append(run_trial(scenario, reports_dir=out_dir, group="runs", number=number, langs=langs,
                                  info=info, observers=hub, state_dir=state_dir, sealer=sealer, inputs=inputs,
                                  crew=crew(scenario) if crew is not None else None))
    return done


def _plan_folder(plan: Any, reports_dir: str | Path) -> Path:
    """``<reports_dir>/<plan name>/<UTC time>/``, a plan's new folder."""
    return Path(reports_dir) / Path(plan.source).stem / time.strftime("%Y%m%dT%H%M%S", time.gmtime())


def run_plan(
    plan: Any,
    *,
    reports_dir: str | Path = "reports",
    langs: Sequence[str] | None = None,
    trials: int | None = None,
    observers: Hub | Iterable[Observer] = (),
    state_dir: str | Path | None = None,
    sealer: Sealer | None = None,
    crew: Callable[[Any], Crew | None] | None = None,
) -> PlanResult:
    """Run a drill plan: every scenario ``trials`` times (the plan's by default), each run's
    reports in ``langs`` (the plan's by default), and the book over all runs, under
    ``<reports_dir>/<plan name>/<UTC time>/``. The plan, its scenarios and stacks are
    pre-registered there before the first trial; with a ``sealer`` every run and the book
    are sealed. ``crew(scenario)`` gives each run the people answering its runbook and
    decision rules (a new crew per run: operators are started and closed with each)."""
    from faultlab.evidence.inputs import preregister_plan
    from faultlab.report import write_book

    langs = list(langs or plan.languages)
    info = plan_info(plan)
    plan_dir = _plan_folder(plan, reports_dir)
    plan_id = f"{Path(plan.source).stem}-{plan_dir.name}"
    extra = [("runbook", s.runbook.file) for s in plan.resolved_scenarios if s.runbook is not None]
    extra += [("approval", a["file"]) for a in getattr(plan, "verified_approvals", [])]
    preregister_plan(plan_dir, plan, kind="plan", id=plan_id, extra=extra)
    started = time.monotonic()
    done = run_trials(plan, trials or plan.trials, plan_dir, langs=langs, info=info, observers=observers,
                      state_dir=state_dir, sealer=sealer, crew=crew)
    register = _register(plan, reports_dir, done, langs)
    book = write_book(plan_dir, [t.analysis for t in done], info, langs=langs, plan_id=plan_id, sealer=sealer,
                      register=register)
    return PlanResult(plan, plan_dir, done, book, round(time.monotonic() - started, 1), book.seal)


def _register(plan: Any, reports_dir: str | Path, done: Sequence[Trial], langs: Sequence[str]) -> Any:
    """The register of the programme the plan names, drawn up after this drill over every run
    of the reports folder, and written beside the drill books; None without a programme."""
    if plan.programme is None:
        return None
    from datetime import UTC, datetime

    from faultlab.loader import load_programme
    from faultlab.register import programme_register
    from faultlab.report.register import write_register

    programme = load_programme(plan.programme)
    register = programme_register(programme, reports_dir, datetime.now(UTC),
                                  analysed={t.run_dir: t.analysis for t in done})
    write_register(register, Path(reports_dir) / Path(programme.plan).stem, langs=langs)
    return register


