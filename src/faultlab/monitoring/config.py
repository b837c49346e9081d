"""The configuration files of a run's Prometheus and Alertmanager, from the stack's
``monitoring:`` and the addresses of the running stack. Pure: text in, text out.

Prometheus scrapes every service the section names (job = the service's name) and faultlab
itself (job ``faultlab``: the drill's own metrics), evaluates the stack's rules file and
sends to one Alertmanager. Alertmanager groups by every label (``group_by: ['...']``), so
each alert is sent on its own the moment its group wait is over, and sends every alert and
its resolution to faultlab's receiver.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from faultlab.model.stack import Monitoring

__all__ = ["Addresses", "duration_text", "prometheus_config", "alertmanager_config", "RECEIVER_PATH",
           "METRICS_PATH", "FAULTLAB_JOB", "REPEAT_INTERVAL"]

RECEIVER_PATH = "/alerts"
"""Where faultlab's receiver takes Alertmanager's webhook notifications."""

METRICS_PATH = "/metrics"
"""Where faultlab serves its own metrics during a run."""

FAULTLAB_JOB = "faultlab"
"""The scrape job of faultlab's own metrics."""

REPEAT_INTERVAL = "24h"
"""Alertmanager resends an unchanged firing alert after this long: never within a run (the
receiver keeps the first notification of each alert; a repeat is not news)."""


@dataclass(frozen=True)
class Addresses:
    """``host:port`` of everything the configuration names."""

    services: Mapping[str, str]
    alertmanager: str
    receiver: str


def duration_text(seconds: float) -> str:
    """Seconds as Prometheus and Alertmanager write durations: ``500ms``, ``0s``."""
    millis = round(seconds * 1000)
    return "0s" if millis == 0 else f"{millis}ms"


def _yaml(value: object) -> str:
    """A JSON text is YAML too: names and paths are quoted whatever characters they hold."""
    return json.dumps(value, ensure_ascii=False)


def prometheus_config(spec: Monitoring, rules: Path, at: Addresses, *, run_id: str) -> str:
    """``prometheus.yml``: the global intervals, the rules file, the Alertmanager, one scrape
    job per service of ``spec.scrape`` and one for faultlab's own metrics."""
    lines = [
        "global:",
        f"  scrape_interval: {duration_text(spec.scrape_interval)}",
        f"  scrape_timeout: {duration_text(spec.timeout)}",
        f"  evaluation_interval: {duration_text(spec.evaluation_interval)}",
        f"  external_labels: {{faultlab_run: {_yaml(run_id)}}}",
        f"rule_files: [{_yaml(str(rules))}]",
        "alerting:",
        "  alertmanagers:",
        f"    - static_configs: [{{targets: [{_yaml(at.alertmanager)}]}}]",
        "scrape_configs:",
    ]
    jobs = [(name, path, at.services[name]) for name, path in spec.scrape.items()]
    jobs.append((FAULTLAB_JOB, METRICS_PATH, at.receiver))
    for job, path, address in jobs:
        lines += [
            f"  - job_name: {_yaml(job)}",
            f"    metrics_path: {_yaml(path)}",
            f"    static_configs: [{{targets: [{_yaml(address)}]}}]",
        ]
    return "\n".join(lines) + "\n"


def alertmanager_config(spec: Monitoring, at: Addresses) -> str:
    """``alertmanager.yml``: one route grouping by every label, to faultlab's receiver,
    resolutions included."""
    return "\n".join([
        "route:",
        "  receiver: faultlab",
        "  group_by: ['...']",
        f"  group_wait: {duration_text(spec.group_wait)}",
        f"  group_interval: {duration_text(spec.group_interval)}",
        f"  repeat_interval: {REPEAT_INTERVAL}",
        "receivers:",
        "  - name: faultlab",
        "    webhook_configs:",
        f"      - url: {_yaml('http://' + at.receiver + RECEIVER_PATH)}",
        "        send_resolved: true",
    ]) + "\n"
