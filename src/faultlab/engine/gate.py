"""The CI gate as library calls: :func:`run_gate` and :func:`measure_baseline`.

Both run every scenario of a plan for N trials (:func:`faultlab.engine.plan.run_trials`) and
summarise each measure's distribution (:mod:`faultlab.gate`). ``run_gate`` compares them
with a stored baseline under the plan's ``gate:`` rules and with the scenarios' targets and
writes ``gate.json`` and ``junit.xml``; ``measure_baseline`` returns the baseline file's body.
The baseline is read and checked before anything starts (every problem at once, exit 2).

A gate's folder is a package like a run's: the plan, its scenarios, stacks and the baseline
are pre-registered in its ``inputs/`` before the first trial, ``gate.json`` names the
baseline by its SHA-256, and the folder gets a manifest (each trial's journal chain head
included) sealed with the drill lead's key and a register line.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faultlab.engine.plan import Trial, run_trials
from faultlab.errors import InputError, Problem
from faultlab.model.types import text_of

if TYPE_CHECKING:
    from faultlab.evidence.seal import Seal, Sealer

__all__ = ["DEFAULT_TRIALS", "GateRun", "BaselineRun", "trial_count", "load_baseline", "run_gate",
           "measure_baseline"]

log = logging.getLogger(__name__)

DEFAULT_TRIALS = 3
"""Trials per scenario when neither the caller nor the plan says."""

Observer = Callable[..., None]


@dataclass(frozen=True)
class GateRun:
    """A gate run: the result, where it was written, what was worth a warning, its seal."""

    result: Any
    gate_dir: Path
    warnings: list[str] = field(default_factory=list)
    seal: Seal | None = None


@dataclass(frozen=True)
class BaselineRun:
    """A baseline measured: the file's body, the scenarios' measures, the targets missed."""

    body: dict[str, Any]
    measures: dict[str, dict[str, Any]]
    missed: list[str]
    run_root: Path


def trial_count(plan: Any, trials: int | None) -> int:
    """``trials`` when given (at least 1), else the plan's ``trials:``, else :data:`DEFAULT_TRIALS`."""
    if trials is not None:
        if trials < 1:
            raise InputError(f"--trials must be at least 1, got {trials}")
        return trials
    return int(plan.trials) if "trials" in plan.model_fields_set else DEFAULT_TRIALS


def _by_scenario(plan: Any, done: list[Trial]) -> list[tuple[Any, list[Trial]]]:
    return [(s, [t for t in done if t.scenario is s]) for s in plan.resolved_scenarios]


def _distributions(trials: list[Trial]) -> dict[str, Any]:
    from faultlab.gate import MEASURES, distribution, trial_values

    values = [trial_values(t.analysis) for t in trials]
    return {name: distribution(v[name] for v in values) for name in MEASURES}


def _provenance(plan: Any, trials: int) -> dict[str, Any]:
    from faultlab import __version__
    from faultlab.loader import display_path
    from faultlab.report.manifest import git_commit

    return {
        "plan": {"file": display_path(plan.source), "title": text_of(plan.title, "en")},
        "trials": trials,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"host": socket.gethostname(), "cpu_count": os.cpu_count(),
                    "python": platform.python_version(), "platform": platform.platform()},
        "git": git_commit(),
        "faultlab_version": __version__,
    }


def _scenario_sha(scenario: Any) -> str:
    from faultlab.report.manifest import file_sha256

    return file_sha256(Path(scenario.source))


