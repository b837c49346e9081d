"""Every test runs with its own key folder and evidence register, never the user's.

Sealing a package reads the drill lead's keys (``$XDG_CONFIG_HOME/faultlab/keys``) and appends
to the evidence register (``$FAULTLAB_REGISTER``); the commands the tests start inherit this
environment, so no test signs with a real key or writes into a real register.
"""

from __future__ import annotations

import os

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
