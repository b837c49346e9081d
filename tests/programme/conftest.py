import os
import shutil
import sys
from pathlib import Path

import pytest

# The synthetic-run builder is shared with tests/analysis.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "analysis"))


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