def load_baseline(path: Path, plan: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read and check the baseline: every problem at once (an InputError, exit 2)."""
    from faultlab.gate import read_baseline

    file = str(path)
    hint = "create it with `faultlab baseline update PLAN --out FILE`"
    if not path.exists():
        raise InputError([Problem(file, 0, 0, "", f"the baseline file does not exist; {hint}")])
    if path.is_dir():
        raise InputError([Problem(file, 0, 0, "", f"the baseline is a directory, not a baseline file; {hint}")])
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError([Problem(file, 0, 0, "", f"cannot read the baseline: {exc}")]) from exc
    header, scenarios = read_baseline(text, file)
    missing = [s.id for s in plan.resolved_scenarios if s.id not in scenarios]
    if missing:
        raise InputError([Problem(file, 0, 0, "scenarios", (
            f"no baseline for scenario {sid} of the plan (the baseline has: {', '.join(scenarios) or 'none'}); "
            "run `faultlab baseline update` after adding a scenario")) for sid in missing])
    return header, scenarios


def _seal_gate(gate_dir: Path, gate_id: str, done: list[Trial], sealer: Sealer | None) -> Seal | None:
    """The gate folder's manifest (every trial by path, with its manifest's SHA-256 when it
    has one), sealed with ``sealer`` when given."""
    from faultlab.report.manifest import MANIFEST_FILE, file_sha256, write_manifest

    def manifest_of(run_dir: Path) -> str | None:
        return file_sha256(run_dir / MANIFEST_FILE) if (run_dir / MANIFEST_FILE).exists() else None

    runs = [{"run_id": t.analysis.run_id, "scenario": t.scenario.id,
             "path": Path(os.path.relpath(t.run_dir, gate_dir)).as_posix(), "passed": t.analysis.passed,
             "outcome": t.analysis.outcome, "manifest_sha256": manifest_of(t.run_dir)}
            for t in done]
    write_manifest(gate_dir, {"kind": "gate", "id": gate_id, "runs": runs})
    if sealer is None:
        return None
    from faultlab.evidence.seal import seal

    return seal(gate_dir, kind="gate", id=gate_id, sealer=sealer)


def run_gate(
    plan: Any,
    *,
    baseline: str | Path | None = None,
    trials: int | None = None,
    reports_dir: str | Path = "reports",
    observers: Sequence[Observer] = (),
    state_dir: str | Path | None = None,
    sealer: Sealer | None = None,
) -> GateRun:
    """Run the gate of ``plan`` against ``baseline`` (the plan's ``baseline:`` by default) and
    write ``gate.json`` and ``junit.xml`` under ``<reports_dir>/<plan>/gate-<UTC time>/``, with
    its manifest, sealed with ``sealer`` when given (also when the trials fail)."""
    from faultlab.evidence.inputs import preregister_plan
    from faultlab.gate import GateResult, ScenarioGate, compare, distribution, judge_targets
    from faultlab.journal.chain import REGISTRATION_FILE
    from faultlab.loader import display_path
    from faultlab.report.gate import write_gate_json, write_gate_junit

    count = trial_count(plan, trials)
    baseline_path = baseline or plan.baseline
    if baseline_path is None:
        raise InputError([Problem(str(plan.source), 0, 0, "baseline", (
            "no baseline to compare with: pass --baseline FILE or set `baseline:` in the plan; "
            "create one with `faultlab baseline update PLAN`"))])
    baseline_header, stored = load_baseline(Path(baseline_path), plan)
    warnings: list[str] = []
    if not plan.gate:
        warnings.append("the plan has no `gate:` rules: only the scenarios' targets are checked")
    if count < 2:
        warnings.append("one trial cannot show the spread between runs: the noise rule is weak")

    gate_dir = Path(reports_dir) / Path(plan.source).stem / f"gate-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}"
    gate_id = f"{Path(plan.source).stem}-{gate_dir.name}"
    gate_dir.mkdir(parents=True, exist_ok=True)
    preregister_plan(gate_dir, plan, kind="gate", id=gate_id, extra=[("baseline", baseline_path)])
    registered = json.loads((gate_dir / REGISTRATION_FILE).read_text(encoding="utf-8"))
    baseline_sha = next(f["sha256"] for f in registered["inputs"] if f["role"] == "baseline")
    info = {**_provenance(plan, count), "baseline_sha256": baseline_sha, "baseline_info": {
        k: baseline_header.get(k) for k in ("created", "machine", "git", "trials")}}
    started = time.monotonic()
    done: list[Trial] = []
    try:
        done = run_trials(plan, count, gate_dir, observers=observers, state_dir=state_dir)
    except BaseException as exc:
        write_gate_json(gate_dir / "gate.json", {"schema": "faultlab.gate/1", "passed": False,
                                                 "baseline": display_path(Path(baseline_path)), **info,
                                                 "error": f"{type(exc).__name__}: {exc}"})
        try:
            _seal_gate(gate_dir, gate_id, done, sealer)
        except Exception:  # noqa: BLE001 - the trials' own failure is what the caller must see
            log.warning("could not seal the gate folder %s", gate_dir, exc_info=True)
        raise
    scenario_gates = []
    for scenario, runs in _by_scenario(plan, done):
        measures = _distributions(runs)
        base = stored[scenario.id]
        notes = []
        if base.sha256 and base.sha256 != _scenario_sha(scenario):
            notes.append(f"the scenario file changed since the baseline was measured ({display_path(scenario.source)})")
        rules = [compare(key, tol, base.measures.get(key.partition(".")[0], distribution(())),
                         measures[key.partition(".")[0]])
                 for key, tol in plan.gate.items()]
        scenario_gates.append(ScenarioGate(
            scenario=scenario.id, title=text_of(scenario.title, "en") or "", runs=[str(t.run_dir) for t in runs],
            measures=measures, rules=rules, targets=judge_targets([t.analysis for t in runs]), warnings=notes,
        ))
    info["duration_s"] = round(time.monotonic() - started, 1)
    info["warnings"] = warnings
    result = GateResult(scenario_gates, display_path(Path(baseline_path)), info)
    write_gate_json(gate_dir / "gate.json", result)
    write_gate_junit(result, gate_dir / "junit.xml")
    return GateRun(result, gate_dir, warnings, _seal_gate(gate_dir, gate_id, done, sealer))


def measure_baseline(
    plan: Any,
    *,
    trials: int | None = None,
    reports_dir: str | Path = "reports",
    observers: Sequence[Observer] = (),
    state_dir: str | Path | None = None,
) -> BaselineRun:
    """Run the plan's trials and return the baseline file's body (not written here)."""
    from faultlab.gate import BASELINE_SCHEMA, baseline_scenario, judge_targets
    from faultlab.loader import display_path
    from faultlab.report.gate import target_message

    count = trial_count(plan, trials)
    run_root = Path(reports_dir) / Path(plan.source).stem / f"baseline-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}"
    done = run_trials(plan, count, run_root, observers=observers, state_dir=state_dir)
    body: dict[str, Any] = {"schema": BASELINE_SCHEMA, **_provenance(plan, count), "scenarios": {}}
    measures: dict[str, dict[str, Any]] = {}
    missed = []
    for scenario, runs in _by_scenario(plan, done):
        measures[scenario.id] = _distributions(runs)
        body["scenarios"][scenario.id] = baseline_scenario(
            scenario.id, text_of(scenario.title, "en") or "", display_path(scenario.source), _scenario_sha(scenario),
            [t.analysis.run_id for t in runs], measures[scenario.id])
        missed += [f"{scenario.id}: {target_message(t)}" for t in judge_targets([t.analysis for t in runs])
                   if t.failed]
    return BaselineRun(body, measures, missed, run_root)
