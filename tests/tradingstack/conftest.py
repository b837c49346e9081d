"""Fixtures bringing the real trading stack up: PostgreSQL + exchange + router + gateway.

Every process runs on 127.0.0.1 on a free port and is stopped at the end of its test
(stopped processes are continued first); nothing is left behind. The work directories are
private temporary directories, not pytest's rotating ``tmp_path``: a concurrent pytest
session pruning old ``pytest-N`` directories must not pull a live data directory away.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import pytest

_SRC = Path(__file__).resolve().parents[2] / "src"
if str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))


@pytest.fixture
def workdir():
    """A private temporary directory, removed after the test."""
    path = Path(tempfile.mkdtemp(prefix="tradingstack-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def stack_factory(workdir):
    """Start a :class:`LocalStack` with extra environment; every stack is stopped at the end."""
    from tradingstack.localstack import LocalStack

    started: list[LocalStack] = []

    def start(**kwargs) -> LocalStack:
        stack = LocalStack(workdir / f"stack{len(started)}", **kwargs)
        started.append(stack)
        stack.start()
        return stack

    yield start
    for stack in started:
        stack.stop()


@pytest.fixture
def stack(stack_factory):
    """The whole trading stack with default settings."""
    return stack_factory()


@pytest.fixture
def postgres(workdir):
    """A bare PostgreSQL server (no services)."""
    from faultlab.runtime.postgres import PostgresServer

    with PostgresServer(workdir / "pg") as server:
        yield server
