"""The run journals the tool versions once the stack is up; the report's manifest names them."""

from __future__ import annotations

import json
import platform
from importlib.metadata import version

from faultlab.engine.run import _tool_versions
from faultlab.journal import JournalWriter, RunHeader, Tools, read_run
from faultlab.model import Stack


class _Database:
    def __init__(self, found: str | None | Exception):
        self.found = found

    def server_version(self) -> str | None:
        if isinstance(self.found, Exception):
            raise self.found
        return self.found


class _Stack:
    """What ``_tool_versions`` asks of a runtime's stack handle: the stack and its databases."""

    def __init__(self, runtime: dict[str, str] | None = None, **databases: str | None | Exception):
        services = {name: {"postgres": {}} for name in databases} or {"svc": {"command": ["true"]}}
        self.stack = Stack.model_validate({"name": "s", "services": services})
        self.databases = {name: _Database(found) for name, found in databases.items()}
        self.runtime_versions = runtime or {}

    def database(self, name: str) -> _Database:
        return self.databases[name]

    def tool_versions(self) -> dict[str, str]:
        return self.runtime_versions


def test_python_and_locust_without_importing_locust():
    import sys

    tools = _tool_versions(_Stack())  # type: ignore[arg-type]
    assert tools["python"] == platform.python_version()
    assert tools["locust"] == version("locust")
    assert "locust" not in sys.modules


def test_the_runtime_names_what_it_runs_on():
    assert _tool_versions(_Stack({"docker": "20.10.24"}))["docker"] == "20.10.24"  # type: ignore[arg-type]
    assert "docker" not in _tool_versions(_Stack())  # type: ignore[arg-type]


def test_an_unreachable_server_is_left_out_not_a_failure():
    assert "postgres" not in _tool_versions(_Stack(db=None))  # type: ignore[arg-type]
    assert "postgres" not in _tool_versions(_Stack(db=RuntimeError("no server")))  # type: ignore[arg-type]


def test_each_server_is_named_when_there_are_several():
    tools = _tool_versions(_Stack(db="16.4", audit="15.2"))  # type: ignore[arg-type]
    assert tools["postgres (db)"] == "16.4" and tools["postgres (audit)"] == "15.2"
    assert _tool_versions(_Stack(db="16.4"))["postgres"] == "16.4"  # type: ignore[arg-type]


def test_tools_record_round_trips(tmp_path):
    journal = JournalWriter.open(tmp_path, RunHeader(run_id="r"), origin=0.0)
    journal.write(Tools(t=1.0, tools={"python": "3.11.7", "postgres": "16.4"}))
    journal.close()
    (record,) = read_run(tmp_path).events("tools")
    assert isinstance(record, Tools) and record.tools == {"python": "3.11.7", "postgres": "16.4"}
    assert json.loads((tmp_path / "journal.jsonl").read_text().splitlines()[1])["type"] == "tools"
