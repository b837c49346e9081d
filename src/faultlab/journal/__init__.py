"""The run journal: typed, schema-versioned records appended as JSON lines.

The contract (docs/architecture.md, "The run directory and the journal contract"):

A run directory holds these JSON-lines files, one JSON object per line, UTF-8. The engine
appends (:class:`JournalWriter`) and flushes every line as it goes, so a killed harness
leaves a readable prefix; analysis and reports only read (:func:`read_run`). Times ``t``
are seconds since the run's origin on the one monotonic clock, as JSON numbers; every
duration (``window_s``, ``latency_s``, a duration target) is a number of seconds too,
never a string to parse. NaN and Infinity are not numbers here.

- ``journal.jsonl``: the header first, then events, each with ``type``:

  - ``run`` (:class:`RunHeader`): ``schema`` (``faultlab.journal/2``; ``2.x`` reads as 2,
    another major version is refused), ``run_id``, ``scenario`` and ``stack`` (name, file,
    SHA-256), ``origin_wall`` (ISO wall time of t = 0), ``faultlab_version``, ``host``,
    ``targets`` (durations in seconds, counts), ``steady_state``, ``window_s``, ``hold_s``,
    ``probe_interval_s``, ``duration_s``, ``plugin`` and its ``declaration`` (the
    system's words and integrity checks), optionally ``tools``;
  - ``phase`` (:class:`Phase`): ``name`` begins or ends (``state``);
  - ``fault`` (:class:`FaultEvent`): ``planned`` with its ``revert_plan`` before injecting,
    ``injected``, ``active`` (the moment it took effect; slip = t - ``planned_t``),
    ``reverted`` or ``revert_failed``;
  - ``job`` (:class:`JobEvent`) and ``job_result`` (:class:`JobResult`: window, deadline,
    margin);
  - ``integrity`` (:class:`Integrity`): violations counted per check the plugin ran
    (``checked``) and each violation ``{"check", "ids", "detail"}``;
  - ``cleanup``, ``decision``, ``note``, ``tools`` (versions known once the stack is up);
  - ``alert`` (:class:`Alert`): with the stack's ``monitoring:``, every alert Alertmanager
    delivered, ``firing`` or ``resolved``, with its labels, when Prometheus says it became
    active (and ended) and when faultlab received it (``t``); the header's ``monitoring``
    holds the intervals and the resolution they give;
  - ``promql`` (:class:`PromqlSample`): each evaluation of a scenario's PromQL condition;
  - the drill programme's: ``runbook`` (:class:`RunbookEvent`: the runbook as documented,
    started, completed or abandoned), ``step`` (:class:`StepEvent`: each step's ready,
    started, done, confirmed... with who), ``action`` (:class:`ActionEvent`), ``participants``
    (:class:`ParticipantEvent`: planned and joined); a ``decision`` of a rule carries its
    trigger values, who confirmed it and the actions taken;
  - ``service`` (:class:`ServiceEvent`): a supervised service started, exited, was
    restarted (with its restart count), killed, paused...;
  - ``end`` (:class:`End`): ``completed``, ``aborted``, ``interrupted`` or ``failed``;
    absent when the harness was killed (the run reads as crashed).

- ``canary.jsonl`` (:class:`CanarySample`): the harness's own requests, ``t_send``,
  ``t_done``, ``ok``, ``latency_s``, ``status``, ``error``, ``ack`` (the id the system
  acknowledged, a string, or null);
- ``monitor.jsonl`` (:class:`MonitorSample`): polls of the stack's own monitoring;
- ``requests.jsonl`` (:class:`RequestSample`): the load generator's requests, ``t`` their
  send time;
- ``completions.jsonl`` (:class:`CompletionSample`): written once after the run, each
  acknowledged request's send time ``t``, ``ack`` and completion ``delay_s`` as the stack's
  plugin measured it.

Keys a record class does not know are kept in its ``extra`` and written back. Lines that
matter after a crash (the header, fault events, the end) are fsynced.

Every line of ``journal.jsonl`` carries ``prev``, the SHA-256 of the line before it; the
header's is that of the run's pre-registration record ``inputs/registration.json`` (the
inputs and targets, written before anything started). The reader checks the chain and the
header against that record (:mod:`faultlab.journal.chain`): what does not hold is
``Run.tampering``, and the run is judged on the registered targets only.

Reading is tolerant and typed: :func:`read_run` gives a :class:`Run` of typed records plus
its ``problems`` (:class:`JournalProblem`, each naming file and line): a torn last line
after ``kill -9``, a garbled line, a record without a type, fields of the wrong type (a
required one skips the line; an optional one is read as its default). A record of an
unknown ``type`` is kept as :class:`UnknownRecord`. Only a directory without a journal or
without a readable header of this schema is refused (``InputError``).

Pure: no UI, docker or network imports.
"""

from faultlab.journal.chain import Chain, check_chain, line_digest
from faultlab.journal.reader import (
    TORN,
    JournalEvidence,
    JournalProblem,
    Lines,
    Run,
    check_journal,
    gc_paused,
    read_lines,
    read_run,
    read_samples,
)
from faultlab.journal.records import (
    CANARY_FILE,
    COMPLETIONS_FILE,
    JOURNAL_FILE,
    MONITOR_FILE,
    RECORD_TYPES,
    REQUESTS_FILE,
    SAMPLE_FILES,
    SCHEMA,
    ActionEvent,
    Alert,
    CanarySample,
    Cleanup,
    CompletionSample,
    Decision,
    End,
    FaultEvent,
    Integrity,
    JobEvent,
    JobResult,
    MonitorSample,
    Note,
    NotFinite,
    ParticipantEvent,
    Phase,
    PromqlSample,
    Record,
    RequestSample,
    RunbookEvent,
    RunHeader,
    ServiceEvent,
    StepEvent,
    Tools,
    UnknownRecord,
    json_number,
    register_record,
    typed_record,
)
from faultlab.journal.writer import JournalWriter

__all__ = [
    "SCHEMA",
    "JOURNAL_FILE",
    "CANARY_FILE",
    "MONITOR_FILE",
    "REQUESTS_FILE",
    "COMPLETIONS_FILE",
    "SAMPLE_FILES",
    "Record",
    "RunHeader",
    "Phase",
    "FaultEvent",
    "JobEvent",
    "Integrity",
    "JobResult",
    "Cleanup",
    "Decision",
    "RunbookEvent",
    "StepEvent",
    "ActionEvent",
    "ParticipantEvent",
    "Note",
    "Tools",
    "Alert",
    "PromqlSample",
    "ServiceEvent",
    "End",
    "UnknownRecord",
    "CanarySample",
    "MonitorSample",
    "RequestSample",
    "CompletionSample",
    "NotFinite",
    "RECORD_TYPES",
    "register_record",
    "typed_record",
    "json_number",
    "JournalWriter",
    "TORN",
    "Lines",
    "read_lines",
    "JournalProblem",
    "read_samples",
    "Run",
    "read_run",
    "gc_paused",
    "JournalEvidence",
    "check_journal",
    "Chain",
    "check_chain",
    "line_digest",
]
