"""What a system under drill declares about itself: its words, its integrity checks, its
monitoring contract.

faultlab knows nothing of any one business. A stack's drill plugin returns one
:class:`Declaration` (hook ``faultlab_declare``), and everything a report says in the
system's own words comes from it: the payments example (examples/payments) declares
"lost payments" as an integrity check and the time until a payment is paid out as its
completion delay, and its reports say so. The declaration is written into the run's journal
header, so analysis and reports read it offline from the run directory alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["Text", "IntegrityCheck", "Outcome", "Completion", "MonitorContract", "Declaration", "CHECK_NAME",
           "ABSENT"]

ABSENT = "absent"
"""The outcome of a request the system's end state does not hold."""

CHECK_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
"""An integrity check's name: what a scenario writes in ``targets:`` (``lost_payments: 0``)."""


@dataclass(frozen=True)
class Text:
    """A text in English with an optional Japanese variant; ``get`` falls back to English."""

    en: str
    ja: str | None = None

    def get(self, lang: str) -> str:
        """The text in ``lang`` (English when that variant is missing)."""
        return self.ja if lang == "ja" and self.ja else self.en

    def to_json(self) -> str | dict[str, str]:
        """A plain string when there is no Japanese variant, else ``{"en", "ja"}``."""
        return self.en if self.ja is None else {"en": self.en, "ja": self.ja}

    @classmethod
    def of(cls, value: Any, default: Text | None = None) -> Text:
        """A :class:`Text` from a string, an ``{"en", "ja"}`` mapping or a Text."""
        if isinstance(value, Text):
            return value
        if isinstance(value, str):
            return cls(value)
        if isinstance(value, Mapping) and isinstance(value.get("en"), str):
            ja = value.get("ja")
            return cls(value["en"], ja if isinstance(ja, str) else None)
        if default is not None:
            return default
        raise ValueError(f"expected a text or {{en: ..., ja: ...}}, got {value!r}")


@dataclass(frozen=True)
class IntegrityCheck:
    """One data-integrity check the plugin runs after a drill.

    ``name`` is the target key a scenario uses (``lost_orders: 0``) and the key of the
    plugin's ``checked`` counts; ``label`` is how reports name it. ``loss`` marks the check
    of acknowledged requests missing afterwards: its ids measure the data lost (RPO).
    """

    name: str
    label: Text
    loss: bool = False

    def __post_init__(self) -> None:
        if not CHECK_NAME.match(self.name):
            raise ValueError(f"integrity check name {self.name!r}: use lower-case letters, digits and '_'")


@dataclass(frozen=True)
class Outcome:
    """Where a request can end up in the system's end state (a payment ``paid``,
    ``refunded``, ``declined``...), with the reports' label. ``absent`` (not
    there at all) is every system's and need not be declared."""

    name: str
    label: Text

    def __post_init__(self) -> None:
        if not CHECK_NAME.match(self.name):
            raise ValueError(f"outcome name {self.name!r}: use lower-case letters, digits and '_'")


@dataclass(frozen=True)
class Completion:
    """How long an acknowledged request waits until the system has done it (the payments
    example: a payment accepted until it is paid out).

    ``name`` prefixes the target key (``<name>_p99``); ``label`` is the reports' word.
    """

    name: str = "completion_delay"
    label: Text = Text("Completion delay", "完了遅延")

    def __post_init__(self) -> None:
        if not CHECK_NAME.match(self.name):
            raise ValueError(f"completion name {self.name!r}: use lower-case letters, digits and '_'")

    @property
    def target(self) -> str:
        """The scenario target key judging this delay's p99."""
        return f"{self.name}_p99"


@dataclass(frozen=True)
class MonitorContract:
    """What the stack's readiness JSON body carries besides being ready or not.

    ``alerts``: the key of a list of alert names (a new name after a fault counts as
    detection); ``backlog``: the key of a number of requests waiting to be completed (its
    drain after the fault is measured); ``backlog_age``: the key of how long the oldest of
    them has waited at the moment of the answer, in seconds (at most: an upper bound is
    fine); with it, the backlog counts as drained once nothing waits from before the fault
    cleared, else once the number is back to its level before the fault. None: the body has
    no such key. ``intake_alert``: the alert that means the system stopped taking business
    requests (a ``payments_refused`` alert, say): its spans are shown as intake halted and
    resumed.
    """

    alerts: str | None = None
    backlog: str | None = None
    intake_alert: str | None = None
    backlog_age: str | None = None


