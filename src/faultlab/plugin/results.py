"""What the plugin's hooks return, typed: a canary outcome and an integrity report.

Hooks may return these classes or plain mappings with the same fields (a plugin need not
import faultlab); :func:`canary_outcome` and :func:`integrity_report` normalise both and
refuse what does not fit, naming the field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from faultlab.plugin.declaration import ABSENT, Declaration

__all__ = ["CanaryOutcome", "Violation", "IntegrityReport", "canary_outcome", "integrity_report"]


@dataclass(frozen=True)
class CanaryOutcome:
    """One canary request: ``ack`` is what the system acknowledged (an id), None if nothing;
    ``request_id`` is the id the request carried whatever the answer (so a request that got
    no answer in time can be looked for in the end state); ``detail`` is anything else worth
    keeping in the journal's canary sample."""

    ok: bool = True
    status: int | None = None
    ack: str | None = None
    error: str | None = None
    request_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Violation:
    """One integrity violation: the check it breaks, the ids it concerns, a sentence."""

    check: str
    ids: tuple[str, ...] = ()
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        """The journal form."""
        return {"check": self.check, "ids": list(self.ids), "detail": self.detail}


@dataclass(frozen=True)
class IntegrityReport:
    """The integrity check after a run: for each check run, how many violations it found,
    and every violation. A declared check missing from ``checked`` was not run.
    ``outcomes`` maps request ids (acknowledged and attempted) to where each ended up: one of
    the declared outcome classes, or ``absent``."""

    acknowledged: int
    checked: Mapping[str, int] = field(default_factory=dict)
    violations: tuple[Violation, ...] = ()
    outcomes: Mapping[str, str] = field(default_factory=dict)


_OUTCOME_FIELDS = frozenset({"ok", "status", "ack", "error", "request_id", "t_send", "t_done", "latency_s"})


def canary_outcome(value: Any) -> CanaryOutcome:
    """A canary's return value as a :class:`CanaryOutcome`."""
    if isinstance(value, CanaryOutcome):
        return value
    if not isinstance(value, Mapping):
        raise TypeError(f"the canary returned {type(value).__name__}; expected a CanaryOutcome or a mapping")
    status = value.get("status")
    ack = value.get("ack")
    error = value.get("error")
    request_id = value.get("request_id")
    return CanaryOutcome(
        ok=bool(value.get("ok", True)),
        status=int(status) if isinstance(status, int) and not isinstance(status, bool) else None,
        ack=None if ack is None else str(ack),
        error=None if error is None else str(error),
        request_id=None if request_id is None else str(request_id),
        detail={str(k): v for k, v in value.items() if k not in _OUTCOME_FIELDS},
    )


def _violation(row: Any) -> Violation:
    if isinstance(row, Violation):
        return row
    if not isinstance(row, Mapping) or not isinstance(row.get("check"), str):
        raise ValueError(f"a violation needs a `check` name: {row!r}")
    ids = row.get("ids") or ()
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
        raise ValueError(f"violation of {row['check']}: `ids` must be a list, got {ids!r}")
    return Violation(row["check"], tuple(str(i) for i in ids), str(row.get("detail") or ""))


def integrity_report(value: Any, declaration: Declaration) -> IntegrityReport:
    """The integrity hook's return value, checked against the declared checks."""
    if isinstance(value, IntegrityReport):
        report = value
    elif isinstance(value, Mapping):
        checked = value.get("checked") or {}
        if not isinstance(checked, Mapping):
            raise ValueError(f"`checked` must map check names to counts, got {checked!r}")
        outcomes = value.get("outcomes") or {}
        if not isinstance(outcomes, Mapping):
            raise ValueError(f"`outcomes` must map request ids to outcome classes, got {outcomes!r}")
        report = IntegrityReport(
            acknowledged=int(value.get("acknowledged") or 0),
            checked={str(k): int(v) for k, v in checked.items()},
            violations=tuple(_violation(v) for v in value.get("violations") or ()),
            outcomes={str(k): str(v) for k, v in outcomes.items()},
        )
    else:
        raise TypeError(f"the integrity check returned {type(value).__name__}; expected an IntegrityReport")
    known = set(declaration.check_names)
    undeclared = sorted({*report.checked, *(v.check for v in report.violations)} - known)
    if undeclared:
        raise ValueError(
            f"the integrity check reported undeclared check(s) {', '.join(undeclared)}; "
            f"declared: {', '.join(sorted(known)) or 'none'} (faultlab_declare)"
        )
    classes = {*declaration.outcome_names, ABSENT}
    strange = sorted(set(report.outcomes.values()) - classes)
    if strange:
        raise ValueError(
            f"the integrity check reported undeclared outcome(s) {', '.join(strange)}; "
            f"declared: {', '.join(sorted(classes))} (faultlab_declare)"
        )
    return report
