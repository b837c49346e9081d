"""The run journals the tool versions once the stack is up; the report's manifest names them."""

from __future__ import annotations

import json
import platform
from importlib.metadata import version

from faultlab.engine.run import _tool_versions
from faultlab.journal import JournalWriter, RunHeader, Tools, read_run


class _Stack:
    postgres = {"db": object()}

    def dsn(self, name):
        return "postgresql://nobody@127.0.0.1:1/none"  # nothing listens: the version is left out


def test_python_and_locust_without_importing_locust():
    import sys

    tools = _tool_versions(object())
    assert tools["python"] == platform.python_version()
    assert tools["locust"] == version("locust")
    assert "locust" not in sys.modules


def test_an_unreachable_server_is_left_out_not_a_failure():
    assert "postgres" not in _tool_versions(_Stack())


def test_tools_record_round_trips(tmp_path):
    journal = JournalWriter.open(tmp_path, RunHeader(run_id="r"), origin=0.0)
    journal.write(Tools(t=1.0, tools={"python": "3.11.7", "postgres": "16.4"}))
    journal.close()
    (record,) = read_run(tmp_path).events("tools")
    assert isinstance(record, Tools) and record.tools == {"python": "3.11.7", "postgres": "16.4"}
    assert json.loads((tmp_path / "journal.jsonl").read_text().splitlines()[1])["type"] == "tools"
