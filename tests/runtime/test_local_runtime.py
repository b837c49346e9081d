"""The local runtime bringing small stacks up with real processes."""

from __future__ import annotations

import socket
import textwrap
import time
from pathlib import Path

import pytest

from faultlab.loader import load_stack
from faultlab.runtime.local import bring_up

pytestmark = pytest.mark.processes

TCP_SERVER = (
    "import socket, sys, time; "
    "server = socket.create_server(('127.0.0.1', int(sys.argv[1]))); "
    "print('listening', flush=True); "
    "time.sleep(600)"
)


def _stack(tmp_path: Path, services: str) -> Path:
    path = tmp_path / "stack.yaml"
    path.write_text("name: small\nservices:\n" + textwrap.indent(textwrap.dedent(services), "  "))
    return path


def test_tcp_readiness_brings_a_tcp_server_up(tmp_path: Path) -> None:
    stack = load_stack(_stack(tmp_path, f"""\
        echo:
          command: [python, -c, "{TCP_SERVER}", "${{port}}"]
          port: auto
          ready: {{tcp: true, timeout: 10s}}
    """))
    with bring_up(stack, tmp_path / "run") as local:
        assert local.supervisor is not None
        assert local.supervisor["echo"].state == "running"
        socket.create_connection(("127.0.0.1", local.ports["echo"]), timeout=2).close()
        assert "listening" in local.supervisor["echo"].log_tail()


def test_after_start_up_the_restart_policy_still_restarts_a_crashed_service(tmp_path: Path) -> None:
    stack = load_stack(_stack(tmp_path, f"""\
        echo:
          command: [python, -c, "{TCP_SERVER}", "${{port}}"]
          port: auto
          ready: {{tcp: true, timeout: 10s}}
          restart: always
    """))
    with bring_up(stack, tmp_path / "run") as local:
        assert local.supervisor is not None
        service = local.supervisor["echo"]
        first = service.kill()
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline and (service.pid in (None, first) or service.state != "running"):
            time.sleep(0.05)
        assert service.pid not in (None, first) and service.restart_count == 1, service
