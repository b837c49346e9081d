"""The model layer imports no UI, no docker, no network code (STYLE.md 11), and does no work at import."""

from __future__ import annotations

import json
import subprocess
import sys

from foundation_paths import ROOT

FORBIDDEN = (
    "docker", "testcontainers", "rich", "locust", "gevent", "httpx", "requests", "urllib3",
    "psycopg", "psycopg_pool", "websocket", "http.client", "toxiproxy", "matplotlib", "jinja2",
    "prometheus_client", "psutil", "aiohttp", "asyncpg", "uvloop", "pgserver",
)

PROBE = """
import json, sys
import faultlab.model, faultlab.loader, faultlab.units, faultlab.registry, faultlab.schema
from faultlab.loader import load_scenario
load_scenario(sys.argv[1])
print(json.dumps(sorted(sys.modules)))
"""


def test_model_and_loader_import_no_ui_docker_or_network() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT / "scenarios" / "ft-01-db-freeze.yaml")],
        capture_output=True, text=True, timeout=60, check=True,
    )
    loaded = set(json.loads(result.stdout))
    leaked = sorted(m for m in loaded if m in FORBIDDEN or m.split(".")[0] in FORBIDDEN)
    assert leaked == []


FAMILY_PROBE = (
    "import sys, faultlab.faults, faultlab.registry; "
    "print(sorted(m for m in sys.modules if m.startswith('faultlab.faults.')))"
)


def test_importing_faults_package_loads_no_family_module() -> None:
    result = subprocess.run(
        [sys.executable, "-c", FAMILY_PROBE],
        capture_output=True, text=True, timeout=60, check=True,
    )
    assert result.stdout.strip() == "['faultlab.faults.base']"
