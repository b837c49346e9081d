"""The local runtime bringing small stacks up with real processes: TCP readiness, each
service's own readiness timeout, and a service that crashes while it starts."""

from __future__ import annotations

import socket
import textwrap
import time
from pathlib import Path

import pytest

from faultlab.errors import ReadinessTimeout, ServiceFailed
from faultlab.loader import load_stack
from faultlab.runtime.local import bring_up

pytestmark = pytest.mark.processes

TCP_SERVER = (
    "import socket, sys, time; "
    "server = socket.create_server(('127.0.0.1', int(sys.argv[1]))); "
    "print('listening', flush=True); "
    "time.sleep(600)"
)
SILENT = "import time; print('starting, never listening', flush=True); time.sleep(600)"
CRASH = "import sys; print('boom: cannot read my configuration', flush=True); sys.exit(3)"


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


def test_a_readiness_timeout_is_the_services_own_and_says_what_it_saw(tmp_path: Path) -> None:
    stack = load_stack(_stack(tmp_path, f"""\
        patient:
          command: [python, -c, "{TCP_SERVER}", "${{port}}"]
          port: auto
          ready: {{tcp: true, timeout: 20s}}
        silent:
          command: [python, -c, "{SILENT}"]
          port: auto
          ready: {{tcp: true, timeout: 1500ms}}
    """))
    started = time.monotonic()
    with pytest.raises(ReadinessTimeout) as caught, bring_up(stack, tmp_path / "run"):
        pass
    waited = time.monotonic() - started
    message = str(caught.value)
    assert waited < 1.5 + 6.0, f"waited {waited:.1f} s for a 1.5 s readiness timeout"
    assert "service 'silent'" in message and "within 1.5 s" in message, message
    assert "ConnectionRefusedError" in message, message  # what was last observed
    assert "starting, never listening" in caught.value.evidence


def test_a_service_crashing_at_start_fails_the_bring_up_at_its_first_exit(tmp_path: Path) -> None:
    stack = load_stack(_stack(tmp_path, f"""\
        crasher:
          command: [python, -c, "{CRASH}"]
          port: auto
          ready: {{tcp: true, timeout: 30s}}
          restart: always
    """))
    events: list[dict] = []
    started = time.monotonic()
    with (pytest.raises(ServiceFailed) as caught,
          bring_up(stack, tmp_path / "run", observers=(lambda **event: events.append(event),))):
        pass
    waited = time.monotonic() - started
    assert waited < 10.0, f"took {waited:.1f} s to give up on a service that exits at once"
    assert "service 'crasher'" in str(caught.value) and "code 3" in str(caught.value), str(caught.value)
    assert "boom: cannot read my configuration" in caught.value.evidence
    starts = [e for e in events if e["kind"] in ("started", "restarted")]
    assert len(starts) == 1, f"restarted while starting up: {[e['kind'] for e in events]}"


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


def test_two_runs_with_the_same_id_each_get_their_own_postgres_data(tmp_path: Path) -> None:
    """Test sessions on one machine give their runs the same fixed id (``fault-kinds``): one
    run's PostgreSQL must not find, lock or remove the other's data directory."""
    import psycopg

    from faultlab.runtime.ledger import Ledger

    stack = load_stack(_stack(tmp_path, """\
        db:
          postgres: {database: app, user: app}
    """))
    first_ledger = Ledger("same-id", state_dir=tmp_path / "state-1")
    second_ledger = Ledger("same-id", state_dir=tmp_path / "state-2")
    try:
        with bring_up(stack, tmp_path / "run-1", ledger=first_ledger) as first:
            with bring_up(stack, tmp_path / "run-2", ledger=second_ledger) as second:
                assert first.data_root != second.data_root
                for local in (first, second):
                    psycopg.connect(local.dsn("db", user="app"), connect_timeout=5).close()
            assert first.data_root is not None and first.data_root.exists()
            psycopg.connect(first.dsn("db", user="app"), connect_timeout=5).close()
    finally:
        first_ledger.close()
        second_ledger.close()
