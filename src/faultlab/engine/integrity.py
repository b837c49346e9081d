"""The data-integrity check at the end of a run, re-performable when the plugin allows it.

When the stack's plugin exports its end state (``faultlab_export_state``) and checks it
offline (``faultlab_check_state``), the end state goes into the run directory (``state/``,
hashed with the rest of the package) and the check runs on those files, so ``faultlab verify
--recompute`` can run it again and get the same answer. Otherwise the plugin's live
``faultlab_integrity`` runs. Either way the result is one ``integrity`` journal record.

Which requests are looked for: every acknowledged one (canary and load), and every
*attempted* one, sent with an id and left without an answer in time (a timeout, a
connection cut, an answer after the canary's timeout). The client cannot know whether those
exist; the end state says (as Jepsen's checkers resolve indeterminate operations).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from faultlab.journal import Integrity, JournalWriter, RequestSample, read_samples
from faultlab.plugin import DrillPlugin, IntegrityReport

__all__ = ["STATE_DIR", "acknowledged", "attempted", "integrity_figures", "check_integrity"]

STATE_DIR = "state"
"""The folder of the run directory holding the system's end state."""


def acknowledged(canary: Sequence[Any], requests_path: Path) -> dict[str, float]:
    """Every acknowledgement of the run (canary and load) with the send time of its request."""
    sent_at = {str(s.ack): float(s.t_send) for s in canary if s.ack}
    requests, _ = read_samples(requests_path, RequestSample)
    for request in requests:
        if request.ok and request.ack:
            sent_at.setdefault(request.ack, request.t)
    return sent_at


def attempted(canary: Sequence[Any], requests_path: Path, acked: Iterable[str]) -> set[str]:
    """Ids of requests that got no answer in time and were never acknowledged."""
    found = {s.request_id for s in canary if not s.ok and s.request_id}
    requests, _ = read_samples(requests_path, RequestSample)
    found |= {r.request_id for r in requests if not r.ok and r.status is None and r.request_id}
    return found - set(acked)


def _tally(outcomes: dict[str, str], ids: Iterable[str]) -> dict[str, int]:
    return dict(Counter(outcomes[i] for i in ids if i in outcomes))


def integrity_figures(found: IntegrityReport, acked: set[str], unknown: set[str]) -> dict[str, Any]:
    """The figures of the ``integrity`` record for a check's report: what the run journals
    and what ``faultlab verify --recompute`` compares after re-performing the check."""
    outcomes = dict(found.outcomes)
    return {
        "acknowledged": found.acknowledged, "checked": dict(found.checked),
        "violations": [v.to_json() for v in found.violations], "attempted": len(unknown),
        "outcomes": {"acknowledged": _tally(outcomes, acked), "attempted": _tally(outcomes, unknown)}
        if outcomes else {},
    }


def check_integrity(stack: Any, plugin: DrillPlugin, acked: set[str], unknown: set[str], *,
                    settle_s: float, run_dir: Path, journal: JournalWriter) -> IntegrityReport | None:
    """Run the integrity check (on the exported end state when the plugin can) and journal
    it; a failing check is a warning note in the journal, never a crash of the run."""
    state = run_dir / STATE_DIR if plugin.re_performable else None
    try:
        if state is not None:
            plugin.export_state(stack, state)
            found = plugin.check_state(state, acked, unknown, settle_s=settle_s)
        else:
            found = plugin.integrity(stack, acked, settle_s=settle_s)
    except Exception as exc:  # noqa: BLE001 - the check's failure is evidence, not a crash
        journal.note(f"integrity check failed: {type(exc).__name__}: {exc}", level="warning")
        return None
    if found is None:
        return None
    journal.write(Integrity(t=journal.t(), **integrity_figures(found, acked, unknown),
                            state=STATE_DIR if state is not None else ""))
    return found
