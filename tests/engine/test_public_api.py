"""Import hygiene and the frozen public API of the engine and runtime building blocks."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import faultlab

MODULES = [
    "faultlab.engine.clock",
    "faultlab.engine.scheduler",
    "faultlab.journal",
    "faultlab.journal.records",
    "faultlab.journal.writer",
    "faultlab.journal.reader",
    "faultlab.journal.chain",
    "faultlab.evidence",
    "faultlab.evidence.keys",
    "faultlab.evidence.register",
    "faultlab.evidence.seal",
    "faultlab.evidence.inputs",
    "faultlab.evidence.verify",
    "faultlab.stats",
    "faultlab.engine.probes",
    "faultlab.engine.load",
    "faultlab.engine.locust_recorder",
    "faultlab.runtime.supervisor",
    "faultlab.runtime.waits",
    "faultlab.runtime.ports",
    "faultlab.runtime.ledger",
    "faultlab.plugin",
    "faultlab.hub",
    "faultlab.runtime.base",
    "faultlab.monitoring",
]

PUBLIC = {
    "faultlab.engine.clock": ["Clock", "MonotonicClock", "FakeClock"],
    "faultlab.engine.scheduler": [
        "TimelineItem", "PlannedAction", "ActionRecord", "ScheduleResult", "Scheduler", "compile_timeline",
    ],
    "faultlab.journal": [
        "SCHEMA", "JOURNAL_FILE", "CANARY_FILE", "MONITOR_FILE", "REQUESTS_FILE", "COMPLETIONS_FILE", "SAMPLE_FILES",
        "Record", "RunHeader", "Phase", "FaultEvent", "JobEvent", "Integrity", "JobResult", "Cleanup", "Decision",
        "RunbookEvent", "StepEvent", "ActionEvent", "ParticipantEvent", "ServiceEvent",
        "Note", "Tools", "Alert", "PromqlSample", "End", "UnknownRecord", "CanarySample", "MonitorSample",
        "RequestSample", "CompletionSample",
        "NotFinite", "RECORD_TYPES", "register_record", "typed_record", "json_number", "JournalWriter", "TORN",
        "Lines", "read_lines", "JournalProblem", "read_samples", "Run", "read_run", "gc_paused",
        "JournalEvidence", "check_journal", "Chain", "check_chain", "line_digest",
    ],
    "faultlab.journal.records": [
        "SCHEMA", "JOURNAL_FILE", "CANARY_FILE", "MONITOR_FILE", "REQUESTS_FILE", "COMPLETIONS_FILE", "SAMPLE_FILES",
        "Record", "RunHeader", "Phase", "FaultEvent", "JobEvent", "Integrity", "JobResult", "Cleanup", "Decision",
        "RunbookEvent", "StepEvent", "ActionEvent", "ParticipantEvent", "ServiceEvent",
        "Note", "Tools", "Alert", "PromqlSample", "End", "UnknownRecord", "CanarySample", "MonitorSample",
        "RequestSample", "CompletionSample",
        "NotFinite", "RECORD_TYPES", "register_record", "typed_record", "json_number",
    ],
    "faultlab.journal.writer": ["JournalWriter"],
    "faultlab.journal.reader": [
        "TORN", "Lines", "read_lines", "JournalProblem", "read_samples", "Run", "read_run", "gc_paused",
        "JournalEvidence", "check_journal",
    ],
    "faultlab.evidence": [
        "PublicKey", "SigningKey", "keys_dir", "new_key", "choose_signing_key", "load_public_key", "register_path",
        "read_register", "check_register", "anchor", "SEAL_FILE", "Sealer", "Seal", "seal", "read_seal",
        "verify_package", "recompute",
    ],
    "faultlab.evidence.keys": [
        "KEY_NAME", "PublicKey", "SigningKey", "keys_dir", "new_key", "list_keys", "load_signing_key",
        "choose_signing_key", "load_public_key",
    ],
    "faultlab.evidence.register": [
        "REGISTER_ENV", "Entry", "register_path", "append_entry", "read_register", "anchor", "check_register",
    ],
    "faultlab.evidence.seal": [
        "SEAL_FILE", "SEAL_SCHEMA", "UNSIGNED", "SIGNED_FIELDS", "Sealer", "Seal", "files_digest", "statement",
        "seal_text", "seal", "read_seal",
    ],
    "faultlab.evidence.inputs": ["judged", "register_inputs", "preregister_run", "preregister_plan"],
    "faultlab.evidence.verify": ["Failure", "Verification", "verify_package", "recompute"],
    "faultlab.journal.chain": [
        "GENESIS", "PREV", "INPUTS_DIR", "REGISTRATION_FILE", "REGISTRATION_SCHEMA", "JUDGED_KEYS", "line_digest",
        "genesis_of", "Chain", "check_chain", "read_registration",
    ],
    "faultlab.stats": ["percentile", "percentile_of", "rank"],
    "faultlab.engine.probes": ["CanaryProbe", "MonitorProbe", "parse_prometheus", "labelled"],
    "faultlab.engine.load": ["LoadSpec", "LoadDriver", "RECORDER_PATH"],
    "faultlab.engine.locust_recorder": ["RequestRecorder"],
    "faultlab.runtime.supervisor": [
        "RestartPolicy", "ServiceSpec", "Service", "Supervisor", "kill_process_group", "group_members",
    ],
    "faultlab.runtime.waits": [
        "Deadline", "Observation", "WaitStrategy", "HttpWait", "TcpWait", "CallableWait", "AllOf", "wait_for",
    ],
    "faultlab.runtime.ports": ["LOOPBACK", "free_port", "free_ports", "start_on_free_port", "is_port_in_use",
                               "ephemeral_range", "candidate_ports"],
    "faultlab.plugin": [
        "ABSENT", "CHECK_NAME", "HOOKS", "CanaryOutcome", "Completion", "Declaration", "DrillPlugin",
        "IntegrityCheck", "IntegrityReport", "MonitorContract", "Outcome", "PluginProblem", "Text", "Violation",
        "canary_outcome", "hookimpl", "integrity_report", "load_plugin",
    ],
    "faultlab.hub": ["EVENTS", "Event", "Hub", "Observer"],
    "faultlab.monitoring": [
        "PACKAGES", "Binaries", "find_binaries", "tool_versions", "bring_up", "RunMonitoring", "query_value",
        "PromqlCondition", "PromqlProbe", "Receiver", "DrillMetrics",
    ],
    "faultlab.runtime.base": [
        "CAPABILITIES", "DatabaseControl", "Finding", "NetworkControl", "ProcessStarter", "ProxyOnlyStack", "Runtime",
        "ServiceControl", "StackHandle", "interpolate", "proxy_client",
    ],
    "faultlab.runtime.ledger": [
        "LEDGER_SCHEMA", "RUN_LABEL", "default_state_dir", "Ledger", "CleanupAction", "CleanupReport", "Cleaner",
        "cleaner", "register_cleaner", "cleanup",
    ],
}


@pytest.mark.parametrize("name", MODULES)
def test_exported_members_are_frozen_and_documented(name):
    module = importlib.import_module(name)
    assert sorted(module.__all__) == sorted(PUBLIC[name])
    for member in module.__all__:
        value = getattr(module, member)
        if callable(value) and not isinstance(value, (dict, str)):
            assert (value.__doc__ or "").strip(), f"{name}.{member} has no docstring"


def test_importing_them_loads_no_locust_gevent_rich_or_docker():
    src = str(Path(faultlab.__file__).resolve().parent.parent)
    code = (
        f"import sys; import {', '.join(MODULES)}; "
        "print(','.join(sorted(m for m in ('locust', 'gevent', 'rich', 'docker') if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": src, "PATH": "/usr/bin:/bin"}, check=True)
    assert out.stdout.strip() == ""