@dataclass(frozen=True)
class Declaration:
    """Everything a system under drill declares (see the module docstring).

    - ``request`` / ``requests``: one business request and several (the canary sends them);
    - ``ids``: how the identifiers of acknowledged requests are headed in a table;
    - ``integrity_checks``: the checks its ``faultlab_integrity`` hook reports on;
    - ``completion``: its completion delay, if its ``faultlab_completion_delays`` measures one;
    - ``monitor``: the keys of its readiness JSON;
    - ``ack_field``: the JSON field of a successful load-generator response that holds what
      was acknowledged (the load recorder reads it);
    - ``request_names``: the load generator's names of its business requests (the payments
      example's ``pay``), so reports count them apart from reads and refunds; empty:
      every load request is one;
    - ``shed_statuses``: the answer statuses by which the system refuses a request for
      overload (its admission control; HTTP 429 for a web service), so a drill can count
      them apart from other refusals; empty: it declares none.
    """

    request: Text = Text("request", "リクエスト")
    requests: Text = Text("requests", "リクエスト")
    ids: Text = Text("IDs", "ID")
    integrity_checks: tuple[IntegrityCheck, ...] = ()
    completion: Completion | None = None
    monitor: MonitorContract = field(default_factory=MonitorContract)
    ack_field: str | None = None
    request_names: tuple[str, ...] = ()
    outcomes: tuple[Outcome, ...] = ()
    shed_statuses: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        names = [c.name for c in self.integrity_checks]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"integrity check(s) declared twice: {', '.join(twice)}")

    def check(self, name: str) -> IntegrityCheck | None:
        """The integrity check called ``name``, or None."""
        return next((c for c in self.integrity_checks if c.name == name), None)

    @property
    def outcome_names(self) -> list[str]:
        """The declared outcome classes' names."""
        return [o.name for o in self.outcomes]

    def outcome_label(self, name: str, lang: str) -> str:
        """The label of outcome ``name`` in ``lang`` (the name itself when undeclared)."""
        found = next((o for o in self.outcomes if o.name == name), None)
        return found.label.get(lang) if found is not None else name

    @property
    def check_names(self) -> list[str]:
        """The declared integrity checks' names, in declaration order."""
        return [c.name for c in self.integrity_checks]

    def to_json(self) -> dict[str, Any]:
        """Plain JSON for the journal header."""
        return {
            "request": self.request.to_json(),
            "requests": self.requests.to_json(),
            "ids": self.ids.to_json(),
            "integrity_checks": [{"name": c.name, "label": c.label.to_json(), "loss": c.loss}
                                 for c in self.integrity_checks],
            "completion": None if self.completion is None
            else {"name": self.completion.name, "label": self.completion.label.to_json()},
            "monitor": asdict(self.monitor),
            "ack_field": self.ack_field,
            "request_names": list(self.request_names),
            "outcomes": [{"name": o.name, "label": o.label.to_json()} for o in self.outcomes],
            "shed_statuses": list(self.shed_statuses),
        }

    @classmethod
    def from_json(cls, data: Any) -> Declaration:
        """Read :meth:`to_json`'s output back; anything malformed falls back to the defaults
        (a damaged header must not stop a report)."""
        if not isinstance(data, Mapping):
            return cls()
        base = cls()
        checks = []
        for row in data.get("integrity_checks") or []:
            if isinstance(row, Mapping) and isinstance(row.get("name"), str) and CHECK_NAME.match(row["name"]):
                checks.append(IntegrityCheck(row["name"], Text.of(row.get("label"), Text(row["name"])),
                                             loss=row.get("loss") is True))
        completion = None
        raw = data.get("completion")
        if isinstance(raw, Mapping) and isinstance(raw.get("name"), str) and CHECK_NAME.match(raw["name"]):
            completion = Completion(raw["name"], Text.of(raw.get("label"), Completion().label))
        monitor: Mapping[str, Any] = data["monitor"] if isinstance(data.get("monitor"), Mapping) else {}
        unique = list({c.name: c for c in checks}.values())
        return cls(
            request=Text.of(data.get("request"), base.request),
            requests=Text.of(data.get("requests"), base.requests),
            ids=Text.of(data.get("ids"), base.ids),
            integrity_checks=tuple(unique),
            completion=completion,
            monitor=MonitorContract(**{f.name: monitor[f.name] if isinstance(monitor.get(f.name), str) else None
                                       for f in fields(MonitorContract)}),
            ack_field=data.get("ack_field") if isinstance(data.get("ack_field"), str) else None,
            request_names=tuple(n for n in data.get("request_names") or () if isinstance(n, str)),
            outcomes=tuple(Outcome(row["name"], Text.of(row.get("label"), Text(row["name"])))
                           for row in data.get("outcomes") or ()
                           if isinstance(row, Mapping) and isinstance(row.get("name"), str)
                           and CHECK_NAME.match(row["name"])),
            shed_statuses=tuple(s for s in data.get("shed_statuses") or ()
                                if isinstance(s, int) and not isinstance(s, bool)),
        )
