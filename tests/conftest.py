"""Every test runs with its own key folder and evidence register, never the user's.

Sealing a package reads the drill lead's keys (``$XDG_CONFIG_HOME/faultlab/keys``) and appends
to the evidence register (``$FAULTLAB_REGISTER``); the commands the tests start inherit this
environment, so no test signs with a real key or writes into a real register. The tests that
run the ``faultlab`` command find it with ``faultlab_cmd`` and run it in ``cli_env``.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_keys_and_register(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("faultlab-evidence")
    saved = {name: os.environ.get(name) for name in ("XDG_CONFIG_HOME", "FAULTLAB_REGISTER")}
    os.environ["XDG_CONFIG_HOME"] = str(home / "config")
    os.environ["FAULTLAB_REGISTER"] = str(home / "evidence-register.jsonl")
    yield home
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def faultlab_cmd() -> str:
    """The installed ``faultlab`` command (next to this interpreter, or on PATH)."""
    beside = Path(sys.executable).with_name("faultlab")
    found = str(beside) if beside.exists() else shutil.which("faultlab")
    if not found:
        pytest.skip("the faultlab command is not installed (pip install -e .)")
    return found


@pytest.fixture
def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    return env
