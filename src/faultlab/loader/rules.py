"""A stack's Prometheus alerting rules file (``monitoring.rules``): its shape and its alert names.

Prometheus itself judges the PromQL when the run starts; here the file must be YAML of
Prometheus' rule-file shape (``groups:``, each with a ``name`` and ``rules``; each rule an
``alert`` or a ``record`` with an ``expr``), so that a scenario's ``detect_by`` can be
checked against the alerts it defines before anything starts. Problems inside the file are
located in it (file:line:col), like any document's.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from faultlab.errors import Problem
from faultlab.loader.positions import Parsed, read_document

__all__ = ["ALERT_NAME", "read_rules"]

ALERT_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
"""What Prometheus accepts as an alert's name (a label value of ``alertname`` in a metric name's form)."""

_GROUP_KEYS = frozenset({"name", "interval", "limit", "rules"})
_RULE_KEYS = frozenset({"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"})


def read_rules(path: Path) -> tuple[tuple[str, ...], list[Problem]]:
    """The alert names the rules file at ``path`` defines (in file order, each once), and
    the problems of its shape. A missing or unreadable file is one problem without a place."""
    doc = read_document(path)
    if doc.data is None:
        return (), doc.problems
    alerts: list[str] = []
    data = doc.data
    if not isinstance(data, dict) or not isinstance(data.get("groups"), list):
        doc.add((), "a Prometheus rules file is a mapping with `groups:`, a list of rule groups")
        return (), doc.problems
    for key in data:
        if key != "groups":
            doc.add((key,), f"unknown key {key!r}: a rules file has only `groups:`", at_key=True)
    for i, group in enumerate(data["groups"]):
        alerts += _group_alerts(doc, ("groups", i), group)
    return tuple(dict.fromkeys(alerts)), doc.problems


def _group_alerts(doc: Parsed, loc: tuple[Any, ...], group: Any) -> list[str]:
    if not isinstance(group, dict):
        doc.add(loc, "a rule group is a mapping with `name:` and `rules:`")
        return []
    for key in group:
        if key not in _GROUP_KEYS:
            doc.add((*loc, key), f"unknown key {key!r} in a rule group (known: {', '.join(sorted(_GROUP_KEYS))})",
                    at_key=True)
    if not isinstance(group.get("name"), str) or not group["name"]:
        doc.add(loc, "a rule group needs a `name:`")
    rules = group.get("rules")
    if not isinstance(rules, list):
        doc.add((*loc, "rules") if "rules" in group else loc, "a rule group needs `rules:`, a list of rules")
        return []
    names = []
    for j, rule in enumerate(rules):
        name = _rule_alert(doc, (*loc, "rules", j), rule)
        if name is not None:
            names.append(name)
    return names


def _rule_alert(doc: Parsed, loc: tuple[Any, ...], rule: Any) -> str | None:
    if not isinstance(rule, dict):
        doc.add(loc, "a rule is a mapping with `alert:` (or `record:`) and `expr:`")
        return None
    for key in rule:
        if key not in _RULE_KEYS:
            doc.add((*loc, key), f"unknown key {key!r} in a rule (known: {', '.join(sorted(_RULE_KEYS))})",
                    at_key=True)
    if not isinstance(rule.get("expr"), (str, int, float)) or rule.get("expr") in ("", None):
        doc.add((*loc, "expr") if "expr" in rule else loc, "a rule needs `expr:`, a PromQL expression")
    alert, record = rule.get("alert"), rule.get("record")
    if (alert is None) == (record is None):
        doc.add(loc, "a rule has exactly one of `alert:` (an alerting rule) or `record:` (a recording rule)")
        return None
    if alert is None:
        return None
    if not isinstance(alert, str) or not ALERT_NAME.match(alert):
        doc.add((*loc, "alert"), f"{alert!r} is not an alert name Prometheus accepts: letters, digits and '_', "
                                 "not starting with a digit (like DatabaseUnreachable)")
        return None
    return alert
