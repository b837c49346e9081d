"""Whether Debian's Prometheus and Alertmanager are on this machine: the monitoring tests on
processes (tests/monitoring) and on containers (tests/docker) skip without them. A plain
module in the tests' folder, which pytest puts on ``sys.path``."""

from __future__ import annotations

import shutil

import pytest

INSTALLED = shutil.which("prometheus") is not None and (
    shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")) is not None

needs_monitoring = pytest.mark.skipif(not INSTALLED, reason="Debian's prometheus and prometheus-alertmanager are "
                                                            "not installed (apt-get install them)")
"""Skip a test that runs a stack's monitoring, with the reason, where the programs are missing."""
